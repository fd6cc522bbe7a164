"""Request and response bodies of the API (the OpenAPI document's schemas).

Text from clients loses NUL and other control characters (PostgreSQL refuses NUL: a 500
before); ids are bigint in the database, so larger numbers are a 422 here.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field

from kb_core.console import ConsoleQuery
from kb_core.search import SearchScope
from kb_core.search.hybrid import Mode
from kb_core.text.limits import INT64_MAX, clean_text

CleanText = Annotated[str, AfterValidator(clean_text)]
Id = Annotated[int, Field(ge=0, le=INT64_MAX)]


# --- ops ---------------------------------------------------------------------------------


class HealthOut(BaseModel):
    status: str


class ReadyOut(BaseModel):
    status: str
    index_version: int
    indexed_chunks: int
    embedding_model: str | None
    query_model_matches: bool
    worker_heartbeat_age_s: float | None


# --- webhooks ----------------------------------------------------------------------------


class Acknowledged(BaseModel):
    """Pyrus only needs a 200; the body stays ``{}``."""


class EventQueued(BaseModel):
    queued: bool
    id: int | None = Field(default=None, description="the stored event (absent: ignored)")


# --- search and answers ------------------------------------------------------------------


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

    def query(self, reader_groups: frozenset[str] | None) -> ConsoleQuery:
        fields = self.model_dump(exclude={"sources", "spaces", "forms"})
        return ConsoleQuery(
            **fields,
            reader_groups=reader_groups,
            scope=SearchScope.of(self.sources, self.spaces, self.forms),
        )


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


# --- feedback and corrections ------------------------------------------------------------


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


class ApprovedOut(BaseModel):
    task_id: int
    approved: bool


# --- synonyms ----------------------------------------------------------------------------

Spelling = Annotated[CleanText, Field(min_length=1, max_length=200)]


class Synonyms(BaseModel):
    """The query-expansion dictionary: groups of spellings that mean the same thing."""

    groups: list[Annotated[list[Spelling], Field(min_length=2, max_length=50)]] = Field(
        max_length=5000
    )


# --- who and audit -----------------------------------------------------------------------


class MeOut(BaseModel):
    name: str | None
    roles: list[str]
    groups: list[str]


class AuditEntryOut(BaseModel):
    id: int
    at: str = Field(description="ISO 8601 time of the call")
    subject: str = Field(description="keyed pseudonym, or «anonymous» for a refused call")
    roles: list[str]
    action: str
    query: str | None = Field(description="scrubbed of personal data")
    status: int
    detail: dict[str, object]
