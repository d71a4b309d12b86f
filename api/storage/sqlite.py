"""SQLite storage: WAL journal, ``synchronous=FULL`` and versioned schema migrations.

With ``synchronous=FULL`` every commit is fsynced before the call returns, so a write the API
acknowledged survives a SIGKILL (and a power cut) of the server.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .base import DecisionRecord, FeedbackRecord, KbEdit, StorageError, utc_now

log = logging.getLogger(__name__)

# (version, description, SQL). Append only: a released migration is never edited.
MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (1, "decision log, feedback, knowledge-base edits", """
        CREATE TABLE decisions (
            request_id    TEXT PRIMARY KEY,
            endpoint      TEXT NOT NULL,
            ticket_id     TEXT,
            model_version TEXT NOT NULL,
            text_sha256   TEXT NOT NULL,
            predictions   TEXT NOT NULL,
            raw_text      TEXT,
            created_at    TEXT NOT NULL
        );
        CREATE UNIQUE INDEX decisions_idempotency
            ON decisions (endpoint, ticket_id, text_sha256) WHERE ticket_id IS NOT NULL;
        CREATE INDEX decisions_ticket ON decisions (ticket_id, created_at);
        CREATE TABLE feedback (
            id             INTEGER PRIMARY KEY AUTOINCREMENT,
            request_id     TEXT NOT NULL REFERENCES decisions (request_id),
            ticket_id      TEXT,
            department     TEXT,
            urgency        TEXT,
            reply_decision TEXT,
            article_id     TEXT,
            final_text     TEXT,
            agent_id       TEXT,
            created_at     TEXT NOT NULL
        );
        CREATE INDEX feedback_request ON feedback (request_id);
        CREATE TABLE kb_articles (
            id         TEXT PRIMARY KEY,
            article    TEXT,
            deleted    INTEGER NOT NULL DEFAULT 0,
            updated_at TEXT NOT NULL,
            seq        INTEGER NOT NULL
        );
        CREATE INDEX kb_articles_seq ON kb_articles (seq);
    """),
    (2, "decisions keep the request's channel", """
        ALTER TABLE decisions ADD COLUMN channel TEXT;
    """),
)


class SqliteStorage:
    """One connection guarded by a lock: writes are serialised anyway, and reads are short."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                                         timeout=10.0)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"cannot open database {self.path}: {exc}") from exc
        self._lock = threading.Lock()

    # -- schema -----------------------------------------------------------------------------
    def schema_version(self) -> int:
        with self._lock:
            self._conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                               "version INTEGER PRIMARY KEY, description TEXT NOT NULL, "
                               "applied_at TEXT NOT NULL)")
            row = self._conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    def migrate(self) -> None:
        current = self.schema_version()
        latest = MIGRATIONS[-1][0]
        if current > latest:
            raise StorageError(f"{self.path}: schema version {current} is newer than this code "
                               f"knows ({latest}); upgrade support-triage")
        for version, description, sql in MIGRATIONS:
            if version <= current:
                continue
            with self._lock:
                try:
                    self._conn.execute("BEGIN IMMEDIATE")
                    for statement in sql.split(";"):
                        if statement.strip():
                            self._conn.execute(statement)
                    self._conn.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)",
                                       (version, description, utc_now()))
                    self._conn.execute("COMMIT")
                except sqlite3.Error as exc:
                    self._conn.execute("ROLLBACK")
                    raise StorageError(f"{self.path}: migration {version} failed: {exc}") from exc
            log.info("database %s migrated to schema version %d", self.path, version)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- helpers ----------------------------------------------------------------------------
    def _write(self, sql: str, params: tuple[Any, ...]) -> sqlite3.Cursor:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                cur = self._conn.execute(sql, params)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            return cur

    def _one(self, sql: str, params: tuple[Any, ...]) -> dict[str, Any] | None:
        with self._lock:
            cur = self._conn.execute(sql, params)
            row = cur.fetchone()
            if row is None:
                return None
            return dict(zip([c[0] for c in cur.description], row, strict=True))

    @staticmethod
    def _decision(row: dict[str, Any]) -> DecisionRecord:
        return DecisionRecord(
            request_id=row["request_id"], endpoint=row["endpoint"], ticket_id=row["ticket_id"],
            model_version=row["model_version"], text_sha256=row["text_sha256"],
            predictions=json.loads(row["predictions"]), created_at=row["created_at"],
            raw_text=row["raw_text"], channel=row["channel"],
        )

    # -- decision log -----------------------------------------------------------------------
    def record_decision(self, record: DecisionRecord) -> DecisionRecord:
        return self.record_decisions([record])[0]

    def record_decisions(self, records: Sequence[DecisionRecord]) -> list[DecisionRecord]:
        stored: list[DecisionRecord] = []
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for record in records:
                    cur = self._conn.execute(
                        "INSERT INTO decisions (request_id, endpoint, ticket_id, model_version,"
                        " text_sha256, predictions, raw_text, created_at, channel)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                        (record.request_id, record.endpoint, record.ticket_id,
                         record.model_version, record.text_sha256,
                         json.dumps(record.predictions, ensure_ascii=False), record.raw_text,
                         record.created_at, record.channel),
                    )
                    if cur.rowcount == 1 or record.ticket_id is None:
                        stored.append(record)
                        continue
                    cur = self._conn.execute(
                        "SELECT * FROM decisions WHERE endpoint = ? AND ticket_id = ?"
                        " AND text_sha256 = ?", (record.endpoint, record.ticket_id,
                                                 record.text_sha256))
                    names = [c[0] for c in cur.description]
                    stored.append(self._decision(dict(zip(names, cur.fetchone(), strict=True))))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return stored

    def find_decision(self, endpoint: str, ticket_id: str,
                      text_sha256: str) -> DecisionRecord | None:
        row = self._one("SELECT * FROM decisions WHERE endpoint = ? AND ticket_id = ? "
                        "AND text_sha256 = ?", (endpoint, ticket_id, text_sha256))
        return self._decision(row) if row else None

    def get_decision(self, request_id: str) -> DecisionRecord | None:
        row = self._one("SELECT * FROM decisions WHERE request_id = ?", (request_id,))
        return self._decision(row) if row else None

    def latest_decision_for_ticket(self, ticket_id: str) -> DecisionRecord | None:
        row = self._one("SELECT * FROM decisions WHERE ticket_id = ? "
                        "ORDER BY created_at DESC, rowid DESC LIMIT 1", (ticket_id,))
        return self._decision(row) if row else None

    # -- feedback ---------------------------------------------------------------------------
    _FEEDBACK_COLUMNS = ("request_id", "ticket_id", "department", "urgency", "reply_decision",
                         "article_id", "final_text", "agent_id", "created_at")

    def add_feedback(self, feedback: FeedbackRecord) -> int:
        cols = self._FEEDBACK_COLUMNS
        cur = self._write(
            f"INSERT INTO feedback ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            tuple(getattr(feedback, c) for c in cols),
        )
        return int(cur.lastrowid or 0)

    def get_feedback(self, feedback_id: int) -> FeedbackRecord | None:
        row = self._one("SELECT * FROM feedback WHERE id = ?", (feedback_id,))
        return FeedbackRecord(**row) if row else None

    def feedback_with_decisions(self) -> Iterator[tuple[FeedbackRecord, DecisionRecord]]:
        with self._lock:
            cur = self._conn.execute(
                "SELECT f.*, d.endpoint, d.model_version, d.text_sha256, d.predictions,"
                " d.raw_text, d.channel, d.created_at AS decision_created_at,"
                " d.ticket_id AS decision_ticket"
                " FROM feedback f JOIN decisions d ON d.request_id = f.request_id ORDER BY f.id")
            names = [c[0] for c in cur.description]
            rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        for r in rows:
            fb = FeedbackRecord(**{k: r[k] for k in ("id", *self._FEEDBACK_COLUMNS)})
            decision = DecisionRecord(
                request_id=r["request_id"], endpoint=r["endpoint"], ticket_id=r["decision_ticket"],
                model_version=r["model_version"], text_sha256=r["text_sha256"],
                predictions=json.loads(r["predictions"]), created_at=r["decision_created_at"],
                raw_text=r["raw_text"], channel=r["channel"],
            )
            yield fb, decision

    # -- knowledge-base edits ---------------------------------------------------------------
    def _put_kb(self, article_id: str, article: dict[str, Any] | None) -> KbEdit:
        now = utc_now()
        payload = json.dumps(article, ensure_ascii=False) if article is not None else None
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                seq = int(self._conn.execute(
                    "SELECT COALESCE(MAX(seq), 0) + 1 FROM kb_articles").fetchone()[0])
                self._conn.execute(
                    "INSERT INTO kb_articles (id, article, deleted, updated_at, seq)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                    " article = excluded.article, deleted = excluded.deleted,"
                    " updated_at = excluded.updated_at, seq = excluded.seq",
                    (article_id, payload, int(article is None), now, seq),
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return KbEdit(seq, article_id, article, article is None, now)

    def put_article(self, article: dict[str, Any]) -> KbEdit:
        return self._put_kb(str(article["id"]), article)

    def delete_article(self, article_id: str) -> KbEdit:
        return self._put_kb(article_id, None)

    def kb_edits(self, after_seq: int = 0) -> list[KbEdit]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, id, article, deleted, updated_at FROM kb_articles WHERE seq > ?"
                " ORDER BY seq", (after_seq,)).fetchall()
        return [KbEdit(seq, aid, json.loads(art) if art else None, bool(deleted), updated)
                for seq, aid, art, deleted, updated in rows]
