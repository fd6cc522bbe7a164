import json
import re
import subprocess
import sys
import tomllib

import pytest

from kb_core.settings import PROJECT_ROOT


def _lock() -> dict[str, str]:
    pins = {}
    for line in (PROJECT_ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def test_every_direct_dependency_is_pinned_to_the_locked_version():
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert set(extras) == {"pipeline", "eval", "dev"}
    direct = project["dependencies"] + [r for group in extras.values() for r in group]
    lock = _lock()
    for requirement in direct:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]+\])?==([^\s;]+)", requirement)
        assert match, f"{requirement!r} is not an exact pin"
        name = re.sub(r"[-_.]+", "-", match[1]).lower()
        assert lock.get(name) == match[3], f"{requirement} differs from requirements.lock"


def test_dagster_family_is_pinned_together():
    lock = _lock()
    family = {n: v for n, v in lock.items() if n.startswith("dagster")}
    # Libraries (dagster-postgres, dagster-k8s, ...) carry 0.(minor + 16).patch of core.
    libraries = ("postgres", "rest-resources", "k8s")
    core = {v for n, v in family.items() if not n.endswith(libraries)}
    assert core == {lock["dagster"]}
    library_version = "0." + ".".join(
        [str(int(lock["dagster"].split(".")[1]) + 16), lock["dagster"].split(".")[2]]
    )
    for name in ("dagster-postgres", "dagster-k8s"):
        assert lock[name] == library_version, name


@pytest.mark.integration  # starts a process
def test_the_bot_needs_no_extra():
    """The bot's processes import nothing of the ``pipeline`` or ``eval`` extras, so its
    image can leave them out: checked in a fresh interpreter, as ``kb serve`` and
    ``kb worker`` start (the CLI module, the app, the worker)."""
    code = (
        "import json, sys\n"
        "import kb_cli.main, bot_api.app, kb_core.bot.worker\n"
        "from bot_api.app import create_app\n"
        "from kb_core.settings import get_settings\n"
        "create_app(get_settings())\n"
        "print(json.dumps(sorted(m for m in sys.modules if '.' not in m)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = set(json.loads(proc.stdout.splitlines()[-1]))
    extras = {"dagster", "dagster_postgres", "sqlalchemy", "psycopg2", "ragas", "ranx"}
    extras |= {"pandas", "matplotlib", "instructor", "langchain_community", "rapidfuzz"}
    assert not loaded & extras


def test_the_bot_set_holds_no_pipeline_or_evaluation_package():
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    core = {re.split(r"[\[=]", r)[0].lower() for r in project["dependencies"]}
    for group in ("pipeline", "eval"):
        names = {re.split(r"[\[=]", r)[0].lower() for r in project["optional-dependencies"][group]}
        assert not core & names, group
    assert not {n for n in core if n.startswith("dagster")}
