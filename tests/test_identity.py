"""Identities and roles of the console and its API, with a fake OpenID Connect provider
issuing real RS256 tokens, and the audit log they leave."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from bot_api.app import create_app
from kb_core.console.identity import AuthError, OidcVerifier, Principal, Role, RoleMapping
from kb_core.db import Database
from kb_core.settings import Settings
from kb_fakes.identity import FakeIdentityProvider, create_identity_app
from kb_fakes.pyrus import BOT_LOGIN, BOT_SECURITY_KEY, PyrusStore, create_pyrus_app
from kb_fakes.server import ServerThread

# Every test here starts from the sample articles, ingested once per session.
pytestmark = pytest.mark.from_samples

CORRECTIONS_FORM = 322
# A question with personal data in it: the audit log must keep neither.
QUESTION = "как изменить шаблон печатной формы, клиент Иван Петров, +7 912 345-67-89"


@pytest.fixture(scope="module")
def idp() -> Iterator[FakeIdentityProvider]:
    provider = FakeIdentityProvider()
    provider.add_user("anna.agent", "pw-a", ["kb-agents"])
    provider.add_user("oleg.owner", "pw-o", ["kb-owners"])
    provider.add_user("stranger", "pw-s", ["marketing"])
    with ServerThread(create_identity_app(provider)) as server:
        provider.issuer = f"{server.url}/realms/kb"
        yield provider


@pytest.fixture
def pyrus() -> Iterator[tuple[ServerThread, PyrusStore]]:
    store = PyrusStore.from_samples()
    with ServerThread(create_pyrus_app(store)) as server:
        yield server, store


@pytest.fixture
def oidc_settings(
    kb_settings: Settings,
    idp: FakeIdentityProvider,
    pyrus: tuple[ServerThread, PyrusStore],
    tmp_path: Path,
) -> Settings:
    url = f"{pyrus[0].url}/v4"
    # Knowledge owners edit the synonym dictionary: a private copy of it.
    synonyms = tmp_path / "synonyms.yaml"
    shutil.copy(kb_settings.search.synonyms_path, synonyms)
    return kb_settings.with_overrides(
        console={"auth": "oidc", "audit_key": SecretStr("audit-key-for-tests")},
        oidc={"issuer": idp.issuer, "audience": idp.audience},
        pyrus={
            "api_url": url,
            "auth_url": url,
            "login": BOT_LOGIN,
            "security_key": SecretStr(BOT_SECURITY_KEY),
            "corrections_form_id": CORRECTIONS_FORM,
        },
        search={"synonyms_path": synonyms},
    )


@pytest.fixture
def client(oidc_settings: Settings, database: Database) -> Iterator[TestClient]:
    with TestClient(create_app(oidc_settings)) as test_client:
        yield test_client


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _login(client: TestClient, idp: FakeIdentityProvider, username: str, password: str) -> str:
    """The password grant at the fake provider's token endpoint, as the demo does."""
    import httpx

    response = httpx.post(
        f"{idp.issuer}/protocol/openid-connect/token",
        data={
            "grant_type": "password",
            "client_id": idp.audience,
            "username": username,
            "password": password,
        },
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def _open_correction(store: PyrusStore) -> int:
    task = store.create_form_task(
        {"id": 1, "first_name": "Бот"},
        {
            "form_id": CORRECTIONS_FORM,
            "fields": [
                {"id": 1, "value": "Как изменить шаблон?"},
                {"id": 3, "value": "Настройки → Печатные формы."},
            ],
        },
    )
    return int(task["id"])


def _decision(store: PyrusStore, task_id: int) -> str:
    from kb_core.sources.pyrus_tasks import field_text

    return field_text(store.tasks[task_id], "u_decision")


def test_roles_come_from_groups_and_include_the_lower_ones():
    mapping = RoleMapping(
        agent=frozenset({"kb-agents"}),
        knowledge_owner=frozenset({"kb-owners"}),
        administrator=frozenset({"kb-admins"}),
    )
    assert mapping.role(["kb-agents"]) is Role.AGENT
    assert mapping.role(["kb-agents", "kb-owners"]) is Role.KNOWLEDGE_OWNER
    assert mapping.role(["marketing"]) is None
    owner = Principal("s", groups=frozenset({"kb-owners"}), role=Role.KNOWLEDGE_OWNER)
    assert owner.may(Role.AGENT) and owner.may(Role.KNOWLEDGE_OWNER)
    assert not owner.may(Role.ADMINISTRATOR)
    assert owner.roles == ["agent", "knowledge_owner"]


def test_unsigned_forged_expired_and_foreign_tokens_are_refused(
    client: TestClient, idp: FakeIdentityProvider
):
    import jwt

    assert client.get("/api/search", params={"q": "печать"}).status_code == 401
    claims = {
        "iss": idp.issuer,
        "aud": idp.audience,
        "sub": "x",
        "groups": ["kb-admins"],
        "iat": int(time.time()),
        "exp": int(time.time()) + 300,
    }
    unsigned = jwt.encode(claims, None, algorithm="none")
    refused = client.get("/api/search", params={"q": "печать"}, headers=_bearer(unsigned))
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Bearer")
    forged = jwt.encode(claims, "a-guessed-secret", algorithm="HS256")
    assert client.get("/api/me", headers=_bearer(forged)).status_code == 401
    expired = idp.issue(sub="x", groups=["kb-agents"], exp=int(time.time()) - 3600)
    assert client.get("/api/me", headers=_bearer(expired)).status_code == 401
    foreign = idp.issue(sub="x", groups=["kb-agents"], aud="another-app")
    assert client.get("/api/me", headers=_bearer(foreign)).status_code == 401
    # the same claims, properly signed, pass
    good = idp.issue(sub="x", groups=["kb-agents"])
    assert client.get("/api/me", headers=_bearer(good)).json()["roles"] == ["agent"]


def test_a_rotated_signing_key_needs_no_restart(idp: FakeIdentityProvider):
    # Discovery from the issuer, keys from the provider's JWKS over HTTP.
    verifier = OidcVerifier(idp.issuer, idp.audience, refetch_cooldown_s=0)
    mapping = RoleMapping(agent=frozenset({"kb-agents"}))
    before = idp.issue(sub="r", groups=["kb-agents"])
    assert verifier.principal(before, mapping).role is Role.AGENT
    idp.rotate()
    after = idp.issue(sub="r", groups=["kb-agents"])
    assert verifier.principal(after, mapping).subject == "r"
    # a key the provider never published
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(
        {"iss": idp.issuer, "aud": idp.audience, "sub": "r", "iat": 1, "exp": 2**31},
        stranger,
        algorithm="RS256",
        headers={"kid": "not-published"},
    )
    with pytest.raises(AuthError, match="signing key"):
        verifier.claims(forged)


def test_an_agent_cannot_approve_corrections_and_a_knowledge_owner_can(
    client: TestClient, idp: FakeIdentityProvider, pyrus: tuple[ServerThread, PyrusStore]
):
    store = pyrus[1]
    task_id = _open_correction(store)
    agent = _bearer(_login(client, idp, "anna.agent", "pw-a"))
    owner = _bearer(_login(client, idp, "oleg.owner", "pw-o"))
    refused = client.post(f"/api/corrections/{task_id}/approve", headers=agent)
    assert refused.status_code == 403 and "knowledge_owner" in refused.text
    assert _decision(store, task_id) == ""
    approved = client.post(f"/api/corrections/{task_id}/approve", headers=owner)
    assert approved.status_code == 200, approved.text
    assert _decision(store, task_id) == "Одобрено"
    # a task of another form is not a correction to approve
    assert client.post("/api/corrections/1/approve", headers=owner).status_code == 404


def test_a_user_without_a_role_is_refused_and_the_page_shows_the_role(
    client: TestClient, idp: FakeIdentityProvider
):
    stranger = _bearer(_login(client, idp, "stranger", "pw-s"))
    assert client.get("/api/search", params={"q": "печать"}, headers=stranger).status_code == 403
    assert client.get("/api/me", headers=stranger).json()["roles"] == []
    owner = _bearer(_login(client, idp, "oleg.owner", "pw-o"))
    page = client.get("/", headers=owner)
    assert page.status_code == 200
    assert 'data-roles="agent knowledge_owner"' in page.text
    assert "владелец базы знаний" in page.text
    assert client.get("/api/audit", headers=owner).status_code == 403


def test_the_audit_log_records_each_call_without_personal_data(
    client: TestClient, idp: FakeIdentityProvider, database: Database
):
    user = idp.users["anna.agent"]
    agent = _bearer(_login(client, idp, "anna.agent", "pw-a"))
    assert client.get("/api/search", params={"q": QUESTION}, headers=agent).status_code == 200
    answered = client.post("/api/answer", json={"question": QUESTION}, headers=agent)
    assert answered.status_code == 200
    feedback = client.post(
        "/api/feedback", json={"verdict": "helpful", "question": QUESTION}, headers=agent
    )
    assert feedback.status_code == 200
    with database.connection() as conn:
        rows = conn.execute(
            "SELECT subject, roles, action, query, status FROM audit_log ORDER BY id"
        ).fetchall()
    assert [(r[2], r[4]) for r in rows] == [("search", 200), ("answer", 200), ("feedback", 200)]
    subjects = {r[0] for r in rows}
    assert len(subjects) == 1  # one user, one stable pseudonym
    (subject,) = subjects
    assert user.subject not in subject and "anna" not in subject
    for _, roles, _, query, _ in rows:
        assert roles == ["agent"]
        assert "шаблон" in query  # the question is kept ...
        assert "Петров" not in query and "345-67-89" not in query  # ... without the PII
    with database.connection() as conn:
        dump = str(conn.execute("SELECT * FROM audit_log").fetchall())
    assert "anna" not in dump and user.subject not in dump


def test_header_mode_trusts_the_authenticating_proxy(oidc_settings: Settings, database: Database):
    settings = oidc_settings.with_overrides(console={"auth": "header"})
    with TestClient(create_app(settings)) as client:
        assert client.get("/api/me").status_code == 401
        me = client.get(
            "/api/me",
            headers={"X-Forwarded-User": "oleg", "X-Forwarded-Groups": "kb-owners,staff"},
        ).json()
        assert me["roles"] == ["agent", "knowledge_owner"] and me["name"] == "oleg"


def test_an_agent_cannot_edit_synonyms_and_a_knowledge_owner_can(
    client: TestClient, idp: FakeIdentityProvider, oidc_settings: Settings
):
    agent = _bearer(_login(client, idp, "anna.agent", "pw-a"))
    owner = _bearer(_login(client, idp, "oleg.owner", "pw-o"))
    groups = [["впн", "vpn"], ["двухфакторная аутентификация", "2fa"], ["касса", "ккт"]]
    assert client.get("/api/synonyms", headers=agent).status_code == 403
    refused = client.put("/api/synonyms", json={"groups": groups}, headers=agent)
    assert refused.status_code == 403 and "knowledge_owner" in refused.text
    before = oidc_settings.search.synonyms_path.read_text(encoding="utf-8")
    assert ["pyrus", "пайрус", "пирус"] in client.get("/api/synonyms", headers=owner).json()[
        "groups"
    ]
    saved = client.put("/api/synonyms", json={"groups": groups}, headers=owner)
    assert saved.status_code == 200, saved.text
    assert saved.json()["groups"] == groups
    assert client.get("/api/synonyms", headers=owner).json()["groups"] == groups
    text = oidc_settings.search.synonyms_path.read_text(encoding="utf-8")
    assert text != before and "- [касса, ккт]" in text
    assert text.startswith(before.split("\n", 1)[0])  # the editors' header is kept
    # the next search expands with the saved dictionary
    found = client.get(
        "/api/search", params={"q": "ккт не печатает", "expand": True}, headers=agent
    )
    assert found.status_code == 200
    assert any("касса" in hit["explain"]["query_expansion"] for hit in found.json())
    # a dictionary the loader would refuse is refused, and the file stays as it was
    clash = client.put(
        "/api/synonyms", json={"groups": [["впн", "vpn"], ["vpn", "ви пи эн"]]}, headers=owner
    )
    assert clash.status_code == 422 and "vpn" in clash.json()["detail"]
    assert client.get("/api/synonyms", headers=owner).json()["groups"] == groups


def test_the_page_offers_the_knowledge_owners_tools_by_role(
    client: TestClient, idp: FakeIdentityProvider
):
    agent = _bearer(_login(client, idp, "anna.agent", "pw-a"))
    owner = _bearer(_login(client, idp, "oleg.owner", "pw-o"))
    agent_page = client.get("/", headers=agent)
    assert agent_page.status_code == 200
    assert 'id="scope"' in agent_page.text  # every agent may narrow a search
    assert 'id="owner-tools"' not in agent_page.text
    assert 'id="synonyms-text"' not in agent_page.text
    owner_page = client.get("/", headers=owner)
    assert 'id="owner-tools"' in owner_page.text and 'id="approve"' in owner_page.text
    assert "пайрус" in owner_page.text  # the dictionary, ready to edit


def test_refused_requests_are_audited_without_personal_data(
    client: TestClient, idp: FakeIdentityProvider, database: Database
):
    agent = _bearer(_login(client, idp, "anna.agent", "pw-a"))
    assert client.post("/api/corrections/5/approve", headers=agent).status_code == 403
    assert client.get("/api/search", params={"q": QUESTION}).status_code == 401
    forged = client.get("/api/search", params={"q": QUESTION}, headers=_bearer("not-a-token"))
    assert forged.status_code == 401
    with database.connection() as conn:
        rows = conn.execute(
            "SELECT subject, roles, action, query, status, detail FROM audit_log ORDER BY id"
        ).fetchall()
        dump = str(conn.execute("SELECT * FROM audit_log").fetchall())
    assert [(r[2], r[4]) for r in rows] == [("refused", 403), ("refused", 401), ("refused", 401)]
    forbidden, anonymous, _ = rows
    assert forbidden[0].startswith("u-") and forbidden[1] == ["agent"]
    assert forbidden[5] == {"route": "/api/corrections/{task_id}/approve", "method": "POST"}
    assert anonymous[0] == "anonymous" and anonymous[1] == []
    assert anonymous[5] == {"route": "/api/search", "method": "GET"}
    assert all(r[3] is None for r in rows)  # no query: it may hold personal data
    assert "anna" not in dump and "Петров" not in dump and "not-a-token" not in dump
