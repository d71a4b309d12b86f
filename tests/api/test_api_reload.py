"""Model reloads without failed requests, registry watching, and readiness while loading."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

from conftest import ADMIN, AGENT, AppRunner, assert_error, hold_encoder, wait_ready, wait_until
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import Settings
from triage.service import TriageService


def test_reload_while_requests_are_in_flight_fails_none(start_app: AppRunner,
                                                        models_root: Path) -> None:
    client = start_app()
    versions: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    def traffic(worker: int) -> None:
        for i in range(400):  # bounded; stops early once the reloads are done
            if stop.is_set():
                return
            r = client.post("/v1/analyze", headers=AGENT,
                            json={"text": f"Where is my parcel {worker}-{i}?"})
            if r.status_code != 200:
                failures.append(r.text)
            else:
                versions.append(r.json()["model_version"])

    threads = [threading.Thread(target=traffic, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for n in range(6):
        target = models_root / ("test-v2" if n % 2 == 0 else "test-v1")
        r = client.post("/v1/admin/reload", json={"model_dir": str(target)}, headers=ADMIN)
        assert r.status_code == 200, r.text
        assert r.json()["version"] == target.name
    stop.set()
    for t in threads:
        t.join(30)
    assert not failures
    assert {"test-v1", "test-v2"} <= set(versions)
    assert client.get("/v1/model", headers=AGENT).json()["version"] == "test-v1"
    assert 'triage_model_reloads_total{outcome="ok"} 7.0' in client.get("/metrics").text


def test_a_request_holding_the_old_model_finishes_on_it(start_app: AppRunner,
                                                        models_root: Path) -> None:
    client = start_app()
    recorder = hold_encoder(client)
    result: dict[str, object] = {}
    t = threading.Thread(target=lambda: result.update(
        client.post("/v1/triage", json={"text": "in flight"}, headers=AGENT).json()))
    t.start()
    wait_until(recorder.entered.is_set)
    r = client.post("/v1/admin/reload", json={"model_dir": "test-v2"}, headers=ADMIN)
    assert r.json() == {**r.json(), "previous_version": "test-v1", "version": "test-v2"}
    recorder.release.set()
    t.join(10)
    assert result["model_version"] == "test-v1"
    after = client.post("/v1/triage", json={"text": "after"}, headers=AGENT).json()
    assert after["model_version"] == "test-v2"


def test_failed_or_forbidden_reloads_keep_the_old_model(start_app: AppRunner,
                                                        models_root: Path, tmp_path: Path) -> None:
    client = start_app()
    (models_root / "not-a-bundle").mkdir(exist_ok=True)
    r = client.post("/v1/admin/reload", json={"model_dir": str(models_root / "not-a-bundle")},
                    headers=ADMIN)
    assert_error(r, 422, "model_load_failed", "not-a-bundle")
    for outside in (str(tmp_path), "../../etc", "/"):
        r = client.post("/v1/admin/reload", json={"model_dir": outside}, headers=ADMIN)
        assert_error(r, 422, "model_dir_not_allowed")
    # found by schemathesis: a NUL byte made Path.resolve raise (a 500 before the fix)
    for body in (r'{"model_dir": "models\u0000x"}', r'{"model_dir": "a\ud9eeb"}'):
        r = client.post("/v1/admin/reload", content=body,
                        headers={**ADMIN, "Content-Type": "application/json"})
        assert r.status_code == 422 and "model_dir" in r.text, r.text
    assert client.get("/readyz").json()["model_version"] == "test-v1"
    assert 'triage_model_reloads_total{outcome="failed"} 1.0' in client.get("/metrics").text


def test_registry_pointer_is_watched(start_app: AppRunner, models_root: Path,
                                     tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    for version in ("test-v1", "test-v2"):
        shutil.copytree(models_root / version, registry / version)
    current = registry / "CURRENT"
    current.write_text("test-v1\n")

    def point(version: str) -> None:  # how a registry flips its pointer: atomic rename
        tmp = registry / "CURRENT.tmp"
        tmp.write_text(version + "\n")
        os.replace(tmp, current)

    client = start_app(model_dir=registry, reload_poll_seconds=0.05)
    info = client.get("/v1/model", headers=AGENT).json()
    assert info["version"] == "test-v1" and info["source"] == "registry"
    point("test-v2")
    wait_until(lambda: client.get("/readyz").json()["model_version"] == "test-v2")
    point("no-such-version")  # a broken pointer is reported, and the served model stays
    wait_until(lambda: 'outcome="failed"} 1.0' in client.get("/metrics").text)
    assert client.get("/readyz").json()["model_version"] == "test-v2"
    point("test-v1")
    wait_until(lambda: client.get("/readyz").json()["model_version"] == "test-v1")


def test_not_ready_until_the_bundle_is_loaded(make_settings: Callable[..., Settings]) -> None:
    loading = threading.Event()

    def slow_loader(path: Path) -> TriageService:
        assert loading.wait(10)
        return TriageService.from_bundle(path)

    with TestClient(create_app(make_settings(), loader=slow_loader)) as client:
        assert client.get("/healthz").status_code == 200
        r = client.get("/readyz")
        assert_error(r, 503, "model_not_ready")
        assert r.headers["Retry-After"] == "2"
        assert_error(client.post("/v1/analyze", json={"text": "hi"}, headers=AGENT), 503,
                     "model_not_ready")
        loading.set()
        wait_ready(client)
        assert client.post("/v1/analyze", json={"text": "hi"}, headers=AGENT).status_code == 200


def test_a_failed_first_load_is_reported_and_can_be_fixed(start_app: AppRunner,
                                                          models_root: Path) -> None:
    (models_root / "empty").mkdir(exist_ok=True)
    client = start_app(model_dir=models_root / "empty", ready=False)
    wait_until(lambda: "could not load" in client.get("/readyz").text)
    assert_error(client.get("/readyz"), 503, "model_not_ready", "neither a bundle")
    r = client.post("/v1/admin/reload", json={"model_dir": "test-v1"}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["previous_version"] is None
    assert client.get("/readyz").status_code == 200


def test_reload_accepts_paths_relative_to_the_models_root(start_app: AppRunner) -> None:
    client = start_app()
    r = client.post("/v1/admin/reload", json={"model_dir": "test-v2"}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["model_dir"].endswith("test-v2")
    again = client.post("/v1/admin/reload", headers=ADMIN)  # no body: re-read the current one
    assert again.json()["version"] == "test-v2"
