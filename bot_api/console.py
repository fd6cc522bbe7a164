"""The agent console: a page at ``/`` and the JSON API under it.

Engineers ask the knowledge base outside a ticket and see why it answered: the draft (LLM
or extractive), the sources with matching words highlighted and each hit's scores, and
every search knob. Feedback feeds the correction loop. The page is rendered on the server
(Jinja2) and works without JavaScript; a little script only sends feedback in place.

Access: by KB_CONSOLE_AUTH (bot_api.auth): an OpenID Connect bearer token, the headers of
an authenticating proxy, or (the demo) HTTP Basic with one shared password
(KB_CONSOLE_PASSWORD), open when KB_CONSOLE_OPEN is set. Every route needs the agent
role; searches see only what the user's groups may read. Questions travel in the query
string of ``/``, and the access log drops query strings (``bot_api.log_privacy``).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from fastapi.security import HTTPBasicCredentials
from fastapi.templating import Jinja2Templates
from pydantic import AfterValidator, BaseModel, Field

from bot_api.auth import Agent, audited
from bot_api.basic_auth import Utf8HTTPBasic
from kb_core.bot.corrections import CorrectionFiling
from kb_core.console import ConsoleAnswer, ConsoleQuery, Feedback, ask, highlight, record_feedback
from kb_core.console.service import search_options
from kb_core.generation.answer import categories_from_settings
from kb_core.generation.llm import ChatClient
from kb_core.index.versions import NoActiveVersion
from kb_core.models import SearchHit
from kb_core.search import SearchScope, make_snippet
from kb_core.search import search as search_kb
from kb_core.search.hybrid import MODES, Mode, ModelMismatch
from kb_core.settings import Settings
from kb_core.sources import configured
from kb_core.text.limits import INT64_MAX, clean_text
from kb_core.texts import Texts, load_texts

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
REALM = 'Basic realm="kb-console", charset="UTF-8"'


@dataclass
class ConsoleDeps:
    """What answering needs beyond the search, built on first use: the scrubber's models
    take seconds to load, and a bot API that serves only webhooks never needs them."""

    settings: Settings
    texts: Texts = field(init=False)

    def __post_init__(self) -> None:
        self.texts = load_texts(self.settings.bot_texts_path)

    @cached_property
    def llm(self) -> ChatClient | None:
        return ChatClient.from_settings(self.settings)

    @cached_property
    def categories(self) -> list[str]:
        return categories_from_settings(self.settings)

    @cached_property
    def scrub(self) -> Any:
        from kb_core.pii.configured import config_from_settings
        from kb_core.pii.scrubber import Scrubber

        return Scrubber(config_from_settings(self.settings)).scrub

    @cached_property
    def pyrus(self) -> Any:
        return (
            configured.pyrus_client(self.settings)
            if configured.pyrus_enabled(self.settings)
            else None
        )

    @cached_property
    def filing(self) -> CorrectionFiling:
        return CorrectionFiling.from_settings(self.settings, self.texts)


def _state(request: Request) -> Any:
    return request.app.state.kb


def engineer(
    request: Request,
    credentials: Annotated[HTTPBasicCredentials | None, Depends(Utf8HTTPBasic(auto_error=False))],
) -> str | None:
    """The engineer's name (from Basic auth), or None on an open console."""
    settings: Settings = _state(request).settings
    if settings.console_open:
        return credentials.username if credentials else None
    if settings.console_password is None:
        raise HTTPException(503, detail="console access is not configured (KB_CONSOLE_PASSWORD)")
    expected = settings.console_password.get_secret_value().encode()
    given = credentials.password.encode() if credentials else b""
    if credentials is None or not secrets.compare_digest(given, expected):
        raise HTTPException(401, detail="password required", headers={"WWW-Authenticate": REALM})
    return credentials.username or None


Engineer = Annotated[str | None, Depends(engineer)]


# --- JSON shapes -----------------------------------------------------------------------


class Explanation(BaseModel):
    """Why a hit ranks where it does."""

    vector_score: float | None
    lexical_score: float | None
    boosts: dict[str, float]
    query_expansion: list[str]
    final_score: float
    index_version: int | None


class SearchHitOut(BaseModel):
    doc_id: int
    chunk_id: int
    title: str
    score: float
    snippet: str
    heading_path: list[str]
    url: str | None
    source: str
    external_id: str
    explain: Explanation


class Segment(BaseModel):
    text: str
    match: bool


class SourceOut(SearchHitOut):
    highlighted: list[Segment] = Field(description="The snippet cut at the matching words.")


# Text from clients loses NUL and other control characters (PostgreSQL refuses NUL: a
# 500 before); ids are bigint in the database, so larger numbers are a 422 here.
CleanText = Annotated[str, AfterValidator(clean_text)]
Id = Annotated[int, Field(ge=0, le=INT64_MAX)]


