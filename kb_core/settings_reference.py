"""Generates docs/settings.md, the settings reference, from the groups' ``Field``
descriptions: one table per group with each variable's name, type and default.

``python -m kb_core.settings_reference --write`` rewrites the file; ``--check`` exits 1
when it is stale (tests/test_settings.py does the same).
"""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import AliasChoices, BaseModel, SecretStr
from pydantic.fields import FieldInfo

from kb_core.settings import PROJECT_ROOT, Separated, Settings, env_name

REFERENCE = PROJECT_ROOT / "docs" / "settings.md"

HEADER = """\
# Settings reference

Generated from the `Field` descriptions in `kb_core/settings/groups.py` by
`python -m kb_core.settings_reference --write`; `tests/test_settings.py` fails when this
file is stale. Every setting comes from the environment or a `.env` file in the working
directory. In code, `Settings` holds one attribute per group: `KB_EMBEDDING_URL` is
`settings.embedding.url`.

List settings take their items separated by a comma (or a semicolon where the table says
so); surrounding spaces and empty items are ignored.
"""


def _separator(info: FieldInfo) -> str | None:
    return next((m.separator for m in info.metadata if isinstance(m, Separated)), None)


def env_names(group: type[BaseModel], field: str) -> list[str]:
    """Every environment name that sets the field, the documented one first."""
    alias = group.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    return [env_name(group, field)]


def _type_name(annotation: Any) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _type_name(args[0])
    if origin in (Union, UnionType):
        return " or ".join(_type_name(arg) for arg in args)
    if origin is Literal:
        return "one of " + ", ".join(f"`{arg}`" for arg in args)
    if annotation is type(None):
        return "unset"
    if annotation is SecretStr:
        return "secret"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation)


def _type(info: FieldInfo) -> str:
    separator = _separator(info)
    if separator is not None:
        item = "integers" if "int" in str(info.annotation) else "strings"
        return f"list of {item}, `{separator}`-separated"
    return _type_name(info.annotation)


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        return "per user data dir (platformdirs: `pyrus-kb`)"
    value: Any = info.default
    separator = _separator(info)
    if value is None:
        return "unset"
    if separator is not None:
        value = separator.join(str(item) for item in value)
        return f"`{value}`" if value else "empty"
    if isinstance(value, SecretStr):
        return "secret"
    if isinstance(value, Path):
        relative = value.relative_to(PROJECT_ROOT).as_posix()
        return "repository root" if relative == "." else f"`{relative}`"
    if value == "":
        return "empty"
    return f"`{value}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render() -> str:
    """The whole reference, deterministic (declaration order of groups and fields)."""
    parts = [HEADER]
    for name, group in Settings.groups().items():
        doc = inspect.cleandoc(group.__doc__ or "")
        prefix = group.model_config.get("env_prefix", "")
        parts.append(f"\n## `{name}` — {doc}\n")
        parts.append(f"\n`settings.{name}` (`{group.__name__}`, prefix `{prefix}`)\n\n")
        parts.append("| Variable | Field | Type | Default | Description |\n")
        parts.append("| --- | --- | --- | --- | --- |\n")
        for field, info in group.model_fields.items():
            names = env_names(group, field)
            variable = f"`{names[0]}`" + "".join(f" (or `{n}`)" for n in names[1:])
            parts.append(
                f"| {variable} | `{field}` | {_cell(_type(info))} | {_cell(_default(info))} "
                f"| {_cell(info.description or '')} |\n"
            )
    return "".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help="rewrite docs/settings.md")
    action.add_argument("--check", action="store_true", help="exit 1 when it is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        REFERENCE.write_text(text, encoding="utf-8")
        return 0
    if args.check:
        current = REFERENCE.read_text(encoding="utf-8") if REFERENCE.is_file() else ""
        if current != text:
            print(f"{REFERENCE} is stale: run python -m kb_core.settings_reference --write")
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
