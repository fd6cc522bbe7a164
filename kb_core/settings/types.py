"""Field types shared by the settings groups.

A list setting is a real ``list`` in code, but its environment value keeps the format it
always had: items separated by a comma (or a semicolon where items may hold commas).
``NoDecode`` stops pydantic-settings from expecting JSON, and one validator splits the text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator
from pydantic_settings import NoDecode


@dataclass(frozen=True)
class Separated:
    """Marks a list setting and says how its environment value separates items (the
    settings reference reads it to show defaults in the environment's format)."""

    separator: str = ","


def split_items(separator: str) -> Callable[[Any], Any]:
    """The one validator of list settings: a string is split at ``separator``, items
    stripped, empties dropped; anything else (a list from code) passes on unchanged."""

    def split(value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(separator) if item.strip()]
        return value

    return split


CommaList = Annotated[list[str], NoDecode, BeforeValidator(split_items(",")), Separated(",")]
CommaIntList = Annotated[list[int], NoDecode, BeforeValidator(split_items(",")), Separated(",")]
SemicolonList = Annotated[list[str], NoDecode, BeforeValidator(split_items(";")), Separated(";")]


def _expand(value: Path) -> Path:
    return value.expanduser().resolve()


ExpandedPath = Annotated[Path, AfterValidator(_expand)]
"""A folder or file setting: ``~`` expanded and made absolute once, at start-up."""
