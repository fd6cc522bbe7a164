"""Jira documents carry their project's read access: the "Browse projects" grants of the
project's permission scheme, read from the fake Jira with the REST shapes of ``GET
/rest/api/2/project/{key}/permissionscheme`` and ``GET /rest/api/2/project/{key}/role/{id}``
(readable by everyone, as before, when the scheme cannot be read)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from bot_api.app import create_app
from kb_core.db import Database
from kb_core.settings import Settings
from kb_core.sources.jira_access import browse_groups, role_group_names
from kb_fakes.jira import TOKEN, JiraStore, create_jira_app
from kb_fakes.server import ServerThread
from tests.conftest import run_ingest

QUESTION = "синхронизация пользователей с Active Directory ошибка LDAP 49"
SECRET = "INT-201"


@pytest.fixture
def jira_server() -> Iterator[tuple[JiraStore, ServerThread]]:
    store = JiraStore.from_samples()
    server = ServerThread(create_jira_app(store)).start()
    yield store, server
    server.stop()


@pytest.fixture
def jira(jira_server: tuple[JiraStore, ServerThread]) -> JiraStore:
    return jira_server[0]


@pytest.fixture
def settings(kb_settings: Settings, jira_server: tuple[JiraStore, ServerThread]) -> Settings:
    server = jira_server[1]
    return kb_settings.with_env(
        {
            "KB_JIRA_URL": server.url,
            "KB_JIRA_PROJECTS": "HD,INT",
            "KB_JIRA_TOKEN": TOKEN,
            "KB_EVAL_GATE": "false",  # the permission filter is under test
        }
    )


def _access(database: Database) -> dict[str, tuple[list[str], str]]:
    with database.connection() as conn:
        rows = conn.execute(
            "SELECT d.external_id, a.groups, a.origin FROM document_access a "
            "JOIN documents d ON d.id = a.document_id WHERE d.source = 'jira'"
        ).fetchall()
    return {r[0]: (sorted(r[1]), r[2]) for r in rows}


def _console_hits(settings: Settings, groups: str) -> list[str]:
    header_auth = settings.with_overrides(console={"auth": "header"})
    headers = {"X-Forwarded-User": "someone", "X-Forwarded-Groups": groups}
    with TestClient(create_app(header_auth)) as client:
        found = client.get("/api/search", params={"q": QUESTION, "k": 50}, headers=headers)
        assert found.status_code == 200
        return [hit["external_id"] for hit in found.json()]


def test_scheme_grants_become_groups():
    roles = {"10002": ["int-devs"]}
    scheme = {
        "permissions": [
            {"holder": {"type": "group", "parameter": "admins"}, "permission": "ADMINISTER"},
            {"holder": {"type": "group", "parameter": "int-team"}, "permission": "BROWSE_PROJECTS"},
            # Cloud with expand=group names the group under "group"
            {
                "holder": {"type": "group", "value": "gid-1", "group": {"name": "l2"}},
                "permission": "BROWSE_PROJECTS",
            },
            {"holder": {"type": "projectRole", "parameter": "10002"}, "permission": "BROWSE"},
            # single people let no console reader in: the filter fails closed
            {"holder": {"type": "user", "parameter": "jdoe"}, "permission": "BROWSE_PROJECTS"},
            {"holder": {"type": "reporter"}, "permission": "BROWSE_PROJECTS"},
        ]
    }
    assert browse_groups(scheme, roles.__getitem__) == {"int-team", "l2", "int-devs"}
    anyone = {"permissions": [{"holder": {"type": "anyone"}, "permission": "BROWSE_PROJECTS"}]}
    assert browse_groups(anyone, roles.__getitem__) is None
    users_only = {"permissions": [{"holder": {"type": "user"}, "permission": "BROWSE_PROJECTS"}]}
    assert browse_groups(users_only, roles.__getitem__) == frozenset()
    role = {
        "actors": [
            {"type": "atlassian-user-role-actor", "name": "jdoe"},
            {"type": "atlassian-group-role-actor", "name": "x", "actorGroup": {"name": "ops"}},
        ]
    }
    assert role_group_names(role) == ["ops"]


def test_a_restricted_projects_issues_are_hidden_from_readers_outside_it(
    settings: Settings, jira, database
):
    jira.restrict("INT", ["int-team"], role_groups=["int-devs"])
    synced = run_ingest(settings, None)["raw_jira_issues"]
    assert synced["project_access"] == {
        "HD": {"origin": "jira:scheme", "groups": []},
        "INT": {"origin": "jira:scheme", "groups": ["int-devs", "int-team"]},
    }
    access = _access(database)
    integration = {key for key in access if key.startswith("INT-")}
    assert integration and all(key.startswith("INT-") for key in access)  # HD: everyone
    assert access[SECRET] == (["int-devs", "int-team"], "jira:project")

    outside = _console_hits(settings, "kb-agents")
    assert SECRET not in outside and not integration & set(outside)
    assert any(hit.startswith("HD-") for hit in outside)  # the open project stays found
    assert SECRET in _console_hits(settings, "kb-agents,int-devs")[:3]
    assert SECRET in _console_hits(settings, "kb-agents,int-team")[:3]

    # The scheme opens up: no new issue version, the next sync lifts the restriction.
    jira.browse_grants.pop("INT")
    run_ingest(settings, None)
    assert _access(database) == {}
    assert SECRET in _console_hits(settings, "kb-agents")[:3]


def test_without_the_right_to_read_schemes_the_project_stays_open(
    settings: Settings, jira, database
):
    jira.restrict("INT", ["int-team"])
    jira.permissions_denied = True  # a read-only service account: 403 on schemes
    synced = run_ingest(settings, None)["raw_jira_issues"]
    assert synced["project_access"]["INT"] == {"origin": "unavailable", "groups": []}
    assert _access(database) == {}  # readable by everyone, as before permissions
    assert SECRET in _console_hits(settings, "kb-agents")[:3]
