"""The console's page at ``/``: rendered on the server (Jinja2), works without JavaScript.

Questions travel in the query string (the access log drops query strings:
``bot_api.log_privacy``). What the page offers follows the role (docs/identity.md):
agents ask, filter by scope and give feedback; knowledge owners also approve corrections
and edit the synonym dictionary (small scripts calling the API, which checks the role
again); the page only hides what the API would refuse.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from bot_api import answering
from bot_api.audit import audited
from bot_api.deps import Agent, StateDep
from bot_api.errors import UNAVAILABLE, status_for
from kb_core.console import ConsoleQuery
from kb_core.console.identity import Role
from kb_core.search import SearchScope
from kb_core.search.hybrid import MODES, Mode
from kb_core.search.synonyms_editing import read_groups
from kb_core.text.limits import INT64_MAX, clean_text

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent.parent / "templates")
router = APIRouter()


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


def _scope(source: str, space: str, form: str) -> SearchScope:
    """The scope fields (comma-separated lists); a form that is not a number is a 422."""
    try:
        scope = SearchScope.of([source], [space], [form])
    except ValueError as exc:
        raise HTTPException(422, detail=str(exc)) from exc
    if any(f > INT64_MAX for f in scope.forms):
        raise HTTPException(422, detail=f"too large: {form!r}")
    return scope


def _synonyms_text(path: Path) -> str:
    """The dictionary for the editor: one group a line, spellings comma-separated."""
    try:
        return "\n".join(", ".join(group) for group in read_groups(path))
    except (OSError, ValueError):
        return ""


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def page(
    request: Request,
    kb: StateDep,
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
    source: Annotated[str, Query(max_length=500)] = "",
    space: Annotated[str, Query(max_length=500)] = "",
    form: Annotated[str, Query(max_length=500)] = "",
) -> HTMLResponse:
    q = clean_text(q)
    threshold = _number(min_score, float)
    chosen_version = _number(version, int)
    scope = _scope(clean_text(source), clean_text(space), clean_text(form))
    services = kb.console
    settings = kb.settings
    chosen_mode = mode or settings.search.mode
    owner = user.may(Role.KNOWLEDGE_OWNER)
    context: dict[str, Any] = {
        "t": services.texts,
        "q": q,
        "mode": chosen_mode,
        "modes": MODES,
        "k": k,
        "min_score": settings.search.min_score if threshold is None else threshold,
        "expand": expand,
        # An unticked box is absent from a submitted form: off; the blank page: as set.
        "opt_query": bool(opt_query) if q.strip() else settings.llm.opt_query,
        "rerank": bool(rerank) if q.strip() else bool(settings.llm.rerank or settings.reranker.url),
        "version": chosen_version,
        "source": ", ".join(scope.sources),
        "space": ", ".join(scope.spaces),
        "form": ", ".join(str(f) for f in scope.forms),
        "result": None,
        "error": None,
        "user": user,
        # The knowledge owner's tools; the API refuses them to anyone else anyway.
        "knowledge_owner": owner,
        "synonyms": _synonyms_text(settings.search.synonyms_path) if owner else "",
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
            scope=None if scope.empty else scope,
        )
        started = time.perf_counter()
        try:
            with audited(kb, user, "answer", q):
                context["result"] = answering.answer(kb, query).model_dump()
            context["total_ms"] = round((time.perf_counter() - started) * 1000)
        except Exception as exc:
            # The index not ready (503) or a version that does not exist (404) is shown on
            # the page; the database away and bugs answer as on every route.
            mapped = status_for(exc)
            if mapped is None or mapped == 500 or isinstance(exc, UNAVAILABLE):
                raise
            status = mapped
            context["error"] = (
                services.texts.console_not_ready if status == 503 else services.texts.console_error
            )
    return TEMPLATES.TemplateResponse(request, "console.html", context, status_code=status)
