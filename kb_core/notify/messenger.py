"""Notifications to the corporate messenger through its incoming webhook.

Mattermost, Slack, Rocket.Chat, Teams and the like all take a POSTed JSON body but
disagree on its shape, so the body is a Jinja2 template (``KB_NOTIFY_PAYLOAD_TEMPLATE``)
over ``text``, ``title``, ``kind`` and ``url``. The template is compiled and tried at
construction, so a mistake stops the start-up with a clear error instead of silently
losing the first real message.

A notification is a side channel: :meth:`Messenger.send` retries what is worth retrying
(429 with Retry-After, 5xx, network errors, time-outs), then logs and returns False. It
never raises. Logs carry neither the message (it may quote ticket data) nor the webhook
URL (its path is the credential).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
import jinja2
from prometheus_client import Counter

from kb_core.notify.http import RetriedPost
from kb_core.openai_compat import TransientError, error_message

if TYPE_CHECKING:
    from kb_core.settings import Settings

log = logging.getLogger(__name__)

#: The kinds of notification the pipeline sends (the ``kind`` template variable).
KINDS = ("digest", "run_failure", "promotion_blocked", "weekly_report")

DEFAULT_TEMPLATE = '{"text": {{ text | tojson }}}'
TEMPLATE_SETTING = "KB_NOTIFY_PAYLOAD_TEMPLATE"

NOTIFICATIONS = Counter(
    "kb_notifications_total",
    "Messenger notifications, by kind and outcome (sent, failed).",
    ["kind", "outcome"],
)

# Values the template is tried with at construction: quotes, a backslash and a line break
# in the text catch a template that pastes ``{{ text }}`` into a JSON string without
# ``| tojson``, which would work for plain words and break on the first real message.
_SAMPLE = {
    "text": 'Проверка шаблона: "кавычки", обратная косая \\ и\nперенос строки',
    "title": 'Заголовок "проверки"',
    "kind": "digest",
    "url": "https://example.invalid/check?a=1&b=2",
}


class _Permanent(Exception):
    """Not worth another attempt (a 4xx other than 429)."""


def compile_template(template: str) -> jinja2.Template:
    """The payload template, compiled and tried once; a ``ValueError`` naming the setting
    when it does not compile, uses an unknown variable or does not render a JSON object."""
    env = jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined)
    # tojson keeps Cyrillic readable in the webhook body (the default escapes it to \\uXXXX).
    env.policies["json.dumps_kwargs"] = {"ensure_ascii": False, "sort_keys": False}
    try:
        compiled = env.from_string(template)
        render_payload(compiled, **_SAMPLE)
    except jinja2.TemplateError as exc:
        raise ValueError(
            f"{TEMPLATE_SETTING} is not a valid Jinja2 template ({type(exc).__name__}: {exc}); "
            "it may use text, title, kind and url"
        ) from None
    except TypeError:
        # An unknown variable reached tojson: StrictUndefined is not JSON serialisable.
        raise ValueError(
            f"{TEMPLATE_SETTING} is not a valid Jinja2 template (it uses an unknown variable); "
            "it may use text, title, kind and url"
        ) from None
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{TEMPLATE_SETTING} does not render valid JSON ({exc}); write strings with the "
            'tojson filter, e.g. {"text": {{ text | tojson }}}'
        ) from None
    except ValueError as exc:
        raise ValueError(f"{TEMPLATE_SETTING} does not render a JSON object ({exc})") from None
    return compiled


def render_payload(
    template: jinja2.Template, *, text: str, title: str, kind: str, url: str | None
) -> dict[str, Any]:
    """The webhook body for one message (``ValueError`` when it is not a JSON object)."""
    rendered = template.render(text=text, title=title, kind=kind, url=url)
    body = json.loads(rendered)
    if not isinstance(body, dict):
        raise ValueError(f"rendered a JSON {type(body).__name__}, not an object")
    return body


class Messenger(RetriedPost):
    """Sends notifications to one incoming webhook (thread-safe; reuse one instance)."""

    def __init__(
        self,
        url: str,
        template: str = DEFAULT_TEMPLATE,
        *,
        timeout_s: float = 10.0,
        max_retries: int = 2,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        # ``host`` (no token from the path) is what the logs name.
        super().__init__(
            url,
            setting="KB_NOTIFY_WEBHOOK_URL",
            timeout_s=timeout_s,
            max_retries=max_retries,
            backoff_initial_s=backoff_initial_s,
            backoff_max_s=backoff_max_s,
            sleep=sleep,
            transport=transport,
        )
        self._template = compile_template(template)

    @classmethod
    def from_settings(cls, settings: Settings) -> Messenger | None:
        """The configured messenger, or None when KB_NOTIFY_WEBHOOK_URL is unset."""
        if settings.notify.webhook_url is None:
            return None
        url = settings.notify.webhook_url.get_secret_value().strip()
        if not url:
            return None
        return cls(url, settings.notify.payload_template, timeout_s=settings.notify.timeout_s)

    def send(self, kind: str, title: str, text: str, url: str | None = None) -> bool:
        """Post one message; True when the messenger took it. Never raises: a lost
        notification must not fail the run, sensor or report that sends it."""
        try:
            body = render_payload(self._template, text=text, title=title, kind=kind, url=url)
        except (jinja2.TemplateError, TypeError, ValueError) as exc:
            # Only the error's type: its message may quote the text being rendered.
            return self._failed(kind, f"{TEMPLATE_SETTING} failed to render ({type(exc).__name__})")
        try:
            self._with_retries(
                f"messenger webhook ({self.host}, {kind})", lambda: self._deliver(body)
            )
        except TransientError as exc:
            return self._failed(kind, str(exc))
        except _Permanent as exc:
            return self._failed(kind, f"{exc} after 1 attempt(s)")
        except Exception as exc:
            return self._failed(kind, f"unexpected {type(exc).__name__}")
        NOTIFICATIONS.labels(kind=kind, outcome="sent").inc()
        return True

    def _deliver(self, body: dict[str, Any]) -> None:
        response = self._post(json=body)
        if not 200 <= response.status_code < 300:
            raise _Permanent(f"HTTP {response.status_code}: {error_message(response)[:200]}")

    def _failed(self, kind: str, reason: str) -> bool:
        NOTIFICATIONS.labels(kind=kind, outcome="failed").inc()
        log.error("messenger (%s): %s notification not delivered: %s", self.host, kind, reason)
        return False