class AnswerRequest(BaseModel):
    question: CleanText = Field(min_length=1, max_length=2000)
    mode: Mode | None = Field(default=None, description="hybrid, vector or lexical")
    k: int = Field(default=5, ge=1, le=50)
    min_score: float | None = Field(default=None, ge=0.0, description="relevance threshold")
    expand: bool | None = Field(default=None, description="query expansion with synonyms")
    version: Id | None = Field(default=None, description="index version (default: active)")
    opt_query: bool | None = Field(default=None, description="LLM query optimisation")
    rerank: bool | None = Field(default=None, description="LLM or cross-encoder reranking")
    sources: list[str] = Field(default_factory=list, description="only these sources")
    spaces: list[str] = Field(
        default_factory=list, description="only these Confluence spaces / Jira projects"
    )
    forms: list[int] = Field(default_factory=list, description="only these Pyrus forms")

    def query(self) -> ConsoleQuery:
        fields = self.model_dump(exclude={"sources", "spaces", "forms"})
        return ConsoleQuery(**fields, scope=SearchScope.of(self.sources, self.spaces, self.forms))


class DraftOut(BaseModel):
    mode: str = Field(description="llm or extractive")
    draft_reply: str
    recommendations: list[str]
    category: str
    confidence: float
    cited: list[int] = Field(description="doc_id of the sources the answer cites")
    fallback_reason: str | None


class AnswerOut(BaseModel):
    answer: DraftOut | None = Field(description="None when nothing was found")
    sources: list[SourceOut]
    index_version: int | None
    search_ms: float
    answer_ms: float


class FeedbackRequest(BaseModel):
    verdict: Literal["helpful", "wrong"]
    question: CleanText = Field(min_length=1, max_length=2000)
    draft: CleanText = Field(default="", max_length=20000)
    correction: CleanText = Field(default="", max_length=20000)
    answer_mode: Literal["llm", "extractive"] | None = None
    index_version: Id | None = None
    source_documents: list[Id] = Field(default_factory=list, max_length=50)


class FeedbackOut(BaseModel):
    id: int
    correction_task_id: int | None
    correction_url: str | None
    message: str


# --- shared steps ----------------------------------------------------------------------


def _hit_out(hit: SearchHit, question: str, snippet_chars: int) -> dict[str, Any]:
    """The hit as /api/search shows it (the answer searched with whole chunks: the preview
    is cut here as search cuts it), with the snippet's highlight segments."""
    out = hit.as_json()
    snippet = make_snippet(hit.snippet, snippet_chars)
    out["snippet"] = snippet
    out["highlighted"] = [{"text": t, "match": m} for t, m in highlight(snippet, question)]
    return out


@contextmanager
def _index_errors() -> Iterator[None]:
    """Search failures as HTTP: no promoted index (or a model mismatch) is 503, an index
    version that does not exist 404."""
    try:
        yield
    except (NoActiveVersion, ModelMismatch) as exc:
        raise HTTPException(503, detail=str(exc)) from exc
    except LookupError as exc:
        raise HTTPException(404, detail=str(exc)) from exc


def _answer(kb: Any, query: ConsoleQuery) -> tuple[ConsoleAnswer, dict[str, Any]]:
    deps: ConsoleDeps = kb.console
    with kb.pool.connection() as conn, _index_errors():
        result = ask(
            conn,
            kb.embedder,
            kb.settings,
            query,
            llm=deps.llm,
            categories=deps.categories,
            texts=deps.texts,
            scrub=deps.scrub,
        )
    generated = result.generated
    draft = None
    if generated is not None:
        answer = generated.answer
        draft = {
            "mode": generated.mode,
            "draft_reply": answer.draft_reply,
            "recommendations": list(answer.recommendations),
            "category": answer.category,
            "confidence": answer.confidence,
            "cited": [source.hit.document_id for source in generated.cited],
            "fallback_reason": generated.fallback_reason,
        }
    snippet_chars = kb.settings.search_snippet_chars
    body = {
        "answer": draft,
        "sources": [_hit_out(hit, result.question, snippet_chars) for hit in result.hits],
        "index_version": result.hits[0].version_id if result.hits else query.version,
        "search_ms": round(result.search_ms, 1),
        "answer_ms": round(result.answer_ms, 1),
    }
    return result, body


# --- routes ----------------------------------------------------------------------------

router = APIRouter()


@router.get("/api/search", tags=["console"], response_model=list[SearchHitOut])
async def search(
    request: Request,
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
) -> list[dict[str, Any]]:
    """Search the knowledge base; each hit explains its vector, lexical and final score.

    ``source``, ``space`` and ``form`` restrict the hits (a scope); unset: everything."""
    kb = _state(request)
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
    options = search_options(kb.settings, query, snippet_chars=kb.settings.search_snippet_chars)

    def run() -> list[dict[str, Any]]:
        with audited(request, user, "search", q), kb.pool.connection() as conn, _index_errors():
            hits = search_kb(conn, kb.embedder, q, options)
        return [hit.as_json() for hit in hits]

    return await run_in_threadpool(run)


