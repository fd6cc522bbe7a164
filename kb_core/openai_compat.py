"""What the OpenAI-compatible clients (embeddings, chat) share: endpoints, errors, retries."""

from __future__ import annotations

import httpx


class TransientError(Exception):
    """Worth another attempt after a pause (``delay``: what the server asked for)."""

    def __init__(self, message: str, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


def error_message(response: httpx.Response) -> str:
    """The server's own words: OpenAI's {"error": {"message"}} or whatever it sent."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300].strip() or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:300]
        if isinstance(error, str):
            return error[:300]
        for key in ("message", "detail"):
            if body.get(key):
                return str(body[key])[:300]
    return str(body)[:300]


def endpoint(base_url: str, path: str) -> str:
    """``…/v1`` + ``/embeddings`` → ``…/v1/embeddings``; a URL already ending so is kept."""
    url = base_url.strip().rstrip("/")
    return url if url.endswith(path) else f"{url}{path}"
