"""Read and rewrite the synonym dictionary's file (``KB_SYNONYMS_PATH``) as plain groups.

The console lets a knowledge owner edit the dictionary; search reads the same file
(``SynonymDictionary.load``, cached until the file changes), so a saved edit applies to
the next query. A write is validated first by building the dictionary (the same rules and
messages as at load time) and replaces the file atomically; the file's leading comment
block (up to its first blank line: the rules for editors) is kept, comments between groups are not.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import yaml

from kb_core.search.synonyms import SynonymDictionary


def read_groups(path: str | os.PathLike[str]) -> list[list[str]]:
    """The groups as written, each spelling as text (validated by loading them)."""
    SynonymDictionary.load(path)
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or []
    return [[str(spelling) for spelling in group] for group in data]


def write_groups(path: str | os.PathLike[str], groups: Sequence[Sequence[str]]) -> None:
    """Replace the dictionary's groups; a ``ValueError`` names what is wrong."""
    cleaned = [[spelling.strip() for spelling in group] for group in groups]
    SynonymDictionary(cleaned, source="synonyms")
    target = Path(path)
    header = _leading_comments(target)
    body = yaml.safe_dump(cleaned, allow_unicode=True, default_flow_style=None, width=1000)
    text = header + (body if cleaned else "[]\n")
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _leading_comments(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    except FileNotFoundError:
        return ""
    header: list[str] = []
    for line in lines:
        # The block ends at its first blank line: what follows (section titles) belongs
        # to the groups, which are rewritten.
        if not line.strip() and header:
            header.append(line)
            break
        if line.strip() and not line.lstrip().startswith("#"):
            break
        header.append(line)
    return "".join(header)
