"""Persistence behind the API: decision log, feedback and run-time KB edits.

Routes only see the :class:`Storage` protocol; :func:`open_storage` picks a backend from the
database URL, so a PostgreSQL backend is one more module here and one more branch below.
"""

from __future__ import annotations

from .base import DecisionRecord, FeedbackRecord, KbEdit, Storage, StorageError, utc_now
from .export import ExportSummary, export_feedback, export_feedback_rows


def open_storage(database_url: str) -> Storage:
    """Open (and migrate) the storage a ``TRIAGE_DATABASE_URL`` names."""
    from api.settings import sqlite_path

    path = sqlite_path(database_url)
    if path is not None:
        from .sqlite import SqliteStorage

        storage = SqliteStorage(path)
        storage.migrate()
        return storage
    raise StorageError(f"unsupported database URL scheme in {database_url.split(':', 1)[0]!r}: "
                       "use sqlite:///path/to/triage.db")


__all__ = ["DecisionRecord", "ExportSummary", "FeedbackRecord", "KbEdit", "Storage",
           "StorageError", "export_feedback", "export_feedback_rows", "open_storage", "utc_now"]
