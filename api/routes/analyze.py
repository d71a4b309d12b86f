"""POST /v1/analyze, /v1/triage, /v1/suggest and /v1/analyze/batch."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.decisions import decide, decide_batch
from api.deps import AgentDep, RuntimeDep
from api.errors import error_responses, request_id_of
from api.schemas import (
    MAX_BATCH_MESSAGES,
    AnalyzeBatchPublic,
    AnalyzeBatchRequest,
    AnalyzePublic,
    AnalyzeRequest,
    SuggestPublic,
    TriagePublic,
)

router = APIRouter(prefix="/v1", tags=["analyze"])
ERRORS = error_responses(400, 401, 403, 413, 415, 422, 429, 503)


@router.post("/analyze", response_model=AnalyzePublic, responses=ERRORS,
             summary="Route a message and suggest replies")
async def analyze(_: AgentDep, runtime: RuntimeDep, body: AnalyzeRequest,
                  request: Request) -> dict[str, object]:
    """Department and urgency (label, calibrated confidence, band, alternatives), never-miss
    urgency signals, language, `needs_review`, and knowledge-base reply suggestions.

    Concurrent requests share one encoder call (micro-batching); when the queue is full the
    answer is 429 with `Retry-After`. A repeated `ticket_id` with the same text returns the stored
    decision with `idempotent_replay: true`.
    """
    return await decide(runtime, body, "analyze", request_id_of(request))


@router.post("/triage", response_model=TriagePublic, responses=ERRORS,
             summary="Route a message (no reply suggestions)")
async def triage(_: AgentDep, runtime: RuntimeDep, body: AnalyzeRequest,
                 request: Request) -> dict[str, object]:
    """Like /v1/analyze without the knowledge-base search."""
    return await decide(runtime, body, "triage", request_id_of(request))


@router.post("/suggest", response_model=SuggestPublic, responses=ERRORS,
             summary="Suggest knowledge-base replies for a message")
async def suggest(_: AgentDep, runtime: RuntimeDep, body: AnalyzeRequest,
                  request: Request) -> dict[str, object]:
    """Reply suggestions in `reply_language` (default: the detected language), placeholders
    filled from `context`. `suggestions.confident` is false, with no items, when no article
    scores above the knowledge base's calibrated threshold."""
    return await decide(runtime, body, "suggest", request_id_of(request))


@router.post("/analyze/batch", response_model=AnalyzeBatchPublic, responses=ERRORS,
             summary=f"Analyse up to {MAX_BATCH_MESSAGES} messages at once")
async def analyze_batch(_: AgentDep, runtime: RuntimeDep,
                        body: AnalyzeBatchRequest) -> dict[str, object]:
    """One /v1/analyze result per message, in order; each has its own `request_id`.
    At most 64 messages and 1 MiB per request."""
    return {"items": await decide_batch(runtime, body.messages)}
