"""Answer generation for the bot: the LLM client, the grounded prompt, the extractive
mode without an LLM, and the Pyrus comment the answer becomes."""

from kb_core.generation.answer import (
    GenerationOptions,
    InvalidAnswer,
    categories_from_settings,
    generate,
    parse_llm_answer,
)
from kb_core.generation.comment import RenderedComment, render, render_html, render_text
from kb_core.generation.llm import ChatClient, ChatMessage, ChatReply, LLMError
from kb_core.generation.schema import BotAnswer, GeneratedAnswer, Source

__all__ = [
    "BotAnswer",
    "ChatClient",
    "ChatMessage",
    "ChatReply",
    "GeneratedAnswer",
    "GenerationOptions",
    "InvalidAnswer",
    "LLMError",
    "RenderedComment",
    "Source",
    "categories_from_settings",
    "generate",
    "parse_llm_answer",
    "render",
    "render_html",
    "render_text",
]
