"""The storage protocol and the records that cross it (plain dataclasses, no SQL)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


def utc_now() -> str:
    """Timestamps as stored: ISO 8601 UTC with milliseconds."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


class StorageError(RuntimeError):
    """The database is unreachable, or its schema is newer than this code."""


@dataclass(frozen=True)
class DecisionRecord:
    """One answered analyze/triage/suggest request: what the model said, never the raw text
    unless ``store_raw_text`` is on (and then redacted)."""

    request_id: str
    endpoint: str
    ticket_id: str | None
    model_version: str
    text_sha256: str
    predictions: dict[str, Any]
    created_at: str
    raw_text: str | None = None
    channel: str | None = None  # as the helpdesk sent it (email, chat, ...); not used by the model


@dataclass(frozen=True)
class FeedbackRecord:
    request_id: str
    ticket_id: str | None
    created_at: str
    department: str | None = None
    urgency: str | None = None
    reply_decision: str | None = None
    article_id: str | None = None
    final_text: str | None = None
    agent_id: str | None = None
    id: int | None = None


@dataclass(frozen=True)
class KbEdit:
    """The latest state of one edited article: its JSON, or ``deleted``."""

    seq: int
    article_id: str
    article: dict[str, Any] | None
    deleted: bool
    updated_at: str


class Storage(Protocol):
    """What the API needs from a database. Every write method returns only after it committed."""

    def migrate(self) -> None: ...

    def close(self) -> None: ...

    # decision log
    def record_decision(self, record: DecisionRecord) -> DecisionRecord:
        """:meth:`record_decisions` for one record."""
        ...

    def record_decisions(self, records: Sequence[DecisionRecord]) -> list[DecisionRecord]:
        """Insert ``records`` in one transaction. Where a decision with the same endpoint, ticket
        id and text hash already exists, insert nothing and return that one (idempotent replay)."""
        ...

    def find_decision(self, endpoint: str, ticket_id: str,
                      text_sha256: str) -> DecisionRecord | None: ...

    def get_decision(self, request_id: str) -> DecisionRecord | None: ...

    def latest_decision_for_ticket(self, ticket_id: str) -> DecisionRecord | None: ...

    # feedback
    def add_feedback(self, feedback: FeedbackRecord) -> int: ...

    def get_feedback(self, feedback_id: int) -> FeedbackRecord | None: ...

    def feedback_with_decisions(self) -> Iterator[tuple[FeedbackRecord, DecisionRecord]]:
        """All feedback in insertion order, each with the decision it refers to."""
        ...

    # knowledge-base edits
    def put_article(self, article: dict[str, Any]) -> KbEdit: ...

    def delete_article(self, article_id: str) -> KbEdit: ...

    def kb_edits(self, after_seq: int = 0) -> list[KbEdit]:
        """Latest state of every article edited after ``after_seq``, in edit order."""
        ...
