"""One ticket's answer: from the LLM when one is configured and behaves, else extractive.

``generate`` builds the grounded prompt, asks the LLM for one JSON object and validates
it (:class:`BotAnswer`): cited ids must be passages of the prompt (unknown ones are
dropped; an answer that claims to answer but cites none of them is invalid), the
category must be one of the configured ones (otherwise the fallback). Without an LLM,
when it fails after its retries, or when its answer is invalid, the extractive answer is
returned with the reason; the ticket is answered either way.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from kb_core.categorize.taxonomy import category_key, load_taxonomy
from kb_core.errors import KbError
from kb_core.generation.draft import without_placeholders
from kb_core.generation.extractive import extractive_answer, quote_sources
from kb_core.generation.links import leaks_prompt, vet_links
from kb_core.generation.lint import body_of
from kb_core.generation.llm import ChatClient, LLMError
from kb_core.generation.prompt import SYSTEM_PROMPT, build_prompt, select_sources
from kb_core.generation.schema import BotAnswer, FallbackReason, GeneratedAnswer, Source
from kb_core.models import SearchHit
from kb_core.settings import BotSettings, LlmSettings, Settings, defaults_of
from kb_core.texts import Texts, load_texts

_BOT = defaults_of(BotSettings)
_LLM = defaults_of(LlmSettings)

__all__ = [
    "BotAnswer",
    "GeneratedAnswer",
    "GenerationOptions",
    "InvalidAnswer",
    "categories_from_settings",
    "generate",
    "parse_llm_answer",
]

log = logging.getLogger(__name__)

_FENCE = re.compile(r"^\s*```(?:json)?\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL | re.IGNORECASE)


# Confidence of an answer whose links had to be removed: it followed something other
# than the sources, whatever it claims.
FLAGGED_MAX_CONFIDENCE = 0.3


class InvalidAnswer(KbError, ValueError):
    """The LLM's reply is not a usable answer (the message says why, without its text)."""


@dataclass(frozen=True)
class GenerationOptions:
    fallback_category: str = _BOT["category_fallback"]  # defaults of KB_BOT_* / KB_LLM_*
    max_context_chars: int = _LLM["max_context_chars"]
    max_sources: int = _BOT["max_sources"]
    texts_path: Path | None = None  # overrides of config/texts_ru.yaml
    link_allowlist: tuple[str, ...] = ()  # issue 20: hosts a draft may link to unsourced

    @classmethod
    def from_settings(cls, settings: Settings) -> GenerationOptions:
        return cls(
            fallback_category=settings.bot.category_fallback,
            max_context_chars=settings.llm.max_context_chars,
            max_sources=settings.bot.max_sources,
            texts_path=settings.bot.texts_path,
            link_allowlist=tuple(settings.bot.link_allowlist),
        )


def categories_from_settings(settings: Settings) -> list[str]:
    """The names of the YAML taxonomy (``KB_CATEGORIES_PATH``); a bot synced with a Pyrus
    catalog passes the catalog's names instead."""
    return load_taxonomy(settings.categories.path, settings.bot.category_fallback).names


def _known_category(name: str, categories: Sequence[str], fallback: str) -> str:
    if name in categories:
        return name
    key = category_key(name)
    for category in categories:
        if category_key(category) == key:
            return category
    return fallback


def parse_llm_answer(
    content: str, sources: Sequence[Source], categories: Sequence[str], fallback_category: str
) -> BotAnswer:
    """The validated answer of an LLM reply; InvalidAnswer when it is not usable."""
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced:  # some servers wrap JSON in a Markdown fence even in JSON mode
        text = fenced.group(1).strip()
    try:
        data: Any = json.loads(text)
    except ValueError:
        raise InvalidAnswer(f"the reply is not JSON ({len(content)} characters)") from None
    if not isinstance(data, dict):
        raise InvalidAnswer(f"the reply is JSON but not an object ({type(data).__name__})")
    try:
        answer = BotAnswer.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'answer'}: {error['msg']}"
            for error in exc.errors()
        )
        raise InvalidAnswer(f"the reply does not match the schema: {problems}") from None
    known = {source.id for source in sources}
    cited = [i for i in answer.source_ids if i in known]
    dropped = [i for i in answer.source_ids if i not in known]
    if dropped:
        log.warning("LLM cited unknown source ids %s; dropped", dropped[:10])
    if answer.answered and not cited:
        raise InvalidAnswer(
            "the reply claims an answer but cites none of the given sources"
            + (f" (cited unknown ids {dropped[:5]})" if dropped else "")
        )
    category = _known_category(answer.category, categories, fallback_category)
    if category != answer.category:
        log.info("LLM category is not a configured one; using %r", category)
    return answer.model_copy(update={"source_ids": cited, "category": category})


