"""Who may read a Jira project's issues: its permission scheme's "Browse projects" grants.

Jira decides who sees a project's issues by the ``BROWSE_PROJECTS`` permission (``BROWSE``
on old Server versions) of the permission scheme assigned to the project. Its grants
name holders: a group (readable by that group), a project role (by the groups among the
role's actors), ``anyone`` or ``applicationRole`` (every user of Jira: no restriction
here), or single people and issue fields (reporter, assignee, a user picker). People are
not groups, so a grant to them lets no console reader in: the filter fails closed.

Reading a scheme needs project administration in Jira, which a read-only service
account may lack ("where available"): then the project stays readable by everyone, as
before permissions were synced, and the sync's metadata (``project_access``) says which
projects that is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg

from kb_core.index.access import sync_access
from kb_core.sources.http import SourceHTTPError
from kb_core.sources.jira import SOURCE_NAME, JiraClient

BROWSE_PERMISSIONS = frozenset({"BROWSE_PROJECTS", "BROWSE"})
EVERYONE_HOLDERS = frozenset({"anyone", "applicationRole"})


@dataclass(frozen=True)
class ProjectAccess:
    groups: frozenset[str] | None  # None: every reader
    origin: str  # "jira:scheme" or "unavailable"


def browse_groups(
    scheme: Mapping[str, Any], role_groups: Callable[[str], Iterable[str]]
) -> frozenset[str] | None:
    """The groups a permission scheme lets browse the project; None: everyone."""
    groups: set[str] = set()
    for grant in scheme.get("permissions") or []:
        if grant.get("permission") not in BROWSE_PERMISSIONS:
            continue
        holder = grant.get("holder") or {}
        kind = holder.get("type")
        if kind in EVERYONE_HOLDERS:
            return None
        if kind == "group":
            # Cloud names the group under "group" with expand=group; "parameter" is the
            # name on Server/DC and (deprecated) on Cloud.
            name = (holder.get("group") or {}).get("name") or holder.get("parameter")
            if name:
                groups.add(str(name))
        elif kind == "projectRole":
            role = holder.get("parameter") or holder.get("value")
            if role:
                groups.update(role_groups(str(role)))
    return frozenset(groups)


def role_group_names(role: Mapping[str, Any]) -> list[str]:
    """The groups among a project role's actors (users are not groups)."""
    names = []
    for actor in role.get("actors") or []:
        if actor.get("type") == "atlassian-group-role-actor":
            name = (actor.get("actorGroup") or {}).get("name") or actor.get("name")
            if name:
                names.append(str(name))
    return names


def project_access(client: JiraClient, projects: Iterable[str]) -> dict[str, ProjectAccess]:
    """Each project's read access: its permission scheme's, or everyone when the
    account may not read the scheme."""
    out: dict[str, ProjectAccess] = {}
    for project in projects:

        def role_groups(role: str, project: str = project) -> list[str]:
            return role_group_names(client.project_role(project, role))

        try:
            groups = browse_groups(client.permission_scheme(project), role_groups)
        except SourceHTTPError as exc:
            if exc.status not in (401, 403, 404):
                raise
            out[project] = ProjectAccess(None, "unavailable")
            continue
        out[project] = ProjectAccess(groups, "jira:scheme")
    return out


def apply_project_access(conn: psycopg.Connection[Any], access: Mapping[str, ProjectAccess]) -> int:
    """Set every live Jira document's readers from its project's access; returns how
    many rows changed. Applied to all of them, not only those synced now, so a changed
    scheme reaches issues indexed long ago."""
    rows = conn.execute(
        "SELECT external_id, metadata->>'project' FROM documents "
        "WHERE source = %s AND deleted_at IS NULL",
        (SOURCE_NAME,),
    ).fetchall()
    documents: dict[str, frozenset[str] | None] = {}
    for external_id, project in rows:
        item = access.get(str(project))
        documents[str(external_id)] = item.groups if item is not None else None
    return sync_access(conn, SOURCE_NAME, documents, origin="jira:project")
