"""Idempotent analysis, the decision log, feedback, and exporting feedback for retraining."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import AGENT, DEPARTMENTS, URGENCIES, AppRunner, assert_error
from fastapi.testclient import TestClient

from api.settings import Settings
from training.cli import main as triage_cli

TEXT = "Hi, my card 4111 1111 1111 1111 was charged twice, call me on +49 170 1234567"


def _db(settings: Settings) -> sqlite3.Connection:
    path = settings.sqlite_path()
    assert path is not None
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    return conn


def test_same_ticket_and_text_replays_the_stored_decision(client: TestClient) -> None:
    body = {"text": TEXT, "ticket_id": "T-1"}
    first = client.post("/v1/analyze", json=body, headers=AGENT).json()
    again = client.post("/v1/analyze", json=body, headers=AGENT).json()
    assert again.pop("idempotent_replay") is True and first.pop("idempotent_replay") is False
    assert again == first  # same request_id, same decision
    other = client.post("/v1/analyze", json={"text": TEXT + "!", "ticket_id": "T-1"},
                        headers=AGENT).json()
    assert other["idempotent_replay"] is False and other["request_id"] != first["request_id"]
    no_ticket = client.post("/v1/analyze", json={"text": TEXT}, headers=AGENT).json()
    assert no_ticket["idempotent_replay"] is False
    # each endpoint keeps its own decisions: /v1/triage is a new decision with its own shape
    triage = client.post("/v1/triage", json=body, headers=AGENT).json()
    assert triage["idempotent_replay"] is False and "suggestions" not in triage
    batch = client.post("/v1/analyze/batch", headers=AGENT,
                        json={"messages": [{"text": TEXT, "ticket_id": "T-1"}]}).json()
    assert batch["items"][0]["request_id"] == first["request_id"]
    assert batch["items"][0]["idempotent_replay"] is True
    metrics = client.get("/metrics").text
    assert "triage_idempotent_replays_total 2.0" in metrics


def test_decision_log_keeps_hash_and_redacted_text_only_when_asked(
    start_app: AppRunner, make_settings: Callable[..., Settings]
) -> None:
    for store in (False, True):
        settings = make_settings(store_raw_text=store)
        client = start_app(settings)
        body = client.post("/v1/analyze", json={"text": TEXT, "subject": "Refund",
                                                "ticket_id": f"T-9-{store}", "channel": "email"},
                           headers=AGENT).json()
        row = _db(settings).execute("SELECT * FROM decisions WHERE request_id = ?",
                                    (body["request_id"],)).fetchone()
        assert row["ticket_id"] == f"T-9-{store}" and row["model_version"] == "test-v1"
        assert row["channel"] == "email"
        assert row["text_sha256"] == hashlib.sha256(f"Refund\n{TEXT}".encode()).hexdigest()
        logged = json.loads(row["predictions"])
        assert logged["request_id"] == body["request_id"]
        assert logged["department"]["label"] == body["department"]["label"]
        assert logged["urgency"]["confidence"] == body["urgency"]["confidence"]
        assert row["created_at"] == body["created_at"]
        if store:
            assert row["raw_text"] == ("Refund\nHi, my card [CARD] was charged twice, "
                                       "call me on [PHONE]")
        else:
            assert row["raw_text"] is None
        start_app.stop(client)


def test_feedback_is_committed_and_survives_a_restart(
    start_app: AppRunner, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    client = start_app(settings)
    decision = client.post("/v1/analyze", json={"text": TEXT, "ticket_id": "T-2"},
                           headers=AGENT).json()
    r = client.post("/v1/feedback", headers=AGENT, json={
        "request_id": decision["request_id"], "department": "billing_payments", "urgency": "high",
        "reply": {"decision": "edited", "article_id": "double-charge",
                  "final_text": "Refunded; write to ann@example.com if not"},
        "agent_id": "agent-7"})
    assert r.status_code == 201, r.text
    fb = r.json()
    assert fb["request_id"] == decision["request_id"] and fb["ticket_id"] == "T-2"
    by_ticket = client.post("/v1/feedback", headers=AGENT,
                            json={"ticket_id": "T-2", "reply": {"decision": "rejected"}})
    assert by_ticket.status_code == 201 and by_ticket.json()["request_id"] == decision["request_id"]
    start_app.stop(client)

    restarted = start_app(settings)  # a new app on the same database
    rows = _db(settings).execute("SELECT * FROM feedback ORDER BY id").fetchall()
    assert [r["id"] for r in rows] == [fb["id"], by_ticket.json()["id"]]
    assert rows[0]["department"] == "billing_payments" and rows[0]["agent_id"] == "agent-7"
    assert rows[0]["final_text"] == "Refunded; write to [EMAIL] if not"
    assert rows[1]["reply_decision"] == "rejected"
    again = restarted.post("/v1/feedback", headers=AGENT,
                           json={"request_id": decision["request_id"], "urgency": "urgent"})
    assert again.status_code == 201 and again.json()["id"] > fb["id"]


def test_feedback_errors(client: TestClient) -> None:
    decision = client.post("/v1/analyze", json={"text": "Where is my parcel?", "ticket_id": "T-3"},
                           headers=AGENT).json()
    rid = decision["request_id"]
    assert_error(client.post("/v1/feedback", headers=AGENT,
                             json={"request_id": "0" * 32, "urgency": "low"}),
                 404, "decision_not_found")
    assert_error(client.post("/v1/feedback", headers=AGENT,
                             json={"ticket_id": "never-analysed", "urgency": "low"}),
                 404, "decision_not_found")
    body = assert_error(client.post("/v1/feedback", headers=AGENT,
                                    json={"request_id": rid, "department": "marketing"}),
                        422, "validation_error", "marketing")
    assert body["error"]["details"][0]["allowed"] == DEPARTMENTS
    body = assert_error(client.post("/v1/feedback", headers=AGENT,
                                    json={"request_id": rid, "urgency": "critical"}),
                        422, "validation_error")
    assert body["error"]["details"][0]["allowed"] == URGENCIES
    for bad in ({"urgency": "low"},  # neither request_id nor ticket_id
                {"request_id": rid},  # nothing to record
                {"request_id": rid, "reply": {"decision": "edited", "article_id": "size-guide"}},
                {"request_id": rid, "reply": {"decision": "accepted"}},
                {"request_id": rid, "reply": {"decision": "maybe", "article_id": "size-guide"}}):
        assert_error(client.post("/v1/feedback", headers=AGENT, json=bad), 422, "validation_error")
    assert_error(client.post("/v1/feedback", headers=AGENT,
                             json={"request_id": rid, "ticket_id": "T-other", "urgency": "low"}),
                 422, "validation_error", "ticket_id")


def test_export_feedback_writes_rows_triage_train_accepts(
    start_app: AppRunner, make_settings: Callable[..., Settings], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db_url = f"sqlite:///{tmp_path / 'shared.db'}"
    # Half the decisions were made without storing the text: their feedback cannot be exported.
    for store in (False, True):
        client = start_app(make_settings(store_raw_text=store, database_url=db_url))
        for i, (text, dept, urg) in enumerate([
            ("I was charged twice for order 123456", "billing_payments", "high"),
            ("Where is my parcel? It is late", "orders_shipping", "normal"),
            ("Please close my account, mail me at x@example.org", "account_security", "low"),
        ]):
            d = client.post("/v1/analyze", json={"text": text, "ticket_id": f"E-{store}-{i}",
                                                 "channel": "chat" if i else None},
                            headers=AGENT).json()
            r = client.post("/v1/feedback", headers=AGENT, json={
                "request_id": d["request_id"], "department": dept, "urgency": urg})
            assert r.status_code == 201
        client.post("/v1/feedback", headers=AGENT, json={
            "ticket_id": f"E-{store}-0",
            "reply": {"decision": "accepted", "article_id": "double-charge"}})
        start_app.stop(client)

    out = tmp_path / "export" / "feedback.jsonl"
    assert triage_cli(["export-feedback", "--out", str(out), "--database-url", db_url]) == 0
    err = capsys.readouterr().err
    assert "wrote 4 row(s)" in err and "3 with a department or urgency correction" in err
    assert "skipped 4 feedback row(s) whose message text was not stored" in err
    assert "TRIAGE_STORE_RAW_TEXT" in err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["ticket_id"] for r in rows} == {"E-True-0", "E-True-1", "E-True-2"}
    assert rows[0]["department"] == "billing_payments" and rows[0]["urgency"] == "high"
    assert rows[2]["text"] == "Please close my account, mail me at [EMAIL]"
    assert rows[3]["decision"] == "accepted" and rows[3]["department"] is None
    assert [r["channel"] for r in rows] == [None, "chat", "chat", None]
    assert all({"text", "department", "urgency", "ticket_id", "request_id", "created_at"} <= set(r)
               for r in rows)

    bundle = tmp_path / "retrained"
    code = triage_cli(["train", "--data", str(out), "--text-column", "text", "--label",
                       "department=department", "--label", "urgency=urgency", "--out", str(bundle),
                       "--encoder", "fake:64", "--no-cache"])
    assert code == 0 and (bundle / "manifest.json").is_file()
    assert json.loads((bundle / "manifest.json").read_text())["n_training_rows"] == 4


def test_export_feedback_without_a_database_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = triage_cli(["export-feedback", "--out", str(tmp_path / "x.jsonl"),
                       "--database-url", f"sqlite:///{tmp_path / 'missing.db'}"])
    assert code == 2 and "no database at" in capsys.readouterr().err


def test_concurrent_decisions_share_commits(tmp_path: Path) -> None:
    from api.decision_log import DecisionLog
    from api.storage import DecisionRecord, open_storage

    storage = open_storage(f"sqlite:///{tmp_path / 'g.db'}")
    groups: list[int] = []
    commit = storage.record_decisions

    def slow_commit(records):  # type: ignore[no-untyped-def]
        groups.append(len(records))
        time.sleep(0.05)
        return commit(records)

    storage.record_decisions = slow_commit  # type: ignore[method-assign]
    log = DecisionLog(storage)

    def record(i: int, ticket: str | None) -> DecisionRecord:
        return DecisionRecord(f"req-{i}", "analyze", ticket, "v1", "same-text", {"i": i}, "now")

    async def burst() -> list[DecisionRecord]:
        first = asyncio.ensure_future(log.record(record(0, None)))
        await asyncio.sleep(0.01)  # the first commit is running: the rest queue behind it
        rest = [log.record(record(i, "T-race" if i <= 3 else None)) for i in range(1, 11)]
        return [await first, *await asyncio.gather(*rest)]

    stored = asyncio.run(burst())
    assert groups == [1, 10]
    assert [s.request_id for s in stored[1:4]] == ["req-1"] * 3  # idempotency inside one commit
    assert [s.request_id for s in stored[4:]] == [f"req-{i}" for i in range(4, 11)]
    storage.close()


def test_concurrent_identical_requests_make_one_decision(client: TestClient) -> None:
    import threading

    results: list[dict[str, object]] = []

    def call() -> None:
        results.append(client.post("/v1/analyze", json={"text": TEXT, "ticket_id": "T-same"},
                                   headers=AGENT).json())

    threads = [threading.Thread(target=call) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len({r["request_id"] for r in results}) == 1
    assert sum(not r["idempotent_replay"] for r in results) == 1


def test_a_database_from_before_the_channel_column_is_migrated(tmp_path: Path) -> None:
    """Schema version 1 (no decisions.channel) upgrades in place; its rows survive."""
    from api.storage.base import DecisionRecord
    from api.storage.sqlite import MIGRATIONS, SqliteStorage

    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0][2])
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
                 "description TEXT NOT NULL, applied_at TEXT NOT NULL)")
    conn.execute("INSERT INTO schema_migrations VALUES (1, 'v1', '2026-01-01')")
    conn.execute("INSERT INTO decisions (request_id, endpoint, ticket_id, model_version, "
                 "text_sha256, predictions, created_at) VALUES ('old', 'analyze', 'T-1', 'v0', "
                 "'abc', '{}', '2026-01-01')")
    conn.commit()
    conn.close()

    storage = SqliteStorage(path)
    storage.migrate()
    assert storage.schema_version() == MIGRATIONS[-1][0] >= 2
    old = storage.get_decision("old")
    assert old is not None and old.ticket_id == "T-1" and old.channel is None
    storage.record_decision(DecisionRecord(
        request_id="new", endpoint="analyze", ticket_id=None, model_version="v1",
        text_sha256="def", predictions={}, created_at="2026-01-02", channel="form"))
    new = storage.get_decision("new")
    assert new is not None and new.channel == "form"
    storage.close()
