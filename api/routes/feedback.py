"""POST /v1/feedback: agents correct a decision's labels and say what they did with the reply."""

from __future__ import annotations

from fastapi import APIRouter, status

from api.decisions import add_feedback
from api.deps import AgentDep, RuntimeDep
from api.errors import error_responses
from api.schemas import FeedbackCreate, FeedbackPublic

router = APIRouter(prefix="/v1", tags=["feedback"])


@router.post("/feedback", response_model=FeedbackPublic, status_code=status.HTTP_201_CREATED,
             responses=error_responses(400, 401, 403, 404, 413, 415, 422, 503),
             summary="Record an agent's correction")
async def create_feedback(_: AgentDep, runtime: RuntimeDep,
                          body: FeedbackCreate) -> dict[str, object]:
    """Attach feedback to a decision (by `request_id`, or the latest decision of `ticket_id`).
    `department` and `urgency` must be labels of the served model (422 lists the allowed ones).
    201 is returned only once the row is committed to disk."""
    return await add_feedback(runtime, body)
