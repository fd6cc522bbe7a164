"""How much a deployable installs: the closure of a pyproject's requirement lists over the
distributions installed in this venv (count and installed size).

The bot image needs only the core set; before the extras split every image installed the
whole non-dev set. Run it against any pyproject to compare (e.g. an older commit's):

    .venv/bin/python -m bench.dependency_footprint
    git show <commit>:pyproject.toml > /tmp/old.toml && \
        .venv/bin/python -m bench.dependency_footprint --pyproject /tmp/old.toml
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tomllib
from importlib.metadata import Distribution, PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def closure(requirements: list[str]) -> tuple[int, int]:
    """Distributions reachable from ``requirements`` (with their extras) and their size."""
    seen: dict[tuple[str, frozenset[str]], Distribution] = {}
    todo = [(Requirement(r), frozenset(Requirement(r).extras)) for r in requirements]
    while todo:
        req, extras = todo.pop()
        key = (canonicalize_name(req.name), extras)
        if key in seen:
            continue
        try:
            dist = distribution(req.name)
        except PackageNotFoundError:  # a marker-excluded or optional package not installed
            continue
        seen[key] = dist
        for sub in map(Requirement, dist.requires or []):
            environments = [{"extra": e} for e in extras] or [{"extra": ""}]
            if sub.marker and not any(sub.marker.evaluate(e) for e in environments):
                continue
            todo.append((sub, frozenset(sub.extras)))
    dists = {canonicalize_name(d.metadata["Name"]): d for d in seen.values()}
    size = 0
    for dist in dists.values():
        for file in dist.files or []:
            with contextlib.suppress(OSError):
                size += os.path.getsize(Path(str(dist.locate_file(file))))
    return len(dists), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pyproject", type=Path, default=Path("pyproject.toml"))
    args = parser.parse_args()
    project = tomllib.loads(args.pyproject.read_text("utf-8"))["project"]
    extras: dict[str, list[str]] = project.get("optional-dependencies", {})
    sets = {"core": list(project["dependencies"])}
    for name, requirements in extras.items():
        if name != "dev":
            sets[f"core+{name}"] = sets["core"] + requirements
    sets["everything but dev"] = sets["core"] + [
        r for name, reqs in extras.items() if name != "dev" for r in reqs
    ]
    report = {}
    for label, requirements in sets.items():
        count, size = closure(requirements)
        report[label] = {"distributions": count, "installed_mib": round(size / 2**20)}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
