"""The agent console's API and page, on the sample knowledge base and the fake Pyrus."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from bot_api.app import create_app
from kb_core.console import highlight
from kb_core.db import Database
from kb_core.settings import Settings
from kb_fakes.pyrus import BOT_LOGIN, BOT_SECURITY_KEY, PyrusStore, create_pyrus_app
from kb_fakes.server import ServerThread

# Every test here starts from the sample articles, ingested once per session.
pytestmark = pytest.mark.from_samples

CORRECTIONS_FORM = 322
QUESTION = "как изменить шаблон печатной формы"


def test_highlight_marks_words_by_lemma_and_keeps_the_text():
    text = "Касса не печатает чек после обновления; шаблоны — в разделе «Печать»."
    segments = highlight(text, "как быть, не печатают чеки")
    assert "".join(part for part, _ in segments) == text
    marked = [part for part, match in segments if match]
    # The same lemmas the lexical search matches; function words («как», «не») say nothing.
    assert marked == ["печатает", "чек"]
    assert highlight("шаблон", "") == [("шаблон", False)]


@pytest.fixture
def pyrus() -> Iterator[ServerThread]:
    with ServerThread(create_pyrus_app(PyrusStore.from_samples())) as server:
        yield server


@pytest.fixture
def console_settings(kb_settings: Settings, pyrus: ServerThread) -> Settings:
    url = f"{pyrus.url}/v4"
    return kb_settings.with_overrides(
        console={"password": SecretStr("s3cret")},
        pyrus={
            "api_url": url,
            "auth_url": url,
            "login": BOT_LOGIN,
            "security_key": SecretStr(BOT_SECURITY_KEY),
            "corrections_form_id": CORRECTIONS_FORM,
            "task_url": "https://pyrus.example/t#id{id}",
        },
    )


@pytest.fixture
def client(console_settings: Settings, database: Database) -> Iterator[TestClient]:
    with TestClient(create_app(console_settings)) as test_client:
        test_client.auth = ("agent", "s3cret")
        yield test_client


def test_console_needs_the_password_and_refuses_when_none_is_set(
    client: TestClient, kb_settings: Settings
):
    assert client.get("/", auth=("agent", "wrong")).status_code == 401
    anonymous = client.get("/api/search", params={"q": "печать"}, auth=None)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Basic")
    assert client.get("/").status_code == 200
    # Health, metrics and the webhook keep their own rules.
    assert client.get("/healthz", auth=None).status_code == 200
    with TestClient(create_app(kb_settings)) as unconfigured:
        refused = unconfigured.post("/api/answer", json={"question": QUESTION})
        assert refused.status_code == 503 and "KB_CONSOLE_PASSWORD" in refused.text
    open_settings = kb_settings.with_overrides(console={"open": True})
    with TestClient(create_app(open_settings)) as demo:
        assert demo.get("/api/search", params={"q": "печать"}).status_code == 200


def test_the_json_api_is_documented(client: TestClient):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/search", "/api/answer", "/api/feedback"} <= set(paths)
    assert "requestBody" in paths["/api/answer"]["post"]


def test_answer_has_a_draft_sources_highlights_and_score_breakdown(client: TestClient):
    response = client.post("/api/answer", json={"question": QUESTION, "k": 3})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["answer"]["mode"] == "extractive"  # no LLM configured
    assert body["answer"]["draft_reply"]
    assert body["index_version"] >= 1
    top = body["sources"][0]
    assert top["external_id"] == "admin/print-templates.md"
    assert top["explain"]["vector_score"] is not None
    assert top["explain"]["lexical_score"] is not None
    assert any(seg["match"] for seg in top["highlighted"])
    assert "".join(seg["text"] for seg in top["highlighted"]) == top["snippet"]
    assert set(body["answer"]["cited"]) <= {s["doc_id"] for s in body["sources"]}


def test_search_settings_change_what_comes_back(client: TestClient):
    lexical = client.post("/api/answer", json={"question": QUESTION, "mode": "lexical"}).json()
    assert all(s["explain"]["vector_score"] is None for s in lexical["sources"])
    vector = client.get("/api/search", params={"q": QUESTION, "mode": "vector", "k": 2}).json()
    assert len(vector) == 2 and all(h["explain"]["lexical_score"] is None for h in vector)
    strict = client.post("/api/answer", json={"question": QUESTION, "min_score": 50.0}).json()
    assert strict == {**strict, "answer": None, "sources": []}
    missing = client.post("/api/answer", json={"question": QUESTION, "version": 999})
    assert missing.status_code == 404 and "999" in missing.json()["detail"]
    assert client.post("/api/answer", json={"question": ""}).status_code == 422


def test_page_renders_answer_sources_and_escapes_input(client: TestClient):
    # As the form sends it: untouched optional fields arrive empty.
    form = {"q": QUESTION, "mode": "lexical", "min_score": "", "k": "5", "version": ""}
    page = client.get("/", params=form)
    assert page.status_code == 200
    html = page.text
    assert "<mark>" in html and 'id="sources"' in html
    assert 'data-mode="lexical"' in html
    assert "Печатные формы" in html or "печатн" in html.lower()
    assert client.get("/", params={**form, "version": "abc"}).status_code == 422
    hostile = client.get("/", params={"q": '<script>alert("x")</script> печать'}).text
    assert '<script>alert("x")' not in hostile and "&lt;script&gt;" in hostile


def _created(pyrus: ServerThread) -> list[dict[str, Any]]:
    answer = httpx.get(f"{pyrus.url}/_admin/created")
    answer.raise_for_status()
    return list(answer.json())


def test_wrong_answer_with_correction_files_a_task_and_stores_no_pii(
    client: TestClient, pyrus: ServerThread, database: Database
):
    question = "клиент Иванов Пётр, телефон +7 912 345-67-89: не печатается чек"
    correction = "Перезапустите службу печати и переустановите драйвер кассы"
    helpful = client.post("/api/feedback", json={"verdict": "helpful", "question": QUESTION})
    assert helpful.status_code == 200 and helpful.json()["correction_task_id"] is None
    assert _created(pyrus) == []
    wrong = client.post(
        "/api/feedback",
        json={
            "verdict": "wrong",
            "question": question,
            "draft": "Проверьте бумагу.",
            "correction": correction,
            "answer_mode": "extractive",
            "index_version": 1,
            "source_documents": [1, 2],
        },
    )
    assert wrong.status_code == 200, wrong.text
    body = wrong.json()
    assert body["correction_task_id"] and body["correction_url"].endswith(
        str(body["correction_task_id"])
    )
    assert body["correction_url"] in body["message"]
    (created,) = _created(pyrus)
    assert correction in str(created)
    with database.connection() as conn:
        rows = conn.execute(
            "SELECT engineer, verdict, question, correction, correction_task_id, source_documents"
            " FROM console_feedback ORDER BY id"
        ).fetchall()
    assert [row[1] for row in rows] == ["helpful", "wrong"]
    engineer, _, stored_question, stored_correction, task_id, sources = rows[1]
    assert engineer == "agent" and task_id == body["correction_task_id"] and sources == [1, 2]
    assert "Иванов" not in stored_question and "912" not in stored_question
    assert "печатается чек" in stored_question and stored_correction == correction