def generate(
    question: str,
    hits: Sequence[SearchHit],
    categories: Sequence[str],
    llm: ChatClient | None,
    *,
    options: GenerationOptions | None = None,
    texts: Texts | None = None,
) -> GeneratedAnswer:
    """The answer to ``question`` from ``hits`` (best first): by the LLM, or extractive."""
    options = options or GenerationOptions()
    if llm is None:
        return _extractive(question, hits, categories, options, texts, "no_llm", None)
    prompt = build_prompt(
        question,
        hits,
        categories,
        fallback_category=options.fallback_category,
        max_context_chars=options.max_context_chars,
        max_sources=options.max_sources,
    )
    try:
        reply = llm.chat(prompt.messages, json_mode=True)
    except LLMError as exc:
        log.warning("LLM failed, answering extractively: %s", exc)
        return _extractive(question, hits, categories, options, texts, "llm_error", str(exc))
    try:
        answer = parse_llm_answer(
            reply.content, prompt.sources, categories, options.fallback_category
        )
    except InvalidAnswer as exc:
        log.warning("LLM answer invalid, answering extractively: %s", exc)
        return _extractive(question, hits, categories, options, texts, "invalid_output", str(exc))
    return _vetted(question, hits, categories, options, texts, prompt.sources, answer)


def _vetted(
    question: str,
    hits: Sequence[SearchHit],
    categories: Sequence[str],
    options: GenerationOptions,
    texts: Texts | None,
    sources: Sequence[Source],
    answer: BotAnswer,
) -> GeneratedAnswer:
    """The LLM's answer after the output checks (:mod:`kb_core.generation.links`): one
    that recites the system prompt is not used; links no cited source holds are removed,
    the answer flagged and its confidence capped, so the agent looks twice."""
    said = "\n".join([answer.draft_reply, *answer.recommendations])
    if leaks_prompt(said, SYSTEM_PROMPT):
        log.warning("LLM answer repeats the system prompt; answering extractively")
        return _extractive(
            question, hits, categories, options, texts, "invalid_output", "system prompt leaked"
        )
    checked = vet_links(answer, sources, options.link_allowlist)
    flags: tuple[str, ...] = ()
    if checked.removed:
        log.warning("LLM answer: %d link(s) no cited source holds removed", len(checked.removed))
        flags = ("links_removed",)
        answer = checked.answer.model_copy(
            update={"confidence": min(checked.answer.confidence, FLAGGED_MAX_CONFIDENCE)}
        )
    # The customer never sees a placeholder, whatever the model wrote (the agent's
    # recommendations may keep them: they say what kind of data was there).
    draft = without_placeholders(answer.draft_reply)
    if not body_of(draft):  # a greeting alone answers nothing
        log.warning("LLM draft held nothing but placeholders, answering extractively")
        return _extractive(
            question, hits, categories, options, texts, "invalid_output", "placeholder-only draft"
        )
    answer = answer.model_copy(update={"draft_reply": draft})
    return GeneratedAnswer(
        mode="llm", answer=answer, sources=quote_sources(question, sources), flags=flags
    )


def _extractive(
    question: str,
    hits: Sequence[SearchHit],
    categories: Sequence[str],
    options: GenerationOptions,
    texts: Texts | None,
    reason: FallbackReason,
    detail: str | None,
) -> GeneratedAnswer:
    sources, _ = select_sources(hits, max_chars=1_000_000, max_sources=options.max_sources)
    answer, quoted = extractive_answer(
        question,
        sources,
        categories,
        fallback_category=options.fallback_category,
        texts=texts or load_texts(options.texts_path),
    )
    return GeneratedAnswer(
        mode="extractive", answer=answer, sources=quoted, fallback_reason=reason, detail=detail
    )
