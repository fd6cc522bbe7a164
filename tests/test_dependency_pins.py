import re
import tomllib

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
    direct = project["dependencies"] + project["optional-dependencies"]["dev"]
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
