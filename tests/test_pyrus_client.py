"""The Pyrus client and ticket reading, against the fake Pyrus over real HTTP."""

import hashlib
import hmac
import json

import httpx
import pytest

from kb_core.sources.http import RetryPolicy, SourceHTTPError
from kb_core.sources.pyrus import PyrusClient
from kb_core.sources.pyrus_tasks import TicketDocumentBuilder, comment_history
from kb_fakes.pyrus import PyrusStore, create_pyrus_app, sign
from kb_fakes.server import ServerThread

FAST = RetryPolicy(attempts=4, backoff_initial_s=0.01, backoff_max_s=0.2)
CUSTOMER = {"id": 5001, "first_name": "Клиент", "last_name": "Тестовый", "type": "user"}
AGENT = {"id": 1101, "first_name": "Агент", "last_name": "Первый", "type": "user"}
BOT = {"id": 9000, "first_name": "Ассистент", "type": "bot"}


def _ticket(task_id: int, closed: bool = True) -> dict:
    comments = [
        {
            "id": task_id * 100 + 1,
            "create_date": "2026-06-01T08:00:00Z",
            "author": CUSTOMER,
            "text": "Не приходят письма",
            "channel": {"type": "email"},
        },
        {
            "id": task_id * 100 + 2,
            "create_date": "2026-06-01T08:05:00Z",
            "author": BOT,
            "text": "Черновик ответа ассистента: проверьте спам",
        },
        {
            "id": task_id * 100 + 3,
            "create_date": "2026-06-01T09:00:00Z",
            "author": AGENT,
            "text": "внутреннее: смотрю логи",
        },
        {
            "id": task_id * 100 + 4,
            "create_date": "2026-06-01T09:10:00Z",
            "author": AGENT,
            "text": "Здравствуйте! Включите канал почты в профиле.",
            "channel": {"type": "email"},
        },
        {
            "id": task_id * 100 + 5,
            "create_date": "2026-06-01T09:20:00Z",
            "author": AGENT,
            "text": "Здравствуйте! Включите канал «Электронная почта» в профиле и режим «Сразу».",
            "edit_comment_id": task_id * 100 + 4,
        },
        {
            "id": task_id * 100 + 6,
            "create_date": "2026-06-01T09:30:00Z",
            "author": AGENT,
            "text": "Ошибочный ответ не тому клиенту",
            "channel": {"type": "email"},
        },
        {
            "id": task_id * 100 + 7,
            "create_date": "2026-06-01T09:31:00Z",
            "author": AGENT,
            "delete_comment_id": task_id * 100 + 6,
        },
        {
            "id": task_id * 100 + 8,
            "create_date": "2026-06-01T10:00:00Z",
            "author": CUSTOMER,
            "text": "Спасибо, заработало",
            "channel": {"type": "email"},
        },
    ]
    task = {
        "id": task_id,
        "form_id": 321,
        "create_date": "2026-06-01T08:00:00Z",
        "last_modified_date": f"2026-06-0{1 + task_id % 5}T10:00:00Z",
        "is_closed": closed,
        "author": CUSTOMER,
        "fields": [
            {"id": 1, "type": "text", "code": "u_subject", "value": "Нет писем"},
            {
                "id": 2,
                "type": "text",
                "code": "u_description",
                "value": "Письма о задачах не приходят",
            },
            {
                "id": 3,
                "type": "catalog",
                "code": "u_category",
                "value": {"item_id": 40012, "values": ["Уведомления", "…"]},
            },
            {"id": 7, "type": "checkmark", "code": "u_solution_confirmed", "value": "checked"},
        ],
        "comments": comments,
    }
    if closed:
        task["close_date"] = "2026-06-01T10:05:00Z"
        comments.append(
            {
                "id": task_id * 100 + 9,
                "create_date": "2026-06-01T10:05:00Z",
                "author": AGENT,
                "text": "",
                "action": "finished",
            }
        )
    return task


@pytest.fixture
def fake():
    store = PyrusStore(
        tasks=[_ticket(200000 + i, closed=i != 3) for i in range(1, 8)],
        forms=[{"id": 321, "name": "Служба поддержки", "fields": []}],
        catalogs=[{"catalog_id": 4001, "catalog_headers": [], "items": []}],
        members=[AGENT, BOT],
    )
    with ServerThread(create_pyrus_app(store, login="bot@x", security_key="key")) as server:
        yield server, store


def _client(server) -> PyrusClient:
    url = f"{server.url}/v4"
    return PyrusClient(login="bot@x", security_key="key", api_url=url, auth_url=url, policy=FAST)


def test_login_and_get_task_with_rate_limit_headers(fake):
    server, _ = fake
    with _client(server) as client:
        task = client.get_task(200001)
        assert task["id"] == 200001 and len(task["comments"]) == 9
        assert client.logins == 1
        assert client.rate_limit is not None and client.rate_limit.limit == 5000
        assert client.rate_limit.remaining is not None and client.rate_limit.remaining < 5000


def test_wrong_key_is_a_clear_error(fake):
    server, _ = fake
    url = f"{server.url}/v4"
    client = PyrusClient(
        login="bot@x", security_key="wrong", api_url=url, auth_url=url, policy=FAST
    )
    with pytest.raises(SourceHTTPError, match="login failed"):
        client.get_task(200001)


