"""Liveness, readiness and Prometheus metrics; none of them needs an API key."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.errors import ApiError, error_responses
from api.schemas import HealthPublic, ReadyPublic

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthPublic, summary="Liveness")
async def healthz() -> dict[str, str]:
    """200 while the process serves HTTP (no key needed)."""
    return {"status": "ok"}


@router.get("/readyz", response_model=ReadyPublic, responses=error_responses(503),
            summary="Readiness")
async def readyz(request: Request) -> dict[str, str]:
    """200 once the model bundle is loaded, 503 before (no key needed)."""
    runtime = getattr(request.app.state, "runtime", None)
    service = runtime.served.service if runtime else None
    if service is None:
        reason = runtime.served.load_error if runtime else None
        raise ApiError(503, f"model not loaded: {reason}" if reason else "model not loaded yet",
                       "model_not_ready", headers={"Retry-After": "2"})
    return {"status": "ready", "model_version": service.version}


@router.get("/metrics", response_class=Response, summary="Prometheus metrics",
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                             "description": "Prometheus text exposition format."}})
async def metrics(request: Request) -> Response:
    """Request counts and latency by route, predictions by head and label, needs_review
    rate, batch sizes, queue depth (no key needed)."""
    m = request.app.state.metrics
    return Response(m.render(), media_type=m.content_type)
