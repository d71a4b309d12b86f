"""The served model: one reference that reloads swap atomically, plus the run-time KB edits.

A reload loads the new bundle completely, replays the stored KB edits over its index, and only
then replaces the reference; requests that already hold the old service finish on it. KB edits
are committed to storage first and applied to the served index second, under one lock that the
swap also takes, so an edit is never lost between "replayed" and "swapped".
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from triage.bundle import CURRENT_FILE
from triage.kb import Article, KnowledgeBaseIndex
from triage.service import TriageService

from .errors import ApiError
from .metrics import ServiceMetrics
from .storage import KbEdit, Storage

log = logging.getLogger(__name__)

Loader = Callable[[Path], TriageService]


def read_pointer(source: Path) -> str | None:
    """The version a registry's CURRENT names, or None when ``source`` is a bundle."""
    try:
        return (source / CURRENT_FILE).read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None


@dataclass(frozen=True)
class ReloadResult:
    previous_version: str | None
    version: str
    model_dir: str
    seconds: float


class ServedModel:
    def __init__(
        self,
        source: Path,
        storage: Storage,
        reload_root: Path,
        metrics: ServiceMetrics | None = None,
        loader: Loader = TriageService.from_bundle,
    ) -> None:
        self.source = source
        self.storage = storage
        self.reload_root = reload_root
        self.metrics = metrics
        self.loader = loader
        self.pointer: str | None = None
        self.loaded_at: str | None = None
        self.load_error: str | None = None
        self._service: TriageService | None = None
        self._kb_lock = threading.Lock()
        self._reload_lock = asyncio.Lock()
        self._failed_pointer: str | None = None

    @property
    def service(self) -> TriageService | None:
        return self._service

    def require(self) -> TriageService:
        service = self._service
        if service is None:
            raise ApiError(503, "the model is not loaded yet", "model_not_ready",
                           headers={"Retry-After": "2"})
        return service

    # -- loading ----------------------------------------------------------------------------
    def _load(self, source: Path) -> TriageService:
        """Load ``source`` fully, replay KB edits, then swap it in (runs on a worker thread)."""
        pointer = read_pointer(source)
        service = self.loader(source)
        edits = self.storage.kb_edits()
        last = _apply_edits(service, edits)
        with self._kb_lock:
            _apply_edits(service, self.storage.kb_edits(after_seq=last))  # edits made meanwhile
            self._service = service
            self.source, self.pointer = source, pointer
            self.loaded_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            self.load_error = None
        if self.metrics:
            self.metrics.set_model(service.version, service.embedder.spec)
        log.info("serving model %s from %s (%d KB edits replayed)", service.version, source,
                 len(edits))
        return service

    async def reload(self, model_dir: Path | None = None) -> ReloadResult:
        """Load ``model_dir`` (default: the current source again) and swap it in.

        Raises :class:`ApiError` (422) when the directory is outside the allowed root or does not
        load; the old model keeps serving in that case.
        """
        source = self.source if model_dir is None else self._allowed(model_dir)
        async with self._reload_lock:
            previous = self._service.version if self._service else None
            started = time.perf_counter()
            try:
                service = await asyncio.to_thread(self._load, source)
            except Exception as exc:
                if self.metrics:
                    self.metrics.reloads.labels("failed").inc()
                log.error("loading model from %s failed: %s", source, exc)
                raise ApiError(422, f"could not load {source}: {exc}", "model_load_failed") from exc
            if self.metrics:
                self.metrics.reloads.labels("ok").inc()
            return ReloadResult(previous, service.version, str(source),
                                round(time.perf_counter() - started, 3))

    def _allowed(self, model_dir: Path) -> Path:
        path = model_dir if model_dir.is_absolute() else self.reload_root / model_dir
        try:
            path = path.resolve()
        except (OSError, ValueError) as exc:  # NUL bytes, unencodable names, loops
            raise ApiError(422, f"model_dir is not a usable path: {exc}", "model_dir_invalid") from None
        if not path.is_relative_to(self.reload_root):
            raise ApiError(422, f"model_dir must be inside {self.reload_root} "
                                "(TRIAGE_MODELS_ROOT)", "model_dir_not_allowed")
        return path

    async def initial_load(self) -> None:
        try:
            await self.reload()
        except ApiError as exc:
            self.load_error = exc.message

    async def watch_registry(self, interval: float) -> None:
        """Reload whenever the registry's CURRENT pointer changes (bundles are not watched)."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self._follow_pointer()
            except Exception:
                log.exception("checking %s/%s failed", self.source, CURRENT_FILE)

    async def _follow_pointer(self) -> None:
        pointer = await asyncio.to_thread(read_pointer, self.source)
        if pointer is None or pointer == self.pointer or pointer == self._failed_pointer:
            return
        log.info("registry %s now points at %s; reloading", self.source, pointer)
        try:
            await self.reload()
            self._failed_pointer = None
        except ApiError as exc:
            self._failed_pointer = pointer  # retried when CURRENT changes again
            self.load_error = exc.message

    # -- knowledge-base edits ---------------------------------------------------------------
    def upsert_article(self, article: Article) -> bool:
        """Store, then serve, an article; True when it is new. Blocking: call off the loop."""
        with self._kb_lock:
            service = self.require()
            self.storage.put_article(article_record(article))
            return _kb_of(service).upsert(article)

    def create_article(self, article: Article) -> bool:
        """Like :meth:`upsert_article`, but False (and nothing stored) when the id exists."""
        with self._kb_lock:
            service = self.require()
            if service.kb is not None and article.id in service.kb.articles:
                return False
            self.storage.put_article(article_record(article))
            return _kb_of(service).upsert(article)

    def delete_article(self, article_id: str) -> bool:
        with self._kb_lock:
            service = self.require()
            if service.kb is None or article_id not in service.kb.articles:
                return False
            self.storage.delete_article(article_id)
            service.kb.delete(article_id)
            return True


def article_record(article: Article) -> dict[str, object]:
    return {"id": article.id, "department": article.department, "title": article.title,
            "replies": article.replies, "questions": article.questions}


def _kb_of(service: TriageService) -> KnowledgeBaseIndex:
    if service.kb is None:  # a bundle without a KB gets one on its first article
        service.kb = KnowledgeBaseIndex(service.embedder)
    return service.kb


def _apply_edits(service: TriageService, edits: Sequence[KbEdit]) -> int:
    """Apply stored edits to ``service``'s index; returns the last sequence number seen."""
    last = 0
    for edit in edits:
        last = max(last, edit.seq)
        if edit.deleted:
            if service.kb is not None:
                service.kb.delete(edit.article_id)
        elif edit.article is not None:
            _kb_of(service).upsert(Article.from_dict(edit.article))
    return last
