"""Feedback as rows: one per feedback event, the format ``triage train`` and retraining read.

Columns: ``text`` (redacted, as stored), ``department``, ``urgency`` (the agent's correction,
null where not given), ``ticket_id``, ``request_id``, ``created_at`` (of the feedback),
``channel`` (of the analysed request), ``model_version``, ``predicted_department``, and the reply
decision ``article_id``, ``decision``, ``final_text``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .base import Storage, StorageError


def feedback_rows(storage: Storage) -> Iterator[dict[str, Any]]:
    """Every feedback event joined with its decision, oldest first (text None when not stored)."""
    for fb, decision in storage.feedback_with_decisions():
        predicted = decision.predictions.get("department")
        yield {
            "text": decision.raw_text,
            "department": fb.department,
            "urgency": fb.urgency,
            "ticket_id": fb.ticket_id,
            "request_id": fb.request_id,
            "created_at": fb.created_at,
            "channel": decision.channel,
            "model_version": decision.model_version,
            "predicted_department": predicted.get("label") if isinstance(predicted, dict) else None,
            "article_id": fb.article_id,
            "decision": fb.reply_decision,
            "final_text": fb.final_text,
        }


def export_feedback_rows(database_url: str) -> list[dict[str, Any]]:
    """All feedback rows of an existing database (used by ``training.feedback_io``)."""
    from api.settings import sqlite_path

    from . import open_storage

    path = sqlite_path(database_url)
    if path is not None and not path.is_file():
        raise StorageError(f"no database at {path}")
    storage = open_storage(database_url)
    try:
        return list(feedback_rows(storage))
    finally:
        storage.close()


@dataclass(frozen=True)
class ExportSummary:
    rows: int
    corrections: int
    skipped_no_text: int

    def describe(self, out: Path) -> str:
        lines = [(f"wrote {self.rows} row(s) to {out}, {self.corrections} with a department or "
                  "urgency correction")]
        if self.skipped_no_text:
            lines.append(
                f"skipped {self.skipped_no_text} feedback row(s) whose message text was not stored "
                "(TRIAGE_STORE_RAW_TEXT was off when the message was analysed): the decision log "
                "then keeps only the text's SHA-256, so they cannot become training rows"
            )
        return "\n".join(lines)


def export_feedback(storage: Storage, out: str | Path) -> ExportSummary:
    """Write the feedback rows that have text to ``out`` (JSONL, written atomically)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    rows = corrections = no_text = 0
    with tmp.open("w", encoding="utf-8") as f:
        for row in feedback_rows(storage):
            if not row["text"]:
                no_text += 1
                continue
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            rows += 1
            corrections += int(row["department"] is not None or row["urgency"] is not None)
    os.replace(tmp, out)
    return ExportSummary(rows, corrections, no_text)
