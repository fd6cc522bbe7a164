"""Fenced code blocks (``` or ~~~): the one rule every Markdown pass uses to skip code."""

from __future__ import annotations

import re

FENCE = re.compile(r"^[ \t]{0,3}(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


def next_fence(open_fence: str | None, line: str) -> str | None:
    """The fence open after ``line``, given the one open before it (None: outside code).

    A fence closes with the same character, at least as long, and no info string
    (CommonMark); anything else inside a block is code.
    """
    match = FENCE.match(line)
    if match is None:
        return open_fence
    if open_fence is None:
        return match["fence"]
    if match["fence"].startswith(open_fence) and not match["info"].strip():
        return None
    return open_fence
