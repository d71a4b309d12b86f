"""The FastAPI app factory, its lifespan, and ``serve()`` behind ``triage serve``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from fastapi import FastAPI

from triage import __version__
from triage.service import TriageService

from .auth import KeyRing
from .batching import MicroBatcher
from .decision_log import DecisionLog
from .deps import Runtime
from .errors import install_error_handlers
from .metrics import ServiceMetrics
from .middleware import RequestGuard
from .routes import analyze, feedback, health, kb, models
from .schemas import (
    MAX_BATCH_MESSAGES,
    MAX_CONTEXT_KEYS,
    MAX_CONTEXT_VALUE_CHARS,
    MAX_SUBJECT_CHARS,
    MAX_TEXT_CHARS,
)
from .serving import Loader, ServedModel, read_pointer
from .settings import ConfigError, Settings, get_settings, load_settings
from .storage import StorageError, open_storage

log = logging.getLogger(__name__)

DESCRIPTION = f"""
Multilingual triage for e-commerce customer service: department and urgency routing with
calibrated confidence, language detection, and knowledge-base reply suggestions.

**Authentication.** Send `Authorization: Bearer <key>`. Keys have a role: `agent` (analyze,
triage, suggest, batch, feedback, read the knowledge base, model info) or `admin` (also edit the
knowledge base and reload the model). A missing or unknown key gets 401, a key with too small a
role 403. `/healthz`, `/readyz` and `/metrics` need no key.

**Limits.** `text` 1-{MAX_TEXT_CHARS:,} characters (not only whitespace); `subject` at most
{MAX_SUBJECT_CHARS:,}; `context` at most {MAX_CONTEXT_KEYS} keys with string or number values of at
most {MAX_CONTEXT_VALUE_CHARS} characters; `top_k` 1-10; at most {MAX_BATCH_MESSAGES} messages per
batch; request bodies at most 1 MiB (413). Bodies must be UTF-8 JSON (`Content-Type:
application/json`; otherwise 415; invalid JSON or UTF-8: 400). When too many requests are queued
the answer is 429 with `Retry-After`.

**Errors.** Every 4xx/5xx has the body
`{{"error": {{"code": "...", "message": "...", "details": [...]}}, "request_id": "..."}}`;
`code` is stable, `details` locates field errors. Every response carries `X-Request-ID`.
"""

TAGS = [
    {"name": "analyze", "description": "Routing, language and reply suggestions."},
    {"name": "feedback", "description": "Agent corrections, exported for retraining."},
    {"name": "knowledge base", "description": "Articles behind the reply suggestions."},
    {"name": "model", "description": "The served model bundle."},
    {"name": "health", "description": "Probes and metrics (no key needed)."},
]


def create_app(settings: Settings | None = None, loader: Loader | None = None) -> FastAPI:
    """Build the app; nothing is loaded until the lifespan starts.

    ``loader`` replaces :meth:`TriageService.from_bundle` (tests use it to slow loading down).
    """
    settings = (settings or get_settings()).check()
    metrics = ServiceMetrics()
    app = FastAPI(title="support-triage", version=__version__, description=DESCRIPTION,
                  openapi_tags=TAGS, lifespan=_lifespan)
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.loader = loader
    app.state.runtime = None
    install_error_handlers(app)
    app.add_middleware(RequestGuard, metrics=metrics, max_body_bytes=settings.max_body_bytes)
    for module in (analyze, feedback, kb, models, health):
        app.include_router(module.router)
    return app


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    metrics: ServiceMetrics = app.state.metrics
    storage = await asyncio.to_thread(open_storage, settings.database_url)
    keys = KeyRing.from_settings(settings)
    # One thread: encoder calls run one at a time, off the event loop.
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="triage-encoder")
    served = ServedModel(settings.model_dir, storage, settings.reload_root(), metrics,
                         loader=app.state.loader or TriageService.from_bundle)
    batcher = MicroBatcher(served.require, executor, window=settings.batch_window_ms / 1000,
                           max_batch=settings.max_batch_size, queue_size=settings.queue_size,
                           metrics=metrics)
    batcher.start()
    app.state.runtime = Runtime(settings, metrics, storage, keys, served, batcher, executor,
                                DecisionLog(storage))
    # The model loads in the background: /healthz answers at once, /readyz says 503 until loaded.
    tasks = [asyncio.create_task(served.initial_load(), name="triage-load")]
    if settings.reload_poll_seconds > 0 and read_pointer(settings.model_dir) is not None:
        tasks.append(asyncio.create_task(served.watch_registry(settings.reload_poll_seconds),
                                         name="triage-registry-watch"))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await batcher.stop()
        executor.shutdown(wait=True, cancel_futures=True)
        app.state.runtime = None
        storage.close()


def serve(model: str | None = None, host: str | None = None, port: int | None = None) -> None:
    """Run the API with uvicorn (``triage serve``); configuration errors fail before binding."""
    import uvicorn

    from triage.bundle import check_compatible, read_manifest, resolve_bundle

    overrides = {k: v for k, v in (("model_dir", model), ("host", host), ("port", port))
                 if v is not None}
    settings = load_settings(**overrides)
    bundle = resolve_bundle(settings.model_dir)  # BundleError: a clear one-line message
    check_compatible(read_manifest(bundle), bundle)
    try:
        open_storage(settings.database_url).close()
    except StorageError as exc:
        raise ConfigError(f"TRIAGE_DATABASE_URL: {exc}") from exc
    KeyRing.from_settings(settings)  # generate (and show) the admin key before uvicorn logs
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                log_level=settings.log_level)
