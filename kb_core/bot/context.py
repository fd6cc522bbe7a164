"""The bot's clients and answering step, built from settings once per worker."""

from __future__ import annotations

import logging
from dataclasses import replace

from kb_core.bot import metrics
from kb_core.bot.category_field import CategoryField
from kb_core.bot.corrections import CorrectionFiling
from kb_core.bot.ticket_text import AttachmentPolicy
from kb_core.bot.worker import BotContext, Reply, SendConfig, TicketReading
from kb_core.categorize.classifier import Prediction
from kb_core.categorize.configured import classifier_from_settings
from kb_core.effect.holdout import HoldoutPolicy
from kb_core.embeddings import query_embedder
from kb_core.generation import GenerationOptions, generate
from kb_core.generation.comment import render_html
from kb_core.generation.llm import ChatClient
from kb_core.generation.prompt import TICKET_SHARE
from kb_core.generation.rerank import AnswerSteps
from kb_core.models import SearchHit
from kb_core.pii.configured import config_from_settings
from kb_core.pii.scrubber import Scrubber
from kb_core.search import options_from_settings
from kb_core.search.access import form_audiences
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
        self.texts = load_texts(settings.bot.texts_path)
        self.steps = AnswerSteps.from_settings(settings)
        if self.llm is None:
            log.info("no LLM configured (KB_LLM_URL): answers are extractive")

    def search_query(self, question: str) -> str:
        """The query to search with: the LLM's rewrite when KB_LLM_OPT_QUERY is on."""
        return self.steps.query(self.llm, question)

    def __call__(
        self, question: str, hits: list[SearchHit], prediction: Prediction | None = None
    ) -> Reply:
        hits = self.steps.rerank(self.llm, question, hits)
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
    texts = load_texts(settings.bot.texts_path)
    fields = configured.ticket_builder(settings).fields
    send_words = settings.bot.send_commands
    correct_words = settings.bot.correction_markers
    hint = (
        texts.answer_hint.format(send=send_words[0], correct=correct_words[0])
        if send_words and correct_words
        else ""
    )
    # Fields the bot writes or reads as commands are not part of the ticket's question.
    skip = (
        settings.bot.category_field,
        settings.pyrus.category_field,
        settings.pyrus.bot_wrong_field,
        settings.pyrus.bot_send_field,
        settings.pyrus.solution_confirmed_field,
    )
    answering = Answering(settings, classifier.taxonomy.names)
    return BotContext(
        pyrus=pyrus,
        embedder=query_embedder(settings),
        # Generation reads the hit's snippet: give it the whole chunk, not a preview.
        search_options=options_from_settings(
            settings, k=settings.bot.search_k, snippet_chars=settings.chunking.size + 200
        ),
        scrub=scrubber.scrub,
        answer=answering,
        fields=fields,
        bot_ids=configured.bot_ids(settings) | configured.own_bot_ids(settings),
        category_field=CategoryField(pyrus, settings.bot.category_field or None),
        classifier=classifier,
        corrections=CorrectionFiling.from_settings(settings, texts),
        reading=TicketReading(
            # The prompt keeps the ticket within its share of the context: no cut there.
            max_chars=min(
                settings.bot.ticket_max_chars, settings.llm.max_context_chars // TICKET_SHARE
            ),
            query_max_chars=settings.bot.query_max_chars,
            attachments=AttachmentPolicy(
                max_bytes=settings.bot.attachment_max_bytes,
                max_chars=settings.bot.attachment_max_chars,
            ),
            skip_codes=tuple(code for code in skip if code),
        ),
        files=pyrus,
        send=SendConfig(hint=hint, texts=texts),
        max_input_chars=settings.bot.max_input_chars,
        holdout=HoldoutPolicy(settings.effect.holdout_enabled, settings.effect.holdout_share),
        search_query=answering.search_query if answering.steps.opt_query else None,
        form_audiences=form_audiences(settings.pyrus.form_groups),
        form_scopes=form_scopes(settings.bot.form_scopes),
    )
