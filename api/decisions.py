"""Decisions and their corrections: idempotent analysis, the decision log and agent feedback.

Routes stay thin by calling in here. Every analysis is logged with its request id, ticket id,
model version, response JSON and text SHA-256; the text itself only when ``store_raw_text`` is
on, and then redacted.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Sequence
from typing import Any

from starlette.concurrency import run_in_threadpool

from triage.data import compose_text
from triage.redaction import redact
from triage.service import Analysis, MessageInput

from .batching import QueueFullError
from .deps import Runtime
from .errors import ApiError
from .schemas import AnalyzeRequest, FeedbackCreate
from .storage import DecisionRecord, FeedbackRecord, utc_now

# endpoint -> (suggest, classify). /v1/suggest still classifies: the predicted department
# boosts its articles.
ENDPOINTS = {"analyze": (True, True), "triage": (False, True), "suggest": (True, True)}
_TRIAGE_KEYS = ("department", "urgency", "urgency_signals", "language", "needs_review",
                "review_reasons")


def text_sha256(req: AnalyzeRequest) -> str:
    return hashlib.sha256(compose_text(req.text, req.subject).encode("utf-8")).hexdigest()


def to_message(req: AnalyzeRequest) -> MessageInput:
    return MessageInput(text=req.text, subject=req.subject,
                        customer_language=req.customer_language, context=dict(req.context),
                        reply_language=req.reply_language, top_k=req.top_k)


def shape(endpoint: str, result: dict[str, Any], request_id: str, ticket_id: str | None,
          created_at: str) -> dict[str, Any]:
    """The response body of ``endpoint`` for one :meth:`Analysis.to_dict` result."""
    out: dict[str, Any] = {"request_id": request_id, "ticket_id": ticket_id,
                           "model_version": result["model_version"], "created_at": created_at}
    if endpoint == "suggest":
        out.update(language=result["language"], suggestions=result.get("suggestions"))
        return out
    out.update({k: result.get(k) for k in _TRIAGE_KEYS})
    if endpoint == "analyze":
        out["suggestions"] = result.get("suggestions")
    return out


def replay(record: DecisionRecord) -> dict[str, Any]:
    return {**record.predictions, "idempotent_replay": True}


async def _find_replay(runtime: Runtime, endpoint: str, req: AnalyzeRequest,
                       digest: str) -> dict[str, Any] | None:
    if not req.ticket_id:
        return None
    stored = await run_in_threadpool(runtime.storage.find_decision, endpoint, req.ticket_id, digest)
    if stored is None:
        return None
    runtime.metrics.replays.inc()
    return replay(stored)


async def _log(runtime: Runtime, endpoint: str, req: AnalyzeRequest, analysis: Analysis,
               digest: str, request_id: str) -> dict[str, Any]:
    result = analysis.to_dict()
    created_at = utc_now()
    body = shape(endpoint, result, request_id, req.ticket_id, created_at)
    raw = redact(compose_text(req.text, req.subject)) if runtime.settings.store_raw_text else None
    record = DecisionRecord(request_id=request_id, endpoint=endpoint, ticket_id=req.ticket_id,
                            model_version=analysis.model_version, text_sha256=digest,
                            predictions=body, created_at=created_at, raw_text=raw,
                            channel=req.channel)
    t0 = time.perf_counter()
    stored = await runtime.decision_log.record(record)
    runtime.metrics.observe_stage("decision_log", time.perf_counter() - t0)
    if stored.request_id != request_id:  # an identical request won the race: answer as it did
        runtime.metrics.replays.inc()
        return replay(stored)
    runtime.metrics.observe_analyses([result])
    return {**body, "idempotent_replay": False}


async def decide(runtime: Runtime, req: AnalyzeRequest, endpoint: str,
                 request_id: str) -> dict[str, Any]:
    """Analyse one message through the micro-batcher (or replay a stored decision)."""
    runtime.served.require()  # 503 before queueing when no model is loaded
    digest = text_sha256(req)
    stored = await _find_replay(runtime, endpoint, req, digest)
    if stored is not None:
        return stored
    suggest, classify = ENDPOINTS[endpoint]
    try:
        analysis = await runtime.batcher.submit(to_message(req), suggest=suggest,
                                                classify=classify)
    except QueueFullError as exc:
        raise ApiError(429, f"too many requests waiting ({exc}); retry shortly",
                       headers={"Retry-After": "1"}) from None
    return await _log(runtime, endpoint, req, analysis, digest, request_id)


async def decide_batch(runtime: Runtime, reqs: Sequence[AnalyzeRequest]) -> list[dict[str, Any]]:
    """Analyse a batch with one ``analyze_many`` call on the encoder thread."""
    service = runtime.served.require()
    digests = [text_sha256(r) for r in reqs]
    results: list[dict[str, Any] | None] = [
        await _find_replay(runtime, "analyze", r, d) for r, d in zip(reqs, digests, strict=True)]
    todo = [i for i, r in enumerate(results) if r is None]
    if todo:
        loop = asyncio.get_running_loop()
        analyses = await loop.run_in_executor(
            runtime.executor, service.analyze_many, [to_message(reqs[i]) for i in todo])
        logged = await asyncio.gather(*(  # one group commit for the whole batch
            _log(runtime, "analyze", reqs[i], analysis, digests[i], uuid.uuid4().hex)
            for i, analysis in zip(todo, analyses, strict=True)))
        for i, body in zip(todo, logged, strict=True):
            results[i] = body
    return [r for r in results if r is not None]


async def add_feedback(runtime: Runtime, body: FeedbackCreate) -> dict[str, Any]:
    """Validate a correction against the served model's labels, then commit it."""
    service = runtime.served.require()
    storage = runtime.storage
    if body.request_id:
        decision = await run_in_threadpool(storage.get_decision, body.request_id)
        if decision is None:
            raise ApiError(404, "no decision with this request_id", "decision_not_found")
    else:
        assert body.ticket_id is not None
        decision = await run_in_threadpool(storage.latest_decision_for_ticket, body.ticket_id)
        if decision is None:
            raise ApiError(404, "no decision for this ticket_id", "decision_not_found")
    problems: list[dict[str, Any]] = []
    if body.ticket_id and decision.ticket_id and body.ticket_id != decision.ticket_id:
        problems.append({"loc": ["body", "ticket_id"], "type": "mismatch",
                         "msg": "ticket_id differs from the decision's ticket_id"})
    label_sets = service.model.label_sets
    for head in ("department", "urgency"):
        value = getattr(body, head)
        if value is None:
            continue
        allowed = label_sets.get(head)
        if allowed is None:
            problems.append({"loc": ["body", head], "type": "unknown_head",
                             "msg": f"the served model has no {head} head"})
        elif value not in allowed:
            problems.append({"loc": ["body", head], "type": "unknown_label", "allowed": allowed,
                             "msg": f"unknown {head} {value!r}; allowed: {', '.join(allowed)}"})
    if problems:
        raise ApiError(422, "; ".join(p["msg"] for p in problems), "validation_error", problems)
    reply = body.reply
    record = FeedbackRecord(
        request_id=decision.request_id, ticket_id=body.ticket_id or decision.ticket_id,
        created_at=utc_now(), department=body.department, urgency=body.urgency,
        reply_decision=reply.decision if reply else None,
        article_id=reply.article_id if reply else None,
        final_text=redact(reply.final_text) if reply and reply.final_text else None,
        agent_id=body.agent_id,
    )
    feedback_id = await run_in_threadpool(storage.add_feedback, record)
    return {"id": feedback_id, "request_id": record.request_id, "ticket_id": record.ticket_id,
            "created_at": record.created_at}
