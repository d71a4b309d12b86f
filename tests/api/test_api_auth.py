"""API keys and roles, the generated first-start admin key, and configuration errors."""

from __future__ import annotations

import logging
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import ADMIN, ADMIN_KEY, AGENT, AGENT_KEY, assert_error
from fastapi.testclient import TestClient

from api.settings import ConfigError, Settings, load_settings

ARTICLE = {"id": "gift-wrap", "department": "pre_sales", "title": "Gift wrapping",
           "replies": {"en": "Yes, we gift-wrap for free."}}

# (method, path, json body, role needed)
ENDPOINTS: list[tuple[str, str, Any, str]] = [
    ("POST", "/v1/analyze", {"text": "hello"}, "agent"),
    ("POST", "/v1/triage", {"text": "hello"}, "agent"),
    ("POST", "/v1/suggest", {"text": "hello"}, "agent"),
    ("POST", "/v1/analyze/batch", {"messages": [{"text": "hello"}]}, "agent"),
    ("POST", "/v1/feedback", {"request_id": "unknown", "urgency": "low"}, "agent"),
    ("GET", "/v1/kb/articles", None, "agent"),
    ("GET", "/v1/kb/articles/size-guide", None, "agent"),
    ("GET", "/v1/model", None, "agent"),
    ("POST", "/v1/kb/articles", ARTICLE, "admin"),
    ("PUT", "/v1/kb/articles/gift-wrap", {k: v for k, v in ARTICLE.items() if k != "id"}, "admin"),
    ("DELETE", "/v1/kb/articles/gift-wrap", None, "admin"),
    ("POST", "/v1/admin/reload", None, "admin"),
]


@pytest.mark.parametrize("method, path, body, role", ENDPOINTS)
def test_keys_and_roles(client: TestClient, method: str, path: str, body: Any, role: str) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong-key-0123456789"},
                    {"Authorization": f"Basic {ADMIN_KEY}"}, {"Authorization": "Bearer"}):
        r = client.request(method, path, json=body, headers=headers)
        assert_error(r, 401, "unauthorized", "Bearer")
        assert r.headers["WWW-Authenticate"] == "Bearer"
    agent = client.request(method, path, json=body, headers=AGENT)
    if role == "admin":
        assert_error(agent, 403, "forbidden", "admin")
    else:
        assert agent.status_code not in (401, 403), agent.text
    admin = client.request(method, path, json=body, headers=ADMIN)
    assert admin.status_code not in (401, 403), admin.text


def test_probes_and_metrics_need_no_key(client: TestClient) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert client.get(path).status_code == 200


def test_keys_never_reach_the_logs(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        client.post("/v1/analyze", json={"text": "my email is ann@example.com"}, headers=AGENT)
        client.get("/v1/model", headers={"Authorization": "Bearer not-a-valid-key-123456"})
    assert AGENT_KEY not in caplog.text and "not-a-valid-key" not in caplog.text
    assert "ann@example.com" not in caplog.text and "my email" not in caplog.text


def test_admin_key_is_generated_once_when_none_is_configured(
    start_app: Callable[..., TestClient], make_settings: Callable[..., Settings],
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    db = tmp_path / "state" / "triage.db"
    settings = make_settings(api_keys=None, database_url=f"sqlite:///{db}")
    client = start_app(settings)
    key_file = db.parent / "admin.key"
    key = key_file.read_text().strip()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key in capsys.readouterr().err  # shown once, to whoever starts the service
    assert client.get("/v1/model", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert client.get("/v1/model", headers=ADMIN).status_code == 401
    again = start_app(settings)  # second start: same key, not printed again
    assert key not in capsys.readouterr().err
    assert again.get("/v1/model", headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_auth_can_be_disabled_explicitly(start_app: Callable[..., TestClient]) -> None:
    client = start_app(api_keys=None, auth_disabled=True)
    assert client.post("/v1/kb/articles", json=ARTICLE).status_code == 201


def test_keys_file(start_app: Callable[..., TestClient], tmp_path: Path) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text(f"# team keys\n{ADMIN_KEY}:admin\n\n{AGENT_KEY} : agent  # support desk\n")
    client = start_app(api_keys=None, api_keys_file=keys)
    assert client.get("/v1/model", headers=AGENT).status_code == 200
    assert client.post("/v1/admin/reload", headers=AGENT).status_code == 403
    assert client.post("/v1/admin/reload", headers=ADMIN).status_code == 200


@pytest.mark.parametrize("env, message", [
    ({"TRIAGE_API_KEYS": "short:admin"}, "at least 16 characters"),
    ({"TRIAGE_API_KEYS": "a-long-enough-key-123:root"}, "unknown role 'root'"),
    ({"TRIAGE_API_KEYS": "a-long-enough-key-123"}, "key:role"),
    ({"TRIAGE_API_KEYS_FILE": "/nonexistent/keys.txt"}, "TRIAGE_API_KEYS_FILE: cannot read"),
    ({"TRIAGE_PORT": "eighty"}, "TRIAGE_PORT"),
    ({"TRIAGE_BATCH_WINDOW_MS": "-1"}, "TRIAGE_BATCH_WINDOW_MS"),
    ({"TRIAGE_DATABASE_URL": "mysql://db/triage"}, "TRIAGE_DATABASE_URL"),
    ({"TRIAGE_DATABASE_URL": "postgresql://db/triage"}, "not implemented yet"),
])
def test_bad_configuration_fails_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert message in str(info.value)
    assert "a-long-enough-key-123" not in str(info.value)  # keys never appear in errors