@router.post("/api/answer", tags=["console"], response_model=AnswerOut)
async def answer(request: Request, user: Agent, body: AnswerRequest) -> dict[str, Any]:
    """Search with these settings and draft the answer as the bot would (LLM, or
    extractive without one); sources come with highlighted snippets and score breakdowns."""
    query = replace(body.query(), reader_groups=user.groups)

    def run() -> dict[str, Any]:
        with audited(request, user, "answer", body.question):
            return _answer(_state(request), query)[1]

    return await run_in_threadpool(run)


@router.post("/api/feedback", tags=["console"], response_model=FeedbackOut)
async def feedback(request: Request, user: Agent, body: FeedbackRequest) -> dict[str, Any]:
    """Helpful or wrong; a wrong answer with the right one becomes an «Актуализация RAG»
    task for the knowledge owner (the correction loop)."""
    kb = _state(request)
    deps: ConsoleDeps = kb.console

    def run() -> dict[str, Any]:
        with audited(request, user, "feedback", body.question), kb.pool.connection() as conn:
            result = record_feedback(
                conn,
                Feedback(**body.model_dump(), engineer=user.name),
                scrub=deps.scrub,
                pyrus=deps.pyrus,
                filing=deps.filing,
            )
        message = (
            deps.texts.console_feedback_filed.format(url=result.correction_url)
            if result.correction_url
            else deps.texts.console_feedback_thanks
        )
        return {
            "id": result.id,
            "correction_task_id": result.correction_task_id,
            "correction_url": result.correction_url,
            "message": message,
        }

    return await run_in_threadpool(run)


def _number(text: str, kind: type[Any]) -> Any:
    """A form field's number; empty means unset. A malformed one is refused (422)."""
    if not text.strip():
        return None
    try:
        value = kind(text.replace(",", "."))
    except ValueError as exc:
        raise HTTPException(422, detail=f"not a number: {text!r}") from exc
    if value < 0:
        raise HTTPException(422, detail=f"must not be negative: {text!r}")
    if kind is int and value > INT64_MAX:
        raise HTTPException(422, detail=f"too large: {text!r}")
    return value


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def page(
    request: Request,
    user: Agent,
    q: Annotated[str, Query(max_length=2000)] = "",
    mode: Annotated[Mode | None, Query()] = None,
    k: Annotated[int, Query(ge=1, le=50)] = 5,
    # The form sends empty fields as empty strings: "" means "as configured" / "active".
    min_score: Annotated[str, Query(max_length=20)] = "",
    expand: Annotated[bool, Query()] = False,
    version: Annotated[str, Query(max_length=20)] = "",
    opt_query: Annotated[bool | None, Query()] = None,
    rerank: Annotated[bool | None, Query()] = None,
) -> HTMLResponse:
    kb = _state(request)
    q = clean_text(q)
    threshold = _number(min_score, float)
    chosen_version = _number(version, int)
    deps: ConsoleDeps = kb.console
    settings: Settings = kb.settings
    chosen_mode = mode or settings.search_mode
    context: dict[str, Any] = {
        "t": deps.texts,
        "q": q,
        "mode": chosen_mode,
        "modes": MODES,
        "k": k,
        "min_score": settings.search_min_score if threshold is None else threshold,
        "expand": expand,
        # An unticked box is absent from a submitted form: off; the blank page: as set.
        "opt_query": bool(opt_query) if q.strip() else settings.llm_opt_query,
        "rerank": bool(rerank) if q.strip() else bool(settings.llm_rerank or settings.reranker_url),
        "version": chosen_version,
        "result": None,
        "error": None,
        "user": user,
    }
    status = 200
    if q.strip():
        query = ConsoleQuery(
            q,
            mode=chosen_mode,
            k=k,
            min_score=threshold,
            expand=expand,
            version=chosen_version,
            opt_query=context["opt_query"],
            rerank=context["rerank"],
            reader_groups=user.groups,
        )
        started = time.perf_counter()

        def run() -> dict[str, Any]:
            with audited(request, user, "answer", q):
                return _answer(kb, query)[1]

        try:
            context["result"] = await run_in_threadpool(run)
            context["total_ms"] = round((time.perf_counter() - started) * 1000)
        except HTTPException as exc:
            status = exc.status_code
            context["error"] = (
                deps.texts.console_not_ready if status == 503 else deps.texts.console_error
            )
    return TEMPLATES.TemplateResponse(request, "console.html", context, status_code=status)
