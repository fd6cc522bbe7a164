"""Is a draft reply sendable as it stands? A handful of checks an agent would otherwise
make by eye before pressing «Отправить».

- ``truncated_list``: a list cut short — a bare marker («… сразу: 1.»), numbered items
  that skip a number, or a body that ends in a colon or an ellipsis (a cut passage).
- ``dangling_connective``: the answer opens with a word that needs a sentence before it
  («Поэтому …», «После этого …», «Это …», «Он …»): it was torn from its context.
- ``placeholder``: a typed personal-data placeholder (``<PERSON>``, ``<EMAIL>``) or a
  broken one; a customer must never see them.
- ``unbalanced``: quotes «» or brackets () [] that do not pair up, or an odd number of
  straight double quotes.
- ``length``: the body is shorter than a real answer or longer than anyone reads.

The greeting is not the answer: a first sentence that is one (``Здравствуйте!``) is
skipped before the opening check. Used by the extractive drafting (a draft that fails is
rebuilt from other material), by the evaluation (share of clean drafts per mode) and by
tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from razdel import sentenize


def word_set(words: str) -> frozenset[str]:
    """A closed class of words, written as one space-separated string."""
    return frozenset(words.split())


MIN_BODY_CHARS = 40
MAX_BODY_CHARS = 1500

# Two-word openings whose first word alone is innocent («После обновления …» is fine).
OPENING_PHRASES = (
    "после этого",
    "после чего",
    "перед этим",
    "при этом",
    "в этом случае",
    "в таком случае",
    "в этом",
    "из-за этого",
    "кроме того",
    "помимо этого",
    "к тому же",
    "для этого",
    "в результате",
    "в итоге",
    "в остальном",
    "вместо этого",
    "благодаря этому",
    "вследствие этого",
    "по этой причине",
    "так как",
)
# Words that open a sentence only when another sentence came before it: connectives and
# anaphoric pronouns/adverbs (a closed grammatical class, not a topic list). «После»,
# «Перед», «При» are not here: «После обновления …» opens a sentence well.
_ALWAYS_DANGLING = word_set("""
    поэтому потому затем потом тогда также тоже однако зато причём притом следовательно
    значит итак впрочем иначе наоборот далее дальше там туда оттуда здесь тут сюда
    это этот эта эти этого этой этим этих этому он она оно они его её ее их ему ей им
    ними нему ней нём нем и а но или либо ведь же вот
    """)

PLACEHOLDER = re.compile(r"<\s*[A-Z][A-Z_]{1,30}\s*>|\\<[A-Z_]+\\>|&lt;[A-Z_]+&gt;")
_GREETING = re.compile(
    r"^(здравствуйте|добрый\s+(день|вечер|утро)|доброе\s+утро|привет(ствуем)?)\b[^.!?\n]*[.!?]?",
    re.IGNORECASE,
)
_WORD = re.compile(r"[\w-]+", re.UNICODE)
_BARE_MARKER = re.compile(r"(?:^|[\s:])(?:\d{1,2}[.)]|[-*•])\s*$")
_NUMBERED = re.compile(r"(?m)^\s*(\d{1,2})[.)]\s+\S")
_INLINE_NUMBERED = re.compile(r"(?:^|[\s:;])(\d{1,2})[.)]\s+(?=[А-ЯЁA-Z«\"])")
PAIRS = (("«", "»"), ("(", ")"), ("[", "]"))


@dataclass(frozen=True)
class LintIssue:
    code: str  # truncated_list | dangling_connective | placeholder | unbalanced | length
    detail: str


def body_of(draft: str) -> str:
    """The draft without its greeting (the first line or sentence when it is one)."""
    text = draft.strip()
    match = _GREETING.match(text)
    if match:
        text = text[match.end() :].lstrip(" \t,")
    return text.strip()


def first_sentence(text: str) -> str:
    for sentence in sentenize(text):
        found = str(sentence.text).strip()
        if found:
            return found
    return ""


def opens_dangling(sentence: str) -> str | None:
    """The connective or pronoun ``sentence`` opens with, when it needs a predecessor."""
    words: list[str] = [str(w).lower() for w in _WORD.findall(sentence[:80])]
    if not words:
        return None
    pair = " ".join(words[:3])
    for phrase in OPENING_PHRASES:
        if pair == phrase or pair.startswith(phrase + " "):
            return phrase
    first = str(words[0])
    return first if first in _ALWAYS_DANGLING else None


def _numbers_in_order(numbers: list[int]) -> bool:
    """Each numbered list starts at 1 and counts up by one (a new list may start again)."""
    expected = 1
    for number in numbers:
        if number == 1:
            expected = 2
        elif number == expected:
            expected += 1
        else:
            return False
    return True


def lint_draft(
    draft: str, *, min_chars: int = MIN_BODY_CHARS, max_chars: int = MAX_BODY_CHARS
) -> list[LintIssue]:
    """The problems that keep ``draft`` from being sent as is (empty: clean)."""
    issues: list[LintIssue] = []
    body = body_of(draft)
    if PLACEHOLDER.search(draft):
        issues.append(LintIssue("placeholder", "a personal-data placeholder is left in"))
    for line in draft.splitlines() or [draft]:
        if _BARE_MARKER.search(line.rstrip()):
            issues.append(LintIssue("truncated_list", "a list marker with no item after it"))
            break
    numbers = [int(m.group(1)) for m in _NUMBERED.finditer(draft)]
    if not numbers:
        numbers = [int(m.group(1)) for m in _INLINE_NUMBERED.finditer(draft)]
    if numbers and not _numbers_in_order(numbers):
        issues.append(LintIssue("truncated_list", f"numbered items out of order: {numbers}"))
    for paragraph in re.split(r"\n\s*\n", body):
        end = paragraph.rstrip()
        if end.endswith((":", "…", "...")) and not end.endswith("?.."):
            issues.append(LintIssue("truncated_list", "a paragraph ends cut short"))
            break
    opening = opens_dangling(first_sentence(body))
    if opening:
        issues.append(LintIssue("dangling_connective", f"the answer opens with «{opening}»"))
    for left, right in PAIRS:
        if draft.count(left) != draft.count(right) or _closes_early(draft, left, right):
            issues.append(LintIssue("unbalanced", f"{left}{right} do not pair up"))
    if draft.count('"') % 2:
        issues.append(LintIssue("unbalanced", 'an odd number of "'))
    if len(body) < min_chars:
        issues.append(LintIssue("length", f"the answer is {len(body)} characters (< {min_chars})"))
    elif len(body) > max_chars:
        issues.append(LintIssue("length", f"the answer is {len(body)} characters (> {max_chars})"))
    return issues


def _closes_early(text: str, left: str, right: str) -> bool:
    depth = 0
    for char in text:
        if char == left:
            depth += 1
        elif char == right:
            depth -= 1
            if depth < 0:
                return True
    return False


def is_clean(draft: str) -> bool:
    return not lint_draft(draft)
