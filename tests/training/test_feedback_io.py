"""Reading the feedback log from export files (JSONL, CSV) and from the API's database."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
from pathlib import Path

import pytest
from conftest import write_jsonl

from training.feedback_io import (
    FeedbackError,
    is_database_source,
    parse_timestamp,
    read_feedback,
)

ROWS = [
    {"text": "Third time I write, I want a manager", "department": "complaints", "urgency": "high",
     "ticket_id": "T2", "request_id": "r2", "created_at": "2025-03-02T10:00:00Z"},
    {"text": "Where is my parcel?", "department": "orders_shipping", "urgency": None,
     "ticket_id": "T1", "request_id": "r1", "created_at": "2025-03-01T10:00:00+00:00",
     "article_id": "where-is-my-parcel", "decision": "accepted",
     "predicted_department": "orders_shipping"},
    {"text": "Parcel late again", "department": None, "urgency": None, "request_id": "r3",
     "created_at": "2025-03-03T10:00:00", "article_id": "where-is-my-parcel",
     "decision": "edited", "final_text": "Sorry! Your parcel ships tomorrow.",
     "predicted_department": "orders_shipping"},
]


def make_database(path: Path, rows: list[dict[str, object]]) -> Path:
    """A database written through the API's storage module, as the running service would."""
    from api.storage import DecisionRecord, FeedbackRecord, open_storage

    storage = open_storage(f"sqlite:///{path}")
    try:
        for row in rows:
            text = str(row["text"])
            storage.record_decision(DecisionRecord(
                request_id=str(row["request_id"]), endpoint="analyze",
                ticket_id=row.get("ticket_id"),  # type: ignore[arg-type]
                model_version="v0001", text_sha256=hashlib.sha256(text.encode()).hexdigest(),
                predictions={"department": {"label": row.get("predicted_department") or "general"}},
                created_at=str(row["created_at"]), raw_text=text))
            storage.add_feedback(FeedbackRecord(
                request_id=str(row["request_id"]), ticket_id=row.get("ticket_id"),  # type: ignore[arg-type]
                created_at=str(row["created_at"]), department=row.get("department"),  # type: ignore[arg-type]
                urgency=row.get("urgency"), reply_decision=row.get("decision"),  # type: ignore[arg-type]
                article_id=row.get("article_id"), final_text=row.get("final_text")))  # type: ignore[arg-type]
    finally:
        storage.close()
    return path


def test_jsonl_export_corrections_and_decisions(tmp_path):
    log = read_feedback(write_jsonl(tmp_path / "fb.jsonl", ROWS))
    # corrections: rows with any label, oldest first
    assert [c.text for c in log.corrections] == ["Where is my parcel?",
                                                 "Third time I write, I want a manager"]
    assert log.corrections[0].labels == {"department": "orders_shipping", "urgency": None}
    assert log.corrections[1].created_at == dt.datetime(2025, 3, 2, 10, tzinfo=dt.UTC)
    assert [(d.article_id, d.decision) for d in log.decisions] == [
        ("where-is-my-parcel", "accepted"), ("where-is-my-parcel", "edited")]
    assert log.decisions[1].final_text == "Sorry! Your parcel ships tomorrow."
    assert log.decisions[1].query_department == "orders_shipping"
    data = log.corrections_data()
    assert data.labels["department"] == ["orders_shipping", "complaints"]
    assert len(data.extra["created_at"]) == 2


def test_csv_export_empty_cells_are_missing(tmp_path):
    path = tmp_path / "fb.csv"
    cols = ["text", "department", "urgency", "created_at", "article_id", "decision", "final_text",
            "predicted_department"]
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, cols, extrasaction="ignore")
        w.writeheader()
        for r in ROWS:
            w.writerow({k: ("" if v is None else v) for k, v in r.items()})
    log = read_feedback(path)
    assert len(log.corrections) == 2 and len(log.decisions) == 2
    assert log.corrections[0].labels["urgency"] is None


def test_timestamps():
    assert parse_timestamp("2025-03-01T10:00:00Z") == dt.datetime(2025, 3, 1, 10, tzinfo=dt.UTC)
    assert parse_timestamp("2025-03-01 10:00:00").tzinfo is not None  # naive -> UTC
    assert parse_timestamp(0) == dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    assert parse_timestamp("") is None
    with pytest.raises(FeedbackError):
        parse_timestamp("yesterday")


def test_bad_rows_are_reported_or_skipped(tmp_path):
    with pytest.raises(FeedbackError, match="row 2"):
        read_feedback(write_jsonl(tmp_path / "a.jsonl", [ROWS[0], {**ROWS[1], "created_at": "soon"}]))
    with pytest.raises(FeedbackError, match="'text' column"):
        read_feedback(write_jsonl(tmp_path / "b.jsonl", [{"message": "hi", "department": "general"}]))
    with pytest.raises(FeedbackError, match="no such feedback file"):
        read_feedback(tmp_path / "missing.jsonl")
    log = read_feedback(write_jsonl(tmp_path / "c.jsonl", [
        {**ROWS[1], "decision": "ignored"}, {"text": "", "department": "general"}]))
    assert log.decisions == [] and len(log.corrections) == 1
    assert log.skipped == {"unknown decision 'ignored'": 1, "correction without text": 1}


def test_database_sources_are_recognised():
    assert is_database_source("sqlite:///var/triage.db")
    assert is_database_source("/data/triage.sqlite3")
    assert not is_database_source("feedback.jsonl")


def test_database_source_reads_through_api_storage(tmp_path):
    pytest.importorskip("api.storage")
    db = make_database(tmp_path / "triage.db", ROWS)
    from_url = read_feedback(f"sqlite:///{db}")
    from_path = read_feedback(db)  # a plain .db path works too
    from_file = read_feedback(write_jsonl(tmp_path / "fb.jsonl", ROWS))
    for log in (from_url, from_path):
        assert [c.text for c in log.corrections] == [c.text for c in from_file.corrections]
        assert [(d.article_id, d.decision, d.predicted_department) for d in log.decisions] == \
            [(d.article_id, d.decision, d.predicted_department) for d in from_file.decisions]


def test_missing_database_is_a_clear_error(tmp_path):
    pytest.importorskip("api.storage")
    with pytest.raises(FeedbackError, match="no database"):
        read_feedback(f"sqlite:///{tmp_path / 'nope.db'}")
