"""Reading the agents' feedback log: label corrections and reply decisions.

A source is a file written by ``triage export-feedback`` (JSONL or CSV, one row per feedback
event) or a database URL/path read through the API's storage module. Row fields::

    text, department, urgency, created_at        a label correction (labels may be empty)
    subject, ticket_id, request_id               optional
    article_id, decision, final_text,            optional reply decision on a suggested article:
    predicted_department                         decision is accepted | edited | rejected

One row can carry both a correction and a reply decision.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from triage.data import DataError, LabelledData, compose_text, read_rows

log = logging.getLogger(__name__)

DEFAULT_HEADS = ("department", "urgency")
DECISIONS = ("accepted", "edited", "rejected")
DATABASE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
DATABASE_URL_ENV = "TRIAGE_DATABASE_URL"
# Column spellings accepted for the department the model predicted when the reply was suggested.
PREDICTED_DEPARTMENT_COLUMNS = ("predicted_department", "department_predicted", "predicted_dept")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class FeedbackError(DataError):
    """The feedback source is missing, unreadable or malformed."""


@dataclass(frozen=True)
class Correction:
    """An agent's label(s) for one message; ``labels`` maps head -> label (``None``: not given)."""

    text: str
    labels: Mapping[str, str | None]
    created_at: dt.datetime | None = None
    ticket_id: str | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class ReplyDecision:
    """What an agent did with a suggested knowledge-base reply."""

    article_id: str
    decision: str
    text: str = ""
    final_text: str | None = None
    predicted_department: str | None = None
    department: str | None = None
    created_at: dt.datetime | None = None
    request_id: str | None = None

    @property
    def query_department(self) -> str | None:
        """The department the query was routed to when the reply was suggested."""
        return self.predicted_department or self.department


@dataclass
class FeedbackLog:
    """Everything read from one feedback source, oldest first."""

    source: str
    corrections: list[Correction] = field(default_factory=list)
    decisions: list[ReplyDecision] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    def corrections_data(self, heads: Sequence[str] = DEFAULT_HEADS) -> LabelledData:
        """Corrections as :class:`LabelledData`, with ``created_at`` (datetime or None) as extra."""
        data = LabelledData([], {h: [] for h in heads}, {"created_at": []})
        for c in self.corrections:
            data.texts.append(c.text)
            for h in heads:
                data.labels[h].append(c.labels.get(h))
            data.extra["created_at"].append(c.created_at)
        return data


def parse_timestamp(value: object) -> dt.datetime | None:
    """ISO 8601 text (``Z`` allowed) or seconds since the epoch; naive times are taken as UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        ts = value
    elif isinstance(value, (int, float)):
        ts = _EPOCH + dt.timedelta(seconds=float(value))
    else:
        text = str(value).strip()
        try:
            ts = _EPOCH + dt.timedelta(seconds=float(text))
        except ValueError:
            try:
                ts = dt.datetime.fromisoformat(text)
            except ValueError as exc:
                raise FeedbackError(f"created_at {text!r} is not an ISO 8601 timestamp") from exc
    return ts if ts.tzinfo else ts.replace(tzinfo=dt.UTC)


def is_database_source(source: str | os.PathLike[str]) -> bool:
    s = str(source)
    return "://" in s or s.startswith("sqlite:") or Path(s).suffix.lower() in DATABASE_SUFFIXES


def _clean(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def parse_rows(
    rows: Iterable[Mapping[str, object]], source: str, heads: Sequence[str] = DEFAULT_HEADS
) -> FeedbackLog:
    """Turn exported rows into a :class:`FeedbackLog` sorted by ``created_at`` (stable)."""
    feedback = FeedbackLog(source)
    skipped: dict[str, int] = {}
    for n, row in enumerate(rows, 1):
        try:
            created = parse_timestamp(row.get("created_at"))
        except FeedbackError as exc:
            raise FeedbackError(f"{source}: row {n}: {exc}") from exc
        text = compose_text(str(row.get("text") or ""), _clean(row.get("subject")))
        labels = {h: _clean(row.get(h)) for h in heads}
        has_text = bool(text.strip())
        if any(v is not None for v in labels.values()):
            if has_text:
                feedback.corrections.append(Correction(
                    text, labels, created, _clean(row.get("ticket_id")), _clean(row.get("request_id"))
                ))
            else:
                skipped["correction without text"] = skipped.get("correction without text", 0) + 1
        article_id, decision = _clean(row.get("article_id")), _clean(row.get("decision"))
        if article_id and decision:
            decision = decision.lower()
            if decision not in DECISIONS:
                key = f"unknown decision {decision!r}"
                skipped[key] = skipped.get(key, 0) + 1
                continue
            predicted = next((_clean(row.get(c)) for c in PREDICTED_DEPARTMENT_COLUMNS
                              if _clean(row.get(c))), None)
            feedback.decisions.append(ReplyDecision(
                article_id, decision, text, _clean(row.get("final_text")), predicted,
                labels.get("department"), created, _clean(row.get("request_id")),
            ))
    oldest = dt.datetime.min.replace(tzinfo=dt.UTC)
    feedback.corrections.sort(key=lambda c: c.created_at or oldest)
    feedback.decisions.sort(key=lambda d: d.created_at or oldest)
    feedback.skipped = skipped
    for why, count in skipped.items():
        log.warning("%s: skipped %d row(s): %s", source, count, why)
    return feedback


def read_feedback(
    source: str | os.PathLike[str], heads: Sequence[str] = DEFAULT_HEADS
) -> FeedbackLog:
    """Read a feedback export file (.jsonl/.csv) or a database (URL like ``sqlite:///x.db``)."""
    if is_database_source(source):
        return parse_rows(_rows_from_database(str(source)), str(source), heads)
    path = Path(source)
    if not path.is_file():
        raise FeedbackError(f"{path}: no such feedback file")
    rows = read_rows(path)
    if rows and "text" not in set().union(*(r.keys() for r in rows)):
        raise FeedbackError(f"{path}: feedback rows need a 'text' column")
    return parse_rows(rows, str(path), heads)


def default_feedback_source() -> str | None:
    """The API's database: ``TRIAGE_DATABASE_URL``, else the API's default file when it exists."""
    if os.environ.get(DATABASE_URL_ENV):
        return os.environ[DATABASE_URL_ENV]
    try:
        from api.settings import DEFAULT_DATABASE_URL, sqlite_path
    except ImportError:
        return None
    path = sqlite_path(DEFAULT_DATABASE_URL)
    return DEFAULT_DATABASE_URL if path is not None and path.is_file() else None


def _rows_from_database(url: str) -> list[dict[str, object]]:
    """Export rows through the API's storage module, so the SQL lives in one place."""
    if "://" not in url and not url.startswith("sqlite:"):
        url = f"sqlite:///{Path(url).resolve()}"
    try:
        from api.storage import StorageError, export_feedback_rows
    except ImportError as exc:
        raise FeedbackError(
            f"{url}: reading feedback from a database needs the API's storage module "
            f"(api.storage), which is not available here ({exc}); export the log with "
            "`triage export-feedback --out FILE` and pass that file instead"
        ) from exc
    try:
        return [dict(r) for r in export_feedback_rows(url)]
    except (StorageError, ValueError) as exc:  # ValueError: api.settings.ConfigError
        raise FeedbackError(f"{url}: {exc}") from exc
