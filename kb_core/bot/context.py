"""The bot's clients and answering step, built from settings once per worker."""

from __future__ import annotations

import logging
from dataclasses import replace

from kb_core.bot import metrics
from kb_core.bot.category_field import CategoryField
from kb_core.bot.corrections import CorrectionFiling
from kb_core.bot.worker import BotContext, Reply
from kb_core.categorize.classifier import Prediction
from kb_core.categorize.configured import classifier_from_settings
from kb_core.embeddings import query_embedder
from kb_core.generation import GenerationOptions, generate
from kb_core.generation.comment import render_html
from kb_core.generation.llm import ChatClient
from kb_core.models import SearchHit
from kb_core.pii.configured import config_from_settings
from kb_core.pii.scrubber import Scrubber
from kb_core.search import options_from_settings
from kb_core.search.scope import form_scopes
from kb_core.settings import Settings
from kb_core.sources import configured
from kb_core.texts import load_texts

log = logging.getLogger(__name__)


class Answering:
    """Generation (LLM or extractive) and the comment it becomes."""

    def __init__(self, settings: Settings, categories: list[str]) -> None:
        self.llm = ChatClient.from_settings(settings)
        self.categories = categories
        self.options = GenerationOptions.from_settings(settings)
        self.texts = load_texts(settings.bot_texts_path)
        if self.llm is None:
            log.info("no LLM configured (KB_LLM_URL): answers are extractive")

    def __call__(
        self, question: str, hits: list[SearchHit], prediction: Prediction | None = None
    ) -> Reply:
        generated = generate(
            question, hits, self.categories, self.llm, options=self.options, texts=self.texts
        )
        llm_failed = generated.fallback_reason in ("llm_error", "invalid_output")
        if llm_failed:
            metrics.LLM_ERRORS.inc()
        method, category_confidence = "llm", None
        if generated.mode == "llm":
            # The LLM's choice stands; the neighbours' share for it says how much the
            # labelled history agrees.
            if prediction is not None:
                category_confidence = prediction.votes.get(generated.answer.category, 0.0)
        elif prediction is not None:
            generated = replace(
                generated,
                answer=generated.answer.model_copy(update={"category": prediction.category}),
            )
            method, category_confidence = prediction.method, prediction.confidence
        else:
            method = "name_overlap"
        answer = generated.answer
        return Reply(
            formatted_text=render_html(generated, self.texts),
            mode=generated.mode,
            category=answer.category,
            confidence=answer.confidence,
            category_method=method,
            category_confidence=category_confidence,
            answer={
                **answer.model_dump(),
                "sources": [
                    {"id": s.id, "source": s.hit.source, "external_id": s.hit.external_id}
                    for s in generated.sources
                ],
                "fallback_reason": generated.fallback_reason,
            },
            note=str(generated.fallback_reason) if llm_failed else "",
        )


def bot_context(settings: Settings) -> BotContext:
    scrubber = Scrubber(config_from_settings(settings))
    pyrus = configured.pyrus_client(settings)
    classifier = classifier_from_settings(settings, pyrus)
    texts = load_texts(settings.bot_texts_path)
    return BotContext(
        pyrus=pyrus,
        embedder=query_embedder(settings),
        # Generation reads the hit's snippet: give it the whole chunk, not a preview.
        search_options=options_from_settings(
            settings, k=settings.bot_search_k, snippet_chars=settings.chunk_size + 200
        ),
        scrub=scrubber.scrub,
        answer=Answering(settings, classifier.taxonomy.names),
        fields=configured.ticket_builder(settings).fields,
        bot_ids=configured.bot_ids(settings),
        category_field=CategoryField(pyrus, settings.bot_category_field or None),
        classifier=classifier,
        corrections=CorrectionFiling.from_settings(settings, texts),
        form_scopes=form_scopes(settings.bot_form_scopes),
    )