def test_expired_token_logs_in_again_transparently(fake):
    server, _ = fake
    with _client(server) as client:
        client.get_task(200001)
        httpx.post(f"{server.url}/_admin/expire-tokens")
        assert client.get_task(200002)["id"] == 200002
        assert client.logins == 2


def test_429_is_retried(fake):
    server, _ = fake
    with _client(server) as client:
        client.get_task(200001)
        httpx.post(
            f"{server.url}/_admin/faults",
            json={"status": 429, "count": 2, "error_code": "too_many_requests"},
        )
        assert client.get_task(200001)["id"] == 200001
        assert client.http.retries == 2


def test_register_pages_by_id(fake):
    server, _ = fake
    with _client(server) as client:
        tasks = list(client.iter_register(321, page_size=3))
    assert [t["id"] for t in tasks] == list(range(200001, 200008))
    assert all("comments" not in t for t in tasks)


def test_register_modified_after(fake):
    server, _ = fake
    with _client(server) as client:
        tasks = list(client.iter_register(321, modified_after="2026-06-04T00:00:00Z"))
    assert {t["last_modified_date"][:10] for t in tasks} <= {"2026-06-04", "2026-06-05"}
    assert tasks


def test_post_internal_comment_is_recorded(fake):
    server, _ = fake
    with _client(server) as client:
        task = client.post_comment(200001, formatted_text="<p>Черновик</p>")
        with pytest.raises(ValueError):
            client.post_comment(200001, text="a", formatted_text="<p>b</p>")
    assert task["comments"][-1]["formatted_text"] == "<p>Черновик</p>"
    posted = httpx.get(f"{server.url}/_admin/comments", params={"task_id": 200001}).json()
    assert len(posted) == 1 and "channel" not in posted[0]["request"]
    assert posted[0]["comment"]["author"]["type"] == "bot"


def test_fake_rejects_text_and_formatted_text_together(fake):
    server, _ = fake
    token = httpx.post(f"{server.url}/v4/auth", json={"login": "bot@x", "security_key": "key"})
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    answer = httpx.post(
        f"{server.url}/v4/tasks/200001/comments",
        headers=headers,
        json={"text": "a", "formatted_text": "<p>b</p>"},
    )
    assert answer.status_code == 400
    assert answer.json()["error_code"] == "both_text_and_formatted_text_specified"


def test_comment_history_applies_edits_and_deletions():
    history = comment_history(_ticket(200001))
    ids = [c.id for c in history]
    assert 20000106 not in ids and 20000107 not in ids  # deleted, and the deleting comment
    assert 20000105 not in ids  # the edit is applied, not a message of its own
    edited = next(c for c in history if c.id == 20000104)
    assert "«Электронная почта»" in edited.text
    assert [c.is_bot() for c in history].count(True) == 1


def test_resolved_ticket_becomes_question_and_resolution():
    document = TicketDocumentBuilder().document(_ticket(200001))
    assert document is not None
    assert document.external_id == "200001" and document.title == "Нет писем"
    body = document.raw_body
    assert "## Вопрос" in body and "Письма о задачах не приходят" in body
    assert "Включите канал «Электронная почта» в профиле" in body  # final, edited reply
    assert "Черновик ответа ассистента" not in body  # bot
    assert "смотрю логи" not in body  # internal note
    assert "Спасибо, заработало" not in body  # the customer's own message
    assert "не тому клиенту" not in body  # deleted
    assert document.metadata["category"] == "Уведомления"
    assert document.metadata["solution_confirmed"] is True
    assert TicketDocumentBuilder().document(_ticket(200003, closed=False)) is None


def test_configured_bot_ids_count_as_bots():
    task = _ticket(200001)
    task["comments"][3]["author"] = {"id": 777, "type": "user"}  # a bot account typed as user
    as_user = TicketDocumentBuilder().document(task)
    assert as_user is not None and "Электронная почта" in as_user.raw_body
    # Once 777 is known as a bot, its reply is not a resolution: nothing left to learn from.
    assert TicketDocumentBuilder(bot_ids=frozenset({777})).document(task) is None


def test_webhook_is_signed_like_pyrus(fake):
    server, _ = fake
    received = {}

    from fastapi import FastAPI, Request

    sink = FastAPI()

    @sink.post("/hook")
    async def hook(request: Request) -> dict:
        received["body"] = await request.body()
        received["headers"] = dict(request.headers)
        return {}

    with ServerThread(sink) as target:
        answer = httpx.post(
            f"{server.url}/_admin/webhook", json={"task_id": 200001, "url": f"{target.url}/hook"}
        ).json()
    assert answer["status"] == 200
    raw = received["body"]
    expected = hmac.new(b"key", raw, hashlib.sha1).hexdigest()
    assert received["headers"]["x-pyrus-sig"] == expected == sign(raw, "key")
    assert received["headers"]["user-agent"] == "Pyrus-Bot-4"
    payload = json.loads(raw)
    assert payload["task_id"] == 200001 and payload["user_id"] == 9000
    assert isinstance(payload["bot_settings"], str)
