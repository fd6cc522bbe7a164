"""Monitoring that fires: the alert rules, their unit tests, the dashboards, and the
figures of processes nothing scrapes reaching /metrics.

promtool (Debian's ``prometheus`` package; .ci/run installs it) runs the rule unit
tests and checks the configuration. With KB_REQUIRE_PROMTOOL set (CI) a missing promtool
fails these tests instead of skipping them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from bot_api.app import create_app
from kb_core.db import Database
from kb_core.embeddings.factory import HttpConfig, openai_embedder
from kb_core.index.documents import sync_source
from kb_core.index.stages import chunk_pending, convert_pending, embed_pending
from kb_core.models import SourceDocument
from kb_core.settings import PROJECT_ROOT, Settings
from kb_core.text.chunking import ChunkerConfig
from kb_fakes.embeddings import (
    FAKE_EMBEDDING_KEY,
    ZERO_VECTOR_MARKER,
    EmbeddingServerConfig,
    create_embeddings_app,
)
from kb_fakes.messenger import create_messenger_app
from kb_fakes.server import ServerThread

DEPLOY = PROJECT_ROOT / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
RULE_TESTS = DEPLOY / "prometheus" / "alerts.test.yml"
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("KB_REQUIRE_PROMTOOL"):
            pytest.fail("promtool is required (apt-get install prometheus)")
        pytest.skip("promtool not installed (Debian package prometheus)")
    return found


def _run(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=cwd)


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


@pytest.mark.integration  # starts a process
def test_alert_rules_pass_their_promtool_unit_tests():
    promtool = _promtool()
    checked = _run(promtool, "check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = _run(promtool, "test", "rules", str(RULE_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr


@pytest.mark.integration  # starts a process
def test_the_unit_tests_can_fail(tmp_path: Path):
    promtool = _promtool()
    tests = yaml.safe_load(RULE_TESTS.read_text())
    quiet = next(
        t for t in tests["tests"] if all(not c["exp_alerts"] for c in t["alert_rule_test"])
    )
    quiet["alert_rule_test"][0]["exp_alerts"] = [{"exp_labels": {"severity": "warning"}}]
    shutil.copy(RULES, tmp_path / "alerts.yml")
    (tmp_path / "broken.test.yml").write_text(yaml.safe_dump({**tests, "tests": [quiet]}))
    assert _run(promtool, "test", "rules", "broken.test.yml", cwd=tmp_path).returncode != 0


def test_every_alert_has_a_case_that_fires_and_one_that_does_not():
    cases: dict[str, set[bool]] = {}
    for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for case in test["alert_rule_test"]:
            cases.setdefault(case["alertname"], set()).add(bool(case["exp_alerts"]))
    names = [rule["alert"] for rule in _rules()]
    assert len(names) == len(set(names))
    for name in names:
        assert cases.get(name) == {True, False}, f"{name}: needs a firing and a quiet case"


def test_the_readme_alert_table_is_the_rule_file():
    text = (DEPLOY / "README.md").read_text()
    table = text.split("## What to watch", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `(Kb\w+)` \|", table, flags=re.MULTILINE))
    assert listed == {rule["alert"] for rule in _rules()}


def test_the_operator_rule_is_the_rule_file():
    operator = yaml.safe_load((DEPLOY / "k8s" / "monitoring" / "prometheusrule.yaml").read_text())
    assert operator["kind"] == "PrometheusRule"
    assert operator["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]


@pytest.mark.integration  # starts a process
def test_prometheus_config_is_valid_and_scrapes_the_bot_and_the_worker():
    promtool = _promtool()
    checked = _run(promtool, "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]
    }
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())["services"]
    for job, service in (("kb-bot", "bot"), ("kb-worker", "worker")):
        (target,) = targets[job]
        host, port = target.split(":")
        assert host == service and service in compose
    assert "--metrics-port" in compose["worker"]["command"]
    assert (
        compose["worker"]["command"][compose["worker"]["command"].index("--metrics-port") + 1]
        == port
    )


# --- dashboards ------------------------------------------------------------------------

# The parts of Grafana's dashboard model (schemaVersion 39) the provisioned dashboards
# use; Grafana rejects a provisioned file without uid/title/panels, and a panel without
# type and gridPos is not drawn.
DASHBOARD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["uid", "title", "schemaVersion", "panels", "time"],
    "properties": {
        "uid": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,40}$"},
        "title": {"type": "string", "minLength": 1},
        "schemaVersion": {"type": "integer", "minimum": 36},
        "time": {
            "type": "object",
            "required": ["from", "to"],
            "properties": {"from": {"type": "string"}, "to": {"type": "string"}},
        },
        "panels": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["id", "type", "title", "gridPos", "targets", "datasource"],
                "properties": {
                    "id": {"type": "integer"},
                    "type": {
                        "enum": ["timeseries", "stat", "bargauge", "piechart", "table", "gauge"]
                    },
                    "gridPos": {
                        "type": "object",
                        "required": ["x", "y", "w", "h"],
                        "properties": {
                            "x": {"type": "integer", "minimum": 0, "maximum": 23},
                            "w": {"type": "integer", "minimum": 1, "maximum": 24},
                            "y": {"type": "integer", "minimum": 0},
                            "h": {"type": "integer", "minimum": 1},
                        },
                    },
                    "datasource": {
                        "type": "object",
                        "required": ["type", "uid"],
                        "properties": {"type": {"const": "prometheus"}},
                    },
                    "targets": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["expr", "refId"],
                            "properties": {"expr": {"type": "string", "minLength": 1}},
                        },
                    },
                },
            },
        },
    },
}


def _exprs(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p["targets"]]


@pytest.mark.integration  # starts a process
def test_dashboards_are_valid_and_their_queries_parse(tmp_path: Path):
    import jsonschema

    datasources = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"]
    uids = {d["uid"] for d in datasources}
    assert {p.stem for p in DASHBOARDS} == {"bot", "knowledge-base", "effect"}
    seen_uids = set()
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        jsonschema.validate(dashboard, DASHBOARD_SCHEMA)
        seen_uids.add(dashboard["uid"])
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids)), path.name
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] in uids, f"{path.name}: {panel['title']}"
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, f"{path.name}: {panel['title']} overflows"
    assert len(seen_uids) == len(DASHBOARDS)
    # Every query parses as PromQL: checked by promtool as recording rules.
    promtool = _promtool()
    exprs = [e for path in DASHBOARDS for e in _exprs(json.loads(path.read_text()))]
    rules = {
        "groups": [
            {
                "name": "dashboards",
                "rules": [{"record": f"dashboard:q{i}", "expr": e} for i, e in enumerate(exprs)],
            }
        ]
    }
    (tmp_path / "queries.yml").write_text(yaml.safe_dump(rules, allow_unicode=True))
    checked = _run(promtool, "check", "rules", str(tmp_path / "queries.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_dashboard_sections_cover_what_operators_asked_for():
    titles = {
        path.stem: " ".join(p["title"] for p in json.loads(path.read_text())["panels"]).lower()
        for path in DASHBOARDS
    }
    for word in ("webhooks", "latency", "queue", "dead letters"):
        assert word in titles["bot"]
    for word in ("promotion", "evaluation", "pii"):
        assert word in titles["knowledge-base"]
    for word in ("coverage", "acceptance", "category"):
        assert word in titles["effect"]


# --- the figures of processes nothing scrapes --------------------------------------------


@pytest.fixture
def bge_fake() -> Iterator[str]:
    with ServerThread(create_embeddings_app(EmbeddingServerConfig(dimension=1024))) as server:
        yield f"{server.url}/v1"


@pytest.fixture
def messenger_url() -> Iterator[str]:
    with ServerThread(create_messenger_app()) as server:
        # A wrong token: the messenger refuses (404), the notification fails.
        yield f"{server.url}/hooks/not-the-token"


def _doc(name: str, body: str) -> SourceDocument:
    return SourceDocument(
        source="files", external_id=name, title=name, raw_format="markdown", raw_body=body
    )


def _scrape(client: TestClient) -> dict[str, float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def _alert_case(alert: str, before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    """A promtool test of one alert over two scrapes a minute apart (as real scrapes), the
    series named exactly as /metrics served them."""
    series = [
        {"series": name, "values": f"{before.get(name, 0)} {value} {value}"}
        for name, value in after.items()
        if name.startswith(("kb_pipeline_", "kb_ops_"))
    ]
    return {
        "interval": "1m",
        "input_series": series,
        "promql_expr_test": [],
        "alert_rule_test": [{"eval_time": "2m", "alertname": alert}],
    }


def test_scraped_metrics_fire_the_invalid_vector_and_failed_notification_alerts(
    kb_settings: Settings,
    database: Database,
    bge_fake: str,
    messenger_url: str,
    tmp_path: Path,
):
    from kb_assets.resources import KbSettings, NotificationsResource

    promtool = _promtool()
    bge = openai_embedder(
        HttpConfig(
            url=bge_fake, model="bge-m3", dimension=1024, api_key=SecretStr(FAKE_EMBEDDING_KEY)
        )
    )
    healthy = [_doc("vpn.md", "# VPN\n\nСкачайте клиент OpenVPN и импортируйте профиль.\n")]
    with database.connection() as conn:
        sync_source(conn, "files", healthy, full_listing=False)
        convert_pending(conn)
        chunk_pending(conn, ChunkerConfig())
        assert embed_pending(conn, bge).invalid == 0

    with TestClient(create_app(kb_settings)) as client:
        before = _scrape(client)
        # The pipeline (another process in production) meets a broken vector, and a
        # sensor's notification is refused by the messenger.
        broken = [*healthy, _doc("broken.md", f"# Сломанный\n\n{ZERO_VECTOR_MARKER}\n")]
        with database.connection() as conn:
            sync_source(conn, "files", broken, full_listing=False)
            convert_pending(conn)
            chunk_pending(conn, ChunkerConfig())
            assert embed_pending(conn, bge).invalid == 1
        refusing = kb_settings.with_env({"KB_NOTIFY_WEBHOOK_URL": messenger_url})
        notifications = NotificationsResource(kb_settings=KbSettings.from_settings(refusing))
        assert notifications.send("run_failure", "Сбой", "Запуск упал") is False
        after = _scrape(client)

    invalid = 'kb_pipeline_invalid_vectors_total{model="openai:bge-m3"}'
    failed = 'kb_pipeline_notifications_total{kind="run_failure",outcome="failed"}'
    assert (before[invalid], after[invalid]) == (0.0, 1.0)
    assert (before[failed], after[failed]) == (0.0, 1.0)
    assert after["kb_ops_database_up{}"] == 1.0

    shutil.copy(RULES, tmp_path / "alerts.yml")
    expected = {
        "KbInvalidVectors": {"severity": "warning", "model": "openai:bge-m3"},
        "KbNotificationFailed": {"severity": "warning", "kind": "run_failure"},
    }
    summaries = {rule["alert"]: rule["annotations"] for rule in _rules()}
    fired = []
    quiet = []
    for alert, labels in expected.items():
        case = _alert_case(alert, before, after)
        case["alert_rule_test"][0]["exp_alerts"] = [
            {"exp_labels": labels, "exp_annotations": summaries[alert]}
        ]
        fired.append(case)
        # the same scrapes without the rise: nothing fires
        still = _alert_case(alert, after, after)
        still["alert_rule_test"][0]["exp_alerts"] = []
        quiet.append(still)
    (tmp_path / "scraped.test.yml").write_text(
        yaml.safe_dump(
            {"rule_files": ["alerts.yml"], "evaluation_interval": "1m", "tests": fired + quiet},
            allow_unicode=True,
        )
    )
    result = _run(promtool, "test", "rules", "scraped.test.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_database_figures_are_served_with_the_bots_own(
    kb_settings: Settings, database: Database
):
    healthz = 'kb_http_requests_total{method="GET",route="/healthz",status="2xx"}'
    refused = 'kb_http_requests_total{method="GET",route="/api/search",status="5xx"}'
    with TestClient(create_app(kb_settings)) as client:
        before = _scrape(client)
        client.get("/healthz")
        # no console password configured: 503, counted under its route template
        assert client.get("/api/search", params={"q": "x"}).status_code == 503
        client.get("/no/such/path/42")
        samples = _scrape(client)
    names = {name.split("{")[0] for name in samples}
    for name in (
        "kb_ops_database_up",
        "kb_bot_queue_depth",
        "kb_bot_dead_letters",
        "kb_pipeline_notifications_total",
        "kb_pipeline_pii_checks_total",
        "kb_http_requests_total",
    ):
        assert name in names, name
    assert samples[healthz] - before.get(healthz, 0) == 1
    assert samples[refused] - before.get(refused, 0) == 1
    assert not any("/no/such/path" in name for name in samples)
