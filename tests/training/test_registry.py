"""The model registry: listing, atomic promotion with history, rollback, and the CLI."""

from __future__ import annotations

import json
import shutil
import threading

import pytest
from conftest import BASE_VERSION

from training.cli import main
from training.registry import HISTORY_FILE, Registry, RegistryError
from triage.bundle import CURRENT_FILE, MANIFEST_FILE, BundleError, resolve_bundle


def _add_versions(registry: Registry, *names: str) -> None:
    """Copies of the base bundle under other names (a registry of several versions)."""
    for name in names:
        shutil.copytree(registry.path(BASE_VERSION), registry.root / name)
        manifest = json.loads((registry.root / name / MANIFEST_FILE).read_text())
        manifest.update(version=name, created_at=f"2030-01-01T00:00:0{len(registry.versions())}")
        (registry.root / name / MANIFEST_FILE).write_text(json.dumps(manifest))


def test_list_and_current(registry):
    _add_versions(registry, "v0002")
    (registry.root / "v0003.partial").mkdir()  # a bundle being written is not a version
    assert registry.versions() == [BASE_VERSION, "v0002"]
    assert registry.current() == BASE_VERSION
    summaries = {s.version: s for s in registry.list()}
    assert summaries[BASE_VERSION].current and not summaries["v0002"].current
    assert summaries[BASE_VERSION].heads == ["department", "urgency"]
    assert summaries[BASE_VERSION].n_training_rows > 0
    assert set(summaries[BASE_VERSION].out_of_fold) == {"department", "urgency"}


def test_promote_writes_pointer_atomically_and_logs_history(registry):
    _add_versions(registry, "v0002")
    change = registry.promote("v0002", reason="better on corrections")
    assert (registry.root / CURRENT_FILE).read_text() == "v0002\n"
    assert resolve_bundle(registry.root).name == "v0002"
    assert not [p for p in registry.root.iterdir() if p.name.endswith(".tmp")]
    line = json.loads((registry.root / HISTORY_FILE).read_text().splitlines()[-1])
    assert line["from"] == BASE_VERSION and line["to"] == "v0002"
    assert line["reason"] == "better on corrections" and line["timestamp"]
    assert change.to_dict() == line
    assert registry.promote("v0002") is None  # already served: nothing written
    assert len(registry.history()) == 2


def test_promote_refuses_unknown_or_incompatible_bundles(registry):
    with pytest.raises(RegistryError, match="no bundle 'v9'"):
        registry.promote("v9")
    with pytest.raises(RegistryError):
        registry.promote("../elsewhere")
    _add_versions(registry, "v-old")
    manifest = json.loads((registry.root / "v-old" / MANIFEST_FILE).read_text())
    manifest["library_versions"]["scikit-learn"] = "0.24.2"
    (registry.root / "v-old" / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="other library versions"):
        registry.promote("v-old")
    assert registry.current() == BASE_VERSION


def test_rollback_walks_back_through_served_versions(registry):
    _add_versions(registry, "v0002", "v0003")
    registry.promote("v0002")
    registry.promote("v0003")
    assert registry.rollback().to_version == "v0002"
    assert registry.rollback().to_version == BASE_VERSION
    with pytest.raises(RegistryError, match="no earlier served version"):
        registry.rollback()
    registry.promote("v0003")
    assert registry.rollback().to_version == BASE_VERSION
    actions = [(c.action, c.from_version, c.to_version) for c in registry.history()]
    assert actions[-2:] == [("promote", BASE_VERSION, "v0003"), ("rollback", "v0003", BASE_VERSION)]


def test_readers_never_see_a_partial_pointer(registry):
    _add_versions(registry, "v0002")
    seen: set[str] = set()
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            seen.add((registry.root / CURRENT_FILE).read_text())

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(60):
            registry.promote("v0002" if i % 2 == 0 else BASE_VERSION)
    finally:
        stop.set()
        reader.join()
    assert seen <= {"v0002\n", f"{BASE_VERSION}\n"}


def test_cli_models_list_promote_rollback(registry, capsys):
    _add_versions(registry, "v0002")
    root = str(registry.root)
    assert main(["models", "list", "--registry", root, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(v["version"], v["current"]) for v in listed] == [(BASE_VERSION, True), ("v0002", False)]
    assert main(["models", "promote", "v0002", "--registry", root]) == 0
    assert "serving v0002" in capsys.readouterr().out
    assert main(["models", "list", "--registry", root]) == 0
    assert "* v0002" in capsys.readouterr().out
    assert main(["models", "rollback", "--registry", root]) == 0
    assert f"serving {BASE_VERSION} (was v0002)" in capsys.readouterr().out
    assert main(["models", "promote", "nope", "--registry", root]) == 2
    assert "no bundle 'nope'" in capsys.readouterr().err
