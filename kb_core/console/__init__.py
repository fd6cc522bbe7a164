"""The agent console's domain: ask the knowledge base directly, see why, give feedback.

Framework-free; ``bot_api.routes`` serve it as a page and a JSON API.
"""

from kb_core.console.feedback import Feedback, FeedbackResult, record_feedback
from kb_core.console.highlight import highlight
from kb_core.console.service import ConsoleAnswer, ConsoleQuery, ask

__all__ = [
    "ConsoleAnswer",
    "ConsoleQuery",
    "Feedback",
    "FeedbackResult",
    "ask",
    "highlight",
    "record_feedback",
]
