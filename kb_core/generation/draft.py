"""The customer draft without an LLM: a reply built from whole units of the best source.

A passage is read as blocks — paragraphs and lists (a list keeps the line that
introduces it, «Чтобы …:») — never as loose sentences, so a draft cannot end in «1.»
or open with «Поэтому …». Each sentence is then judged for the customer at hand:

- **Social formulas** of the source («Здравствуйте, <PERSON>!», «Хорошего дня») go: the
  draft gets its own greeting and closing from the configurable texts.
- **Placeholders**: a vocative placeholder is cut («Здравствуйте, <PERSON>!» →
  «Здравствуйте!»); any other sentence that still holds one is left out.
- **Another customer's case**: when the evidence is a ticket, sentences about that
  customer's situation — a time reference («вчера», «сегодня»), an id or an address,
  their account («в вашем профиле включён …») or what the agents did for them
  («Проверили …», «мы исправили …») — are left out. Instructions (imperative mood, told
  apart by pymorphy3) and general statements stay: they hold for this customer too.
- **Context**: a sentence that opens with a connective or a pronoun takes the sentence
  before it along; when that one was left out, a pure connective is dropped
  («Поэтому отдельных писем нет» → «Отдельных писем нет») and a pronoun opener makes the
  sentence go too.

Blocks are scored by the content lemmas they share with the question; the best one is
taken whole, then the next best while they fit the budget, in the source's own order.
A candidate that fails the draft lint is not used: the next source is tried, and with
none left the «we are looking into it» draft is sent. Sources are tried in rank order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from razdel import sentenize

from kb_core.generation.lint import PLACEHOLDER, lint_draft, opens_dangling, word_set
from kb_core.generation.schema import Source
from kb_core.models import SearchHit
from kb_core.text.lemmas import WORD, _morph, lemmas
from kb_core.texts import Texts

BODY_BUDGET = 700  # characters of answer a customer reads at a glance
MIN_OVERLAP = 1  # content lemmas a block must share with the question to be added
INSTRUCTION_BONUS = 1.5  # what a block that tells what to do is worth, in shared lemmas
SOURCES_COMPARED = 3  # the best sources whose blocks compete for the answer
RANK_DECAY = 0.8  # each rank down weighs a source's best block this much less

_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+")
_LIST_ITEM = re.compile(r"^\s*(?:\d{1,2}[.)]|[-*•])\s+")
_INLINE_ITEM = re.compile(r"(?:(?<=\s)|^)(\d{1,2})[.)]\s+(?=\S)")
_RESOLUTION = re.compile(r"(?m)^\s*(?:#{1,6}\s*)?Решение\s*$|\bРешение\b")
_SPACE = re.compile(r"[ \t]+")
_VOCATIVE = re.compile(r",\s*(?:<\s*[A-Z_]+\s*>\s*)+(?=[!.,?])")
_ID = re.compile(r"#\s?\d+|\b\d{5,}\b|\S+@\S+\.\w+|https?://\S+")
_STRIP_MD = re.compile(r"\*\*|__|`")
_EMPHASIS = re.compile(r"(?<![\w*])[*_](?=\S)([^*_\n]+?)(?<=\S)[*_](?![\w*])")

# Politeness formulas of a reply: the draft has its own greeting and closing.
_FORMULA = re.compile(
    r"^\W*(здравствуйте|добрый\s+(день|вечер|утро)|доброе\s+утро|привет|спасибо|благодарим|"
    r"с\s+уважением|хорошего\s+(дня|вечера)|всего\s+доброго|рады\s+помочь|обращайтесь|"
    r"если\s+(у\s+вас\s+)?(остались|останутся|возникнут|будут)\s+(ещё\s+|еще\s+)?вопрос)",
    re.IGNORECASE,
)
# Words that tie a sentence to one moment of one customer's case.
_DEICTIC = word_set("вчера сегодня позавчера завтра утром вечером ночью недавно только сейчас днях")
_SECOND_PERSON = word_set("вы вас вам вами ваш ваша ваше ваши вашего вашей вашем вашим вашу")
_FIRST_PERSON = word_set("я мы нас нам нами наш наша наше наши нашей нашем")
# Advice that holds for anyone even though it says «вы»: «вы можете …», «вам нужно …».
_ADVICE = word_set("можно нужно необходимо надо следует стоит рекомендуем советуем мочь достаточно")


@dataclass(frozen=True)
class Block:
    """A paragraph (its sentences) or a list (its intro line and items, kept whole)."""

    kind: str  # "paragraph" | "list"
    sentences: tuple[str, ...]  # paragraph: sentences; list: intro (may be "") then items
    order: int

    def text(self) -> str:
        if self.kind == "list":
            intro, items = self.sentences[0], self.sentences[1:]
            lines = [intro] if intro else []
            lines += [f"{n}. {item}" for n, item in enumerate(items, 1)]
            return "\n".join(lines)
        return " ".join(self.sentences)


def resolution_text(hit: SearchHit) -> str:
    """The part of a hit that answers: of a ticket, what the agents replied; of a
    correction or an article, its text. Lines are kept (lists, paragraphs)."""
    text = hit.text or hit.snippet
    if hit.source == "pyrus":
        parts = _RESOLUTION.split(text, maxsplit=1)
        if len(parts) == 2 and parts[1].strip():
            return parts[1]
        if "Вопрос" in text:  # the chunk holds the question only: nothing answers here
            return ""
    return text


def blocks(text: str) -> list[Block]:
    """Paragraphs and lists of a Markdown passage (headings and tables left out)."""
    out: list[Block] = []
    paragraph: list[str] = []
    items: list[str] = []
    intro = ""

    def flush_paragraph() -> None:
        nonlocal paragraph
        if paragraph:
            out.extend(_paragraph_blocks(" ".join(paragraph), len(out)))
        paragraph = []

    def flush_list() -> None:
        nonlocal items, intro
        if items:
            out.append(Block("list", (intro, *items), len(out)))
        items, intro = [], ""

    in_code = False
    for raw in text.splitlines():
        if raw.strip().startswith(("```", "~~~")):
            in_code = not in_code
            flush_paragraph()
            flush_list()
            continue
        line = _SPACE.sub(" ", _EMPHASIS.sub(r"«\1»", _STRIP_MD.sub("", raw))).strip()
        # Code, tables and quoted messages (someone else's words) are not the reply.
        if in_code or raw.lstrip().startswith(">"):
            line = ""
        if not line or _HEADING.match(raw) or line.startswith("|"):
            if items and not line:
                continue  # a blank line inside a list does not end it
            flush_paragraph()
            flush_list()
            continue
        if _LIST_ITEM.match(line):
            if not items and paragraph and paragraph[-1].endswith(":"):
                # The sentence introducing the list belongs to it.
                *rest, last = _sentences(" ".join(paragraph))
                paragraph = []
                if rest:
                    out.extend(_paragraph_blocks(" ".join(rest), len(out)))
                intro = last
            else:
                flush_paragraph()
            items.append(_LIST_ITEM.sub("", line, count=1))
            continue
        if items:
            flush_list()
        paragraph.append(line)
    flush_paragraph()
    flush_list()
    return [Block(b.kind, b.sentences, i) for i, b in enumerate(out)]


def _paragraph_blocks(text: str, order: int) -> list[Block]:
    """A paragraph, or — when it holds an inline numbered list («…: 1. … 2. …») — the
    paragraph before the list and the list itself."""
    marks = list(_INLINE_ITEM.finditer(text))
    numbers = [int(m.group(1)) for m in marks]
    if len(marks) >= 2 and numbers[:2] == [1, 2]:
        head = text[: marks[0].start()].strip()
        items = [
            text[m.end() : marks[i + 1].start() if i + 1 < len(marks) else len(text)].strip()
            for i, m in enumerate(marks)
        ]
        before = _sentences(head)
        intro = before.pop() if before and before[-1].endswith(":") else ""
        result = [Block("paragraph", tuple(before), order)] if before else []
        return [*result, Block("list", (intro, *items), order + len(result))]
    return [Block("paragraph", tuple(_sentences(text)), order)]


def _sentences(text: str) -> list[str]:
    return [s.text.strip() for s in sentenize(text) if s.text.strip()]


@lru_cache(maxsize=50_000)
def _is_imperative(word: str) -> bool:
    return any("impr" in parse.tag for parse in _morph().parse(word)[:2])


@lru_cache(maxsize=50_000)
def _is_past_verb(word: str) -> bool:
    parse = _morph().parse(word)[0]
    return "past" in parse.tag and parse.tag.POS in ("VERB",)


def instructs(sentence: str) -> bool:
    """Whether ``sentence`` tells the reader what to do (imperative or advice)."""
    words = [w.lower() for w in WORD.findall(sentence)]
    if any(w in _ADVICE or w.startswith(("можете", "нужно")) for w in words):
        return True
    return any(_is_imperative(w) for w in words if len(w) > 3 and w.isalpha())


def situational(sentence: str) -> bool:
    """Whether ``sentence`` is about one customer's case rather than a general fact:
    when they wrote, their ids, their account, what was done for them."""
    words = [w.lower() for w in WORD.findall(sentence)]
    if any(w in _DEICTIC for w in words) or _ID.search(sentence):
        return True
    if instructs(sentence):
        return False
    if any(w in _SECOND_PERSON or w in _FIRST_PERSON for w in words):
        return True
    # «Проверили настройки …»: a report of what was done, not how things work.
    return bool(words) and _is_past_verb(words[0])


def _strip_vocative(sentence: str) -> str:
    return _VOCATIVE.sub("", sentence)


def _drop_connective(sentence: str) -> str | None:
    """``sentence`` without its opening connective, or None when the opener is a word
    that points at something (a pronoun: the sentence cannot stand alone)."""
    opener = opens_dangling(sentence)
    if opener is None:
        return sentence
    pronouns = {
        "это",
        "этот",
        "эта",
        "эти",
        "он",
        "она",
        "оно",
        "они",
        "его",
        "её",
        "ее",
        "их",
        "там",
        "тут",
        "здесь",
    }
    if opener in pronouns or opener.split()[-1] in pronouns - {"это"}:
        return None
    words = opener.split()
    pattern = r"^\W*" + r"\W+".join(map(re.escape, words)) + r"\b[\s,:—-]*"
    rest = re.sub(pattern, "", sentence, count=1, flags=re.IGNORECASE).strip()
    if not rest or opens_dangling(rest):
        return None
    return rest[0].upper() + rest[1:]


def _clean_sentences(sentences: Sequence[str], foreign: bool) -> list[str | None]:
    """Each sentence as the customer may read it, or None when it is left out."""
    out: list[str | None] = []
    for sentence in sentences:
        text = _strip_vocative(sentence)
        social = not text or _FORMULA.match(text) or PLACEHOLDER.search(text)
        out.append(None if social or (foreign and situational(text)) else text)
    # Context: a dangling opener keeps its predecessor, or loses the connective.
    for i, current in enumerate(out):
        if current is None or not opens_dangling(current):
            continue
        if i > 0 and out[i - 1] is not None:
            continue
        out[i] = _drop_connective(current)
    return out


def clean_block(block: Block, foreign: bool) -> Block | None:
    """The block as the customer may read it, or None when nothing usable is left."""
    if block.kind == "list":
        intro, *items = block.sentences
        cleaned_items = []
        for item in items:
            text = _strip_vocative(item)
            if PLACEHOLDER.search(text) or (foreign and _ID.search(text)):
                return None  # a list with a step missing is worse than no list
            cleaned_items.append(text)
        kept_intro = ""
        if intro:
            (kept,) = _clean_sentences([intro], foreign) or [None]
            kept_intro = kept or ""
        if not cleaned_items:
            return None
        if not kept_intro and len(cleaned_items) < 2:
            return None
        return Block("list", (kept_intro, *cleaned_items), block.order)
    sentences = [s for s in _clean_sentences(block.sentences, foreign) if s]
    return Block("paragraph", tuple(sentences), block.order) if sentences else None


def content_lemmas(text: str) -> frozenset[str]:
    from kb_core.generation.extractive import content_lemmas as shared

    return shared(text)


def block_score(block: Block, wanted: frozenset[str]) -> tuple[int, float]:
    """(content lemmas shared with the question, score): an answer to a support question
    is mostly what to do, so a block that instructs scores higher than one that describes
    (a list of symptoms shares the question's words but does not answer it)."""
    overlap = len(content_lemmas(block.text()) & wanted)
    sentences = block.sentences[1:] if block.kind == "list" else block.sentences
    bonus = INSTRUCTION_BONUS if any(instructs(s) for s in sentences) else 0.0
    return overlap, overlap + bonus if overlap else 0.0


def usable_blocks(hit: SearchHit) -> list[Block]:
    foreign = hit.source == "pyrus"
    return [b for b in (clean_block(b, foreign) for b in blocks(resolution_text(hit))) if b]


def select_blocks(question: str, hit: SearchHit, *, budget: int = BODY_BUDGET) -> list[Block]:
    """The blocks of ``hit`` that answer ``question``, whole and in the source's order."""
    wanted = content_lemmas(question)
    usable = usable_blocks(hit)
    if not usable:
        return []
    scored = sorted(
        ((*block_score(b, wanted), -b.order, b) for b in usable),
        key=lambda item: (item[1], item[2]),
        reverse=True,
    )
    best, best_score = scored[0][3], scored[0][1]
    chosen = [_fit(best, budget)]
    used = len(chosen[0].text())
    # A paragraph that announces what follows («Чтобы …:») brings the next block along.
    if best.kind == "paragraph" and best.text().endswith(":"):
        following = [b for b in usable if b.order == best.order + 1]
        if following and used + len(following[0].text()) <= budget:
            chosen.append(following[0])
            used += len(following[0].text())
    for overlap, score, _, block in scored[1:]:
        if overlap < MIN_OVERLAP or score < best_score / 2 or block in chosen:
            continue
        if used + len(block.text()) > budget:
            continue
        chosen.append(block)
        used += len(block.text())
    chosen.sort(key=lambda b: b.order)
    # The first block must not lean on something left out.
    while chosen and chosen[0].kind == "paragraph" and opens_dangling(chosen[0].sentences[0]):
        fixed = _drop_connective(chosen[0].sentences[0])
        if fixed is None:
            rest = chosen[0].sentences[1:]
            chosen[0] = Block("paragraph", rest, chosen[0].order)
            if not rest:
                chosen.pop(0)
        else:
            chosen[0] = Block("paragraph", (fixed, *chosen[0].sentences[1:]), chosen[0].order)
            break
    return [b for b in chosen if b.sentences]


def _fit(block: Block, budget: int) -> Block:
    """A paragraph longer than the budget keeps its leading sentences that fit (a list
    is never cut: a list with steps missing misleads)."""
    if block.kind == "list" or len(block.text()) <= budget:
        return block
    kept: list[str] = []
    size = 0
    for sentence in block.sentences:
        if kept and size + len(sentence) + 1 > budget:
            break
        kept.append(sentence)
        size += len(sentence) + 1
    return Block("paragraph", tuple(kept), block.order)


def body_text(chosen: Sequence[Block]) -> str:
    return "\n\n".join(b.text() for b in chosen).strip()


def reference_line(sources: Sequence[Source], texts: Texts) -> str:
    """Where the customer can read more: the best article among the sources (tickets of
    other customers and internal corrections are cited to the agent, not here)."""
    for source in sources:
        if source.hit.source in ("confluence", "files") and source.hit.title.strip():
            return texts.draft_reference.format(title=source.hit.title.strip())
    return ""


def compose(body: str, reference: str, texts: Texts, title: str = "") -> str:
    text = texts.draft_template.format(
        greeting=texts.draft_greeting.strip(),
        answer=body,
        reference=reference,
        closing=texts.draft_closing.strip(),
        title=title,
    )
    return re.sub(r"\n{3,}", "\n\n", text).strip()


@dataclass(frozen=True)
class Draft:
    text: str
    source: Source | None  # the source the answer was taken from (None: no answer)


def extractive_draft(question: str, sources: Sequence[Source], texts: Texts) -> Draft:
    """The customer draft from the strongest source that yields a clean one."""
    reference = reference_line(sources, texts)
    wanted = content_lemmas(question)

    def strength(rank: int, source: Source) -> float:
        scores = [block_score(b, wanted)[1] for b in usable_blocks(source.hit)]
        return max(scores, default=0.0) * RANK_DECAY**rank

    # The best few sources compete on their best block (rank still counts); the rest
    # follow in rank order, as fallbacks.
    head = sorted(enumerate(sources[:SOURCES_COMPARED]), key=lambda item: -strength(*item))
    ordered = [source for _, source in head] + list(sources[SOURCES_COMPARED:])
    for source in ordered:
        chosen = select_blocks(question, source.hit)
        while chosen:
            draft = compose(body_text(chosen), reference, texts, source.hit.title)
            if not lint_draft(draft):
                return Draft(draft, source)
            chosen = chosen[:-1]  # a smaller answer may still be a clean one
    return Draft(texts.no_answer_draft, None)


def without_placeholders(draft: str) -> str:
    """``draft`` as a customer may read it: a vocative placeholder cut («Здравствуйте,
    <PERSON>!» → «Здравствуйте!»), any other sentence holding a placeholder left out,
    line by line so lists and paragraphs keep their shape (for the LLM's drafts)."""
    lines = []
    for line in draft.splitlines():
        if not PLACEHOLDER.search(line):
            lines.append(line)
            continue
        marker = _LIST_ITEM.match(line)
        prefix = marker.group(0) if marker else ""
        kept = [
            text
            for sentence in _sentences(line[len(prefix) :])
            if (text := _strip_vocative(sentence)) and not PLACEHOLDER.search(text)
        ]
        if kept:
            lines.append(prefix + " ".join(kept))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def naive_draft(hits: Sequence[SearchHit], sentences: int = 2) -> str:
    """What a naive extractive bot sends: the first sentences of the top-ranked
    document's resolution, as they stand (the evaluation's baseline)."""
    if not hits:
        return ""
    lines = resolution_text(hits[0]).splitlines()
    text = " ".join(" ".join(line for line in lines if not _HEADING.match(line)).split())
    return " ".join(_sentences(text)[:sentences])


__all__ = [
    "Block",
    "Draft",
    "blocks",
    "clean_block",
    "extractive_draft",
    "instructs",
    "lemmas",
    "naive_draft",
    "resolution_text",
    "select_blocks",
    "situational",
]
