"""Markdown-aware chunking that keeps structure and heading context.

Why hand-written: langchain's MarkdownHeaderTextSplitter rejoins lines with hard breaks
and loses paragraph boundaries (a table glued to the code block before it). Here the
Markdown is cut into sections at headings (outside code fences), sections into blocks
(paragraphs, lists, tables, whole fenced code blocks), and blocks are packed into chunks
of about ``size`` characters. A section that fits in one chunk is never split across two;
a block larger than a chunk is split by lines/sentences (code stays fenced in every
piece). Consecutive chunks of one section overlap by whole trailing blocks of at most
``overlap`` characters. Every chunk carries the heading path it sits under.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kb_core.models import Chunk
from kb_core.settings import ChunkingSettings, defaults_of
from kb_core.text.fences import FENCE, next_fence

_DEFAULT = defaults_of(ChunkingSettings)

_HEADING = re.compile(r"^(?P<hashes>#{1,6})[ \t]+(?P<title>.*?)[ \t]*#*[ \t]*$")


@dataclass(frozen=True)
class ChunkerConfig:
    size: int = _DEFAULT["size"]  # KB_CHUNK_SIZE's default
    overlap: int = _DEFAULT["overlap"]

    @property
    def signature(self) -> str:
        """Changes whenever output would change: stored with chunks to detect staleness."""
        return f"md-blocks-v1:{self.size}:{self.overlap}"


@dataclass(frozen=True)
class _Block:
    text: str
    path: tuple[str, ...]
    fence: str | None = None  # opening fence line when the block is fenced code


@dataclass
class _Section:
    path: tuple[str, ...]
    lines: list[str]


def _split_sections(markdown: str) -> list[_Section]:
    sections = [_Section((), [])]
    stack: list[tuple[int, str]] = []
    fence: str | None = None
    for line in markdown.split("\n"):
        outside_code = fence is None
        fence = next_fence(fence, line)
        if outside_code and fence is None and (heading := _HEADING.match(line)):
            level = len(heading["hashes"])
            stack = [(lvl, title) for lvl, title in stack if lvl < level]
            stack.append((level, heading["title"].strip()))
            sections.append(_Section(tuple(t for _, t in stack), []))
        sections[-1].lines.append(line)
    return [s for s in sections if any(line.strip() for line in s.lines)]


def _split_blocks(section: _Section) -> list[_Block]:
    blocks: list[_Block] = []
    current: list[str] = []
    fence_line: str | None = None
    fence: str | None = None

    def flush() -> None:
        nonlocal current
        if any(line.strip() for line in current):
            blocks.append(_Block("\n".join(current).strip("\n"), section.path, fence_line))
        current = []

    for line in section.lines:
        before, fence = fence, next_fence(fence, line)
        if before is None and fence is not None:  # opening fence: code starts a block
            flush()
            fence_line = line.strip()
            current.append(line)
        elif before is not None:  # inside code, blank lines included
            current.append(line)
            if fence is None:
                flush()
                fence_line = None
        elif not line.strip():
            flush()
        else:
            current.append(line)
    flush()  # an unclosed fence keeps its text: never lose body text
    return blocks


def _split_text(text: str, limit: int) -> list[str]:
    """Split a long prose block at line, sentence, then word boundaries."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(
        chunk_size=limit, chunk_overlap=0, separators=["\n", ". ", "; ", ", ", " ", ""]
    )
    return [piece for piece in splitter.split_text(text) if piece.strip()]


def _split_code(block: _Block, limit: int) -> list[str]:
    """Split a long fenced block by lines, re-fencing every piece."""
    lines = block.text.split("\n")
    opening = lines[0]
    opening_match = FENCE.match(opening)
    fence = opening_match["fence"] if opening_match else "```"
    closing_match = FENCE.match(lines[-1]) if len(lines) > 1 else None
    closed = bool(closing_match and closing_match["fence"].startswith(fence))
    body = lines[1:-1] if closed else lines[1:]
    budget = max(limit - len(opening) - len(fence) - 2, 40)
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for line in body:
        for part in [line[i : i + budget] for i in range(0, max(len(line), 1), budget)]:
            if current and size + len(part) + 1 > budget:
                pieces.append("\n".join([opening, *current, fence]))
                current, size = [], 0
            current.append(part)
            size += len(part) + 1
    if current or not pieces:
        pieces.append("\n".join([opening, *current, fence]))
    return pieces


def _fit(block: _Block, limit: int) -> list[_Block]:
    if len(block.text) <= limit:
        return [block]
    if block.fence is not None:
        return [_Block(t, block.path, block.fence) for t in _split_code(block, limit)]
    return [_Block(t, block.path) for t in _split_text(block.text, limit)]


def _common_prefix(paths: list[tuple[str, ...]]) -> tuple[str, ...]:
    prefix = paths[0]
    for path in paths[1:]:
        n = 0
        while n < min(len(prefix), len(path)) and prefix[n] == path[n]:
            n += 1
        prefix = prefix[:n]
    return prefix


def chunk_markdown(markdown: str, config: ChunkerConfig | None = None) -> list[Chunk]:
    """Chunks of ``markdown`` in reading order."""
    config = config or ChunkerConfig()
    size, overlap = config.size, config.overlap
    chunks: list[Chunk] = []
    buffer: list[_Block] = []
    buffer_len = 0

    def emit() -> list[_Block]:
        """Close the current chunk; return the blocks that seed the next one (overlap)."""
        nonlocal buffer, buffer_len
        if not buffer:
            return []
        text = "\n\n".join(b.text for b in buffer)
        path = _common_prefix([b.path for b in buffer])
        chunks.append(Chunk(ordinal=len(chunks), text=text, heading_path=path))
        carry: list[_Block] = []
        carried = 0
        for block in reversed(buffer):
            if carried + len(block.text) > overlap or block.path != buffer[-1].path:
                break
            carry.insert(0, block)
            carried += len(block.text) + 2
        if len(carry) == len(buffer):  # never carry a whole chunk: no progress otherwise
            carry = []
        buffer, buffer_len = [], 0
        return carry

    def add(block: _Block) -> None:
        nonlocal buffer, buffer_len
        buffer.append(block)
        buffer_len += len(block.text) + 2

    for section in _split_sections(markdown):
        blocks = [piece for block in _split_blocks(section) for piece in _fit(block, size)]
        section_len = sum(len(b.text) + 2 for b in blocks)
        if buffer and buffer_len + section_len > size:
            emit()  # the section starts a fresh chunk instead of being cut at its start
        for block in blocks:
            if buffer and buffer_len + len(block.text) > size:
                for carried in emit():
                    add(carried)
                if buffer and buffer_len + len(block.text) > size:
                    buffer, buffer_len = [], 0
            add(block)
    emit()
    return chunks
