import pytest
from fastapi.testclient import TestClient

from bot_api.app import create_app
from kb_core.db import Database
from kb_core.settings import Settings

# Every test here starts from the sample articles, ingested once per session.
pytestmark = pytest.mark.from_samples


@pytest.fixture
def client(kb_settings: Settings, database: Database):
    with TestClient(create_app(kb_settings.with_overrides(console={"open": True}))) as test_client:
        yield test_client


def test_health_and_readiness(client: TestClient):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["indexed_chunks"] > 0


def test_search_endpoint(client: TestClient):
    response = client.get("/api/search", params={"q": "шаблон печатной формы", "k": 2})
    assert response.status_code == 200
    hits = response.json()
    assert len(hits) == 2
    assert hits[0]["external_id"] == "admin/print-templates.md"


def test_search_rejects_bad_input_with_a_reason(client: TestClient):
    response = client.get("/api/search", params={"q": "", "k": 2})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "q"]
    assert client.get("/api/search", params={"q": "x", "k": 500}).status_code == 422


def test_access_log_drops_query_strings(client: TestClient):
    import logging

    from bot_api.log_privacy import DropQueryStrings

    assert any(isinstance(f, DropQueryStrings) for f in logging.getLogger("uvicorn.access").filters)
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/api/search?q=Смирнова+Анна+%2B79123456789", "1.1", 200),
        None,
    )
    DropQueryStrings().filter(record)
    message = record.getMessage()
    assert "/api/search" in message and "Смирнова" not in message and "q=" not in message
