"""The synonym dictionary file: a YAML list of groups, read with line numbers.

The file (``config/synonyms.yaml``, ``KB_SYNONYMS_PATH``) is edited by people, so every
mistake is reported with its group and line, and every scalar is checked to be a
string as YAML reads it: an unquoted ``429`` or ``yes`` would otherwise become a number
or a boolean. What the groups mean is ``kb_core.search.synonyms``' business.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

# A group as read: its line (None when built in code) and its (value, line) entries.
RawGroup = tuple[int | None, list[tuple[object, int | None]]]


def value_kind(value: object) -> str:
    """What a YAML value is, in words for an error message («a number», «a mapping»)."""
    if value is None:
        return "empty (null)"
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    name = names.get(type(value))
    if name:
        return name
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def read_groups(path: Path) -> list[RawGroup]:
    """Groups with their line numbers, every scalar typed as YAML reads it.

    Composed node by node rather than ``safe_load``-ed, so that an error names the line
    and a spelling YAML would read as a number or a boolean («1с» is fine, ``429`` or
    ``yes`` are not) is refused instead of silently turned into something else."""
    try:
        text = path.read_text(encoding="utf-8")
        root: Any = yaml.compose(text, Loader=yaml.SafeLoader)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from exc
    if root is None:
        raise ValueError(f"{path}: the file is empty; expected a list of groups ([] for none)")
    if not isinstance(root, yaml.SequenceNode):
        raise ValueError(
            f"{path}: expected a list of groups, got {_node_kind(root)} "
            f"(line {root.start_mark.line + 1})"
        )
    groups: list[RawGroup] = []
    for index, node in enumerate(root.value):
        line = node.start_mark.line + 1
        if not isinstance(node, yaml.SequenceNode):
            raise ValueError(
                f"{path}: group {index + 1} (line {line}): expected a list of spellings "
                f"such as [впн, vpn], got {_node_kind(node)}"
            )
        entries: list[tuple[object, int | None]] = []
        for item in node.value:
            item_line = item.start_mark.line + 1
            if not isinstance(item, yaml.ScalarNode):
                raise ValueError(
                    f"{path}: group {index + 1} (line {item_line}): expected a spelling, "
                    f"got {_node_kind(item)}"
                )
            if item.tag != _STR_TAG:
                raise ValueError(
                    f"{path}: group {index + 1} (line {item_line}): {item.value!r} reads as "
                    f"{_TAG_KINDS.get(item.tag, item.tag)}, not a string; quote it"
                )
            entries.append((item.value, item_line))
        groups.append((line, entries))
    return groups


_STR_TAG = "tag:yaml.org,2002:str"
_TAG_KINDS = {
    "tag:yaml.org,2002:int": "a number",
    "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:bool": "a boolean",
    "tag:yaml.org,2002:null": "empty (null)",
    "tag:yaml.org,2002:timestamp": "a date",
}


def _node_kind(node: Any) -> str:
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if node.tag == _STR_TAG:
        return f"the string {node.value!r}"
    return f"{_TAG_KINDS.get(node.tag, node.tag)} ({node.value!r})"
