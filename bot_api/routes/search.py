"""``GET /api/search`` and ``POST /api/answer``: the knowledge base asked outside a ticket.

Engineers see why it answered: the draft (LLM or extractive), the sources with matching
words highlighted and each hit's scores, and every search knob. Every route needs the
agent role; searches see only what the user's groups may read, and a scope (sources,
spaces/projects, Pyrus forms) narrows them further. Failures of the index (none promoted,
a version that does not exist) are mapped to HTTP by bot_api.errors.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from bot_api import answering
from bot_api.audit import audited
from bot_api.deps import Agent, StateDep
from bot_api.schemas import AnswerOut, AnswerRequest, SearchHitOut
from kb_core.console import ConsoleQuery
from kb_core.console.service import search_options
from kb_core.search import SearchScope
from kb_core.search import search as search_kb
from kb_core.search.hybrid import Mode
from kb_core.text.limits import INT64_MAX, clean_text

router = APIRouter(tags=["console"])


@router.get("/api/search", response_model=list[SearchHitOut])
def search(
    kb: StateDep,
    user: Agent,
    q: Annotated[str, Query(min_length=1, max_length=2000, description="Question")],
    k: Annotated[int, Query(ge=1, le=50)] = 5,
    mode: Annotated[Mode | None, Query(description="hybrid, vector or lexical")] = None,
    min_score: Annotated[float | None, Query(ge=0.0, description="relevance threshold")] = None,
    expand: Annotated[bool | None, Query(description="query expansion with synonyms")] = None,
    version: Annotated[
        int | None, Query(ge=0, le=INT64_MAX, description="index version (default: active)")
    ] = None,
    source: Annotated[
        list[str] | None, Query(description="only these sources (repeat or comma-separate)")
    ] = None,
    space: Annotated[
        list[str] | None, Query(description="only these Confluence spaces / Jira projects")
    ] = None,
    form: Annotated[list[int] | None, Query(description="only these Pyrus forms")] = None,
) -> list[SearchHitOut]:
    """Search the knowledge base; each hit explains its vector, lexical and final score.

    ``source``, ``space`` and ``form`` restrict the hits (a scope); unset: everything."""
    q = clean_text(q)
    if not q.strip():
        raise HTTPException(422, detail="q: empty after removing control characters")
    query = ConsoleQuery(
        q,
        mode=mode,
        k=k,
        min_score=min_score,
        expand=expand,
        version=version,
        reader_groups=user.groups,
        scope=SearchScope.of(source, space, form),
    )
    options = search_options(kb.settings, query, snippet_chars=kb.settings.search.snippet_chars)
    with audited(kb, user, "search", q), kb.pool.connection() as conn:
        hits = search_kb(conn, kb.embedder, q, options)
    return [SearchHitOut.model_validate(hit.as_json()) for hit in hits]


@router.post("/api/answer", response_model=AnswerOut)
def answer(kb: StateDep, user: Agent, body: AnswerRequest) -> AnswerOut:
    """Search with these settings and draft the answer as the bot would (LLM, or
    extractive without one); sources come with highlighted snippets and score breakdowns."""
    with audited(kb, user, "answer", body.question):
        return answering.answer(kb, body.query(user.groups))
