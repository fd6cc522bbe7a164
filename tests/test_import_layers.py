"""Import structure of kb_core: the text layer stands on its own, and no module cycles.

Read from the source with ``ast`` (nothing is imported), counting imports inside
functions too: a lazy import is still a dependency, and the cycle this guards against
(``text.markdown`` ↔ ``text.confluence``) was a lazy one. ``kb_core.sources`` builds on
``kb_core.text`` (converters, front matter), never the other way round.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

KB_CORE = Path(__file__).resolve().parent.parent / "kb_core"
# What kb_core.text may import from the rest of kb_core: plain data types only.
# The error base and the settings sit below every layer (the settings import kb_core only
# lazily, to validate KB_BOT_FORM_SCOPES with the search scope parser).
TEXT_MAY_IMPORT = {"kb_core.models", "kb_core.errors", "kb_core.settings"}


def _module(path: Path) -> str:
    parts = path.relative_to(KB_CORE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> Iterator[str]:
    """Every ``kb_core`` module a file imports (``from a import b``: ``a.b`` when that is
    a module of its own, else ``a``)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [
                f"{node.module}.{alias.name}"
                if _exists(f"{node.module}.{alias.name}")
                else node.module
                for alias in node.names
            ]
        else:
            continue
        yield from (name for name in names if name.startswith("kb_core."))


def _exists(module: str) -> bool:
    path = KB_CORE.parent.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _graph() -> dict[str, set[str]]:
    """Module → the kb_core modules it imports."""
    graph: dict[str, set[str]] = {}
    for path in KB_CORE.rglob("*.py"):
        source = _module(path)
        targets = graph.setdefault(source, set())
        for target in _imports(path):
            # A module importing its own package (``kb_core.search`` from inside it) is
            # that package's __init__ re-exporting, not a dependency in a cycle.
            if not source.startswith(target + ".") and target != source:
                targets.add(target)
    return graph


def _cycle(graph: dict[str, set[str]], nodes: set[str]) -> list[str]:
    """One import cycle among ``nodes`` (empty: none), found depth first."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, set()) & nodes):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        state[node] = 2
        path.pop()
        return []

    for node in sorted(nodes):
        if node not in state and (found := visit(node)):
            return found
    return []


def test_the_text_layer_imports_nothing_above_it() -> None:
    graph = _graph()
    offending = sorted(
        (source, target)
        for source, targets in graph.items()
        for target in targets
        if _within(source, "kb_core.text")
        and not _within(target, "kb_core.text")
        and target not in TEXT_MAY_IMPORT
    )
    assert offending == []


def test_no_import_cycle_inside_the_text_and_search_packages() -> None:
    graph = _graph()
    for package in ("kb_core.text", "kb_core.search", "kb_core.sources"):
        inner = {node for node in graph if _within(node, package)}
        assert _cycle(graph, inner) == [], package


def test_the_check_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycle(graph, set(graph)) == ["a", "b", "c", "a"]
    assert _cycle(graph, {"a", "b", "d"}) == []
