"""``POST /api/feedback``: helpful or wrong, from the console (the correction loop)."""

from __future__ import annotations

from fastapi import APIRouter

from bot_api.audit import audited
from bot_api.deps import Agent, StateDep
from bot_api.schemas import FeedbackOut, FeedbackRequest
from kb_core.console import Feedback, record_feedback

router = APIRouter(tags=["console"])


@router.post("/api/feedback", response_model=FeedbackOut)
def feedback(kb: StateDep, user: Agent, body: FeedbackRequest) -> FeedbackOut:
    """Helpful or wrong; a wrong answer with the right one becomes an «Актуализация RAG»
    task for the knowledge owner (the correction loop)."""
    services = kb.console
    with audited(kb, user, "feedback", body.question), kb.pool.connection() as conn:
        result = record_feedback(
            conn,
            Feedback(**body.model_dump(), engineer=user.name),
            scrub=services.scrub,
            pyrus=services.pyrus,
            filing=services.filing,
        )
    message = (
        services.texts.console_feedback_filed.format(url=result.correction_url)
        if result.correction_url
        else services.texts.console_feedback_thanks
    )
    return FeedbackOut(
        id=result.id,
        correction_task_id=result.correction_task_id,
        correction_url=result.correction_url,
        message=message,
    )
