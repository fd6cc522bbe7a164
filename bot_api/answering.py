"""The console's answer as the API shows it: kb_core.console.ask, shaped for the client.

Shared by ``POST /api/answer`` and the page. Blocking: call it from a plain ``def`` route
(FastAPI runs those in its thread pool).
"""

from __future__ import annotations

from bot_api.schemas import AnswerOut, DraftOut, Segment, SourceOut
from bot_api.state import AppState
from kb_core.console import ConsoleQuery, ask, highlight
from kb_core.models import SearchHit
from kb_core.search import make_snippet


def source_out(hit: SearchHit, question: str, snippet_chars: int) -> SourceOut:
    """The hit as /api/search shows it (the answer searched with whole chunks: the preview
    is cut here as search cuts it), with the snippet's highlight segments."""
    out = hit.as_json()
    snippet = make_snippet(hit.snippet, snippet_chars)
    out["snippet"] = snippet
    out["highlighted"] = [Segment(text=t, match=m) for t, m in highlight(snippet, question)]
    return SourceOut.model_validate(out)


def answer(kb: AppState, query: ConsoleQuery) -> AnswerOut:
    services = kb.console
    with kb.pool.connection() as conn:
        result = ask(
            conn,
            kb.embedder,
            kb.settings,
            query,
            llm=services.llm,
            categories=services.categories,
            texts=services.texts,
            scrub=services.scrub,
        )
    generated = result.generated
    draft = None
    if generated is not None:
        drafted = generated.answer
        draft = DraftOut(
            mode=generated.mode,
            draft_reply=drafted.draft_reply,
            recommendations=list(drafted.recommendations),
            category=drafted.category,
            confidence=drafted.confidence,
            cited=[source.hit.document_id for source in generated.cited],
            fallback_reason=generated.fallback_reason,
        )
    snippet_chars = kb.settings.search.snippet_chars
    return AnswerOut(
        answer=draft,
        sources=[source_out(hit, result.question, snippet_chars) for hit in result.hits],
        index_version=result.hits[0].version_id if result.hits else query.version,
        search_ms=round(result.search_ms, 1),
        answer_ms=round(result.answer_ms, 1),
    )
