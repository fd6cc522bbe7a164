"""The LLM path as the seed describes it and the optional answer-side steps, against the
fakes over real HTTP: prompt contents (dates, confirmation, priority and conflict rules),
three attempts then the extractive fallback, LLM reranking and query optimisation as the
fake dictates, the cross-encoder endpoint in both API shapes and its errors degrading to
no reranking with a warning; the answer gate and the per-case table. No database."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr

from evals.cases import CaseThresholds, case_row
from evals.harness import GateConfig, decide_gate
from kb_assets.evaluation import gate_config
from kb_core.generation import ChatClient, categories_from_settings, generate
from kb_core.generation.lint import lint_draft
from kb_core.generation.prompt import SYSTEM_PROMPT, build_prompt
from kb_core.generation.rerank import (
    AnswerSteps,
    CrossEncoderReranker,
    llm_rerank,
    optimize_query,
)
from kb_core.models import SearchHit
from kb_core.settings import Settings
from kb_fakes.llm import FAKE_LLM_KEY, LLMServerConfig, create_llm_app
from kb_fakes.reranker import FAKE_RERANKER_KEY, RerankerConfig, create_reranker_app
from kb_fakes.server import ServerThread

CATEGORIES = categories_from_settings(Settings.defaults())
QUESTION = "Не приходят письма о новых задачах на почту"


def hit(
    n: int,
    title: str,
    text: str,
    *,
    source: str = "confluence",
    updated: datetime | None = None,
    confirmed: bool = False,
) -> SearchHit:
    return SearchHit(
        document_id=n,
        chunk_id=100 + n,
        title=title,
        score=1.0 - n / 10,
        snippet=text[:300],
        heading_path=(title,),
        url=None,
        source=source,
        external_id=str(n),
        text=text,
        updated_at=updated,
        solution_confirmed=confirmed,
    )


HITS = [
    hit(
        1,
        "Экспорт в Excel",
        "Реестр выгружается в Excel кнопкой «Экспорт».",
        updated=datetime(2024, 1, 5, tzinfo=UTC),
    ),
    hit(
        2,
        "Письма не приходят",
        "## Решение\n\nВключите письма о новых задачах в профиле.",
        source="pyrus",
        updated=datetime(2026, 3, 2, tzinfo=UTC),
        confirmed=True,
    ),
    hit(
        3,
        "Почта о задачах",
        "Письма о новых задачах приходят участникам маршрута.",
        source="correction",
    ),
    hit(4, "Старая заявка", "## Решение\n\nПерезапустите почту.", source="pyrus"),
]


@pytest.fixture(scope="module")
def llm_server() -> Iterator[tuple[ServerThread, Any]]:
    app = create_llm_app(LLMServerConfig())
    with ServerThread(app) as server:
        yield server, app


@pytest.fixture
def llm(llm_server: tuple[ServerThread, Any]) -> Iterator[tuple[ChatClient, Any, str]]:
    server, app = llm_server
    httpx.delete(f"{server.url}/_admin/faults").raise_for_status()
    httpx.delete(f"{server.url}/_admin/requests").raise_for_status()
    app.state.config.rerank_order = None
    app.state.config.optimized_query = None
    settings = Settings.defaults(llm={"url": f"{server.url}/v1", "api_key": FAKE_LLM_KEY})
    waits: list[float] = []
    client = ChatClient.from_settings(
        settings, backoff_initial_s=0.01, backoff_max_s=0.05, sleep=waits.append
    )
    assert client is not None
    with client:
        yield client, app, server.url


def statuses(app: Any) -> list[int]:
    return [int(e["status"]) for e in app.state.log.entries]


# -- the prompt -------------------------------------------------------------------------------
def test_passages_carry_kind_date_confirmation_and_priority() -> None:
    prompt = build_prompt(QUESTION, HITS, CATEGORIES)
    user = prompt.messages[1]["content"]
    assert 'kind="статья" title="Экспорт в Excel" date="2024-01-05" priority="3"' in user
    assert 'kind="заявка" title="Письма не приходят" date="2026-03-02" ' in user
    assert 'status="решение подтверждено" priority="2"' in user
    assert 'kind="уточнение" title="Почта о задачах" date="неизвестна" priority="1"' in user
    assert 'status="решение не подтверждено" priority="4"' in user


def test_the_system_prompt_states_priority_conflicts_and_outdated_fragments() -> None:
    assert "Приоритет источников" in SYSTEM_PROMPT
    assert "1 — уточнение" in SYSTEM_PROMPT and "4 — прочие заявки" in SYSTEM_PROMPT
    assert "противоречат" in SYSTEM_PROMPT and "более новому" in SYSTEM_PROMPT
    assert "Устаревшие фрагменты" in SYSTEM_PROMPT and "игнорируй" in SYSTEM_PROMPT
    assert "ТОЛЬКО на основе фрагментов" in SYSTEM_PROMPT
    assert "<PERSON>" in SYSTEM_PROMPT  # never in the draft


def test_three_attempts_in_all_then_the_extractive_answer(llm: tuple[ChatClient, Any, str]) -> None:
    client, app, url = llm
    assert Settings.defaults().llm.max_retries == 3
    httpx.post(f"{url}/_admin/faults", json={"status": 503, "count": 10}).raise_for_status()
    result = generate(QUESTION, HITS, CATEGORIES, client)
    assert statuses(app) == [503, 503, 503]
    assert result.mode == "extractive" and result.fallback_reason == "llm_error"
    assert lint_draft(result.answer.draft_reply) == []
    body = app.state.log.entries[0]
    assert '"temperature": 0' in body["raw"] or '"temperature":0' in body["raw"]
    assert client.timeout_s == 300.0


# -- LLM reranking and query optimisation -----------------------------------------------------
def test_llm_rerank_follows_the_fake(llm: tuple[ChatClient, Any, str]) -> None:
    client, app, _ = llm
    app.state.config.rerank_order = ["P3", "P1"]
    ranked = llm_rerank(client, QUESTION, HITS, top_n=4)
    assert [h.document_id for h in ranked] == [3, 1, 2, 4]
    app.state.config.rerank_order = None  # by word overlap with the ticket
    ranked = llm_rerank(client, QUESTION, HITS, top_n=4)
    assert ranked[0].document_id in (2, 3) and ranked[-1].document_id in (1, 4)


def test_opt_query_uses_the_fakes_query(llm: tuple[ChatClient, Any, str]) -> None:
    client, app, _ = llm
    app.state.config.optimized_query = "уведомления почта новые задачи"
    assert optimize_query(client, QUESTION) == "уведомления почта новые задачи"
    steps = AnswerSteps(opt_query=True)
    assert steps.query(client, QUESTION) == "уведомления почта новые задачи"
    assert AnswerSteps().query(client, QUESTION) == QUESTION  # off by default


def test_llm_steps_degrade_to_the_original(
    llm: tuple[ChatClient, Any, str], caplog: pytest.LogCaptureFixture
) -> None:
    client, _, url = llm
    httpx.post(f"{url}/_admin/faults", json={"output": "not_json", "count": 2}).raise_for_status()
    with caplog.at_level(logging.WARNING):
        assert llm_rerank(client, QUESTION, HITS) == HITS
        assert optimize_query(client, QUESTION) == QUESTION
    assert "LLM reranking failed" in caplog.text
    assert "query optimisation failed" in caplog.text


# -- the cross-encoder endpoint ---------------------------------------------------------------
@pytest.fixture(scope="module")
def reranker_server() -> Iterator[tuple[ServerThread, Any]]:
    app = create_reranker_app(RerankerConfig(scores={"Письма о новых": 0.9, "## Решение": 0.5}))
    with ServerThread(app) as server:
        yield server, app


def _reranker_calls(outcome: str) -> float:
    labels = {"service": "reranker", "outcome": outcome}
    return REGISTRY.get_sample_value("kb_external_call_seconds_count", labels) or 0.0


@pytest.mark.parametrize("api", ["cohere", "tei"])
def test_cross_encoder_reorders_in_both_api_shapes(
    reranker_server: tuple[ServerThread, Any], api: str
) -> None:
    server, app = reranker_server
    settings = Settings.defaults(
        reranker={"url": server.url, "api": api, "api_key": FAKE_RERANKER_KEY}
    )
    reranker = CrossEncoderReranker.from_settings(settings)
    assert reranker is not None
    calls = _reranker_calls("ok")
    ranked = reranker.rerank(QUESTION, HITS, top_n=4)
    assert _reranker_calls("ok") == calls + 1  # its latency is on /metrics
    assert ranked[0].document_id == 3
    assert {h.document_id for h in ranked[1:3]} == {2, 4}
    last = app.state.requests[-1]
    assert last["path"] == ("/rerank" if api == "tei" else "/v1/rerank")
    assert ("texts" if api == "tei" else "documents") in last["body"]


@pytest.mark.parametrize(
    ("fault", "key", "shape"),
    [
        ({"status": 503, "count": 1}, FAKE_RERANKER_KEY, "cohere"),
        (None, "wrong-key", "cohere"),
        (None, FAKE_RERANKER_KEY, "tei-on-cohere"),
    ],
)
def test_reranker_errors_degrade_to_no_reranking_with_a_warning(
    reranker_server: tuple[ServerThread, Any],
    caplog: pytest.LogCaptureFixture,
    fault: dict[str, Any] | None,
    key: str,
    shape: str,
) -> None:
    server, _ = reranker_server
    if fault:
        httpx.post(f"{server.url}/_admin/faults", json=fault).raise_for_status()
    # A TEI client pointed at the Cohere path gets an answer of the other shape.
    url = f"{server.url}/v1/rerank" if shape == "tei-on-cohere" else server.url
    reranker = CrossEncoderReranker(
        url, api="tei" if shape == "tei-on-cohere" else "cohere", api_key=SecretStr(key)
    )
    errors = _reranker_calls("error")
    with caplog.at_level(logging.WARNING):
        assert reranker.rerank(QUESTION, HITS) == HITS
    assert "cross-encoder reranking failed" in caplog.text
    assert key not in caplog.text
    if shape != "tei-on-cohere":  # an answer of the wrong shape is a 200 the parser refuses
        assert _reranker_calls("error") == errors + 1


def test_unreachable_reranker_degrades(caplog: pytest.LogCaptureFixture) -> None:
    reranker = CrossEncoderReranker("http://127.0.0.1:9", timeout_s=2)
    with caplog.at_level(logging.WARNING):
        assert reranker.rerank(QUESTION, HITS) == HITS
    assert "cross-encoder reranking failed" in caplog.text


def test_the_steps_are_off_by_default() -> None:
    steps = AnswerSteps.from_settings(Settings.defaults())
    assert not steps.opt_query and not steps.llm_rerank and steps.reranker is None
    assert steps.rerank(None, QUESTION, HITS) == HITS


# -- the gate and the per-case table ----------------------------------------------------------
def test_the_gate_includes_answer_metrics_with_an_llm() -> None:
    without = gate_config(Settings.defaults())
    assert without.answer_thresholds == {}
    config = gate_config(Settings.defaults(llm={"url": "http://127.0.0.1:9/v1"}))
    assert config.answer_thresholds == {"faithfulness": 0.7, "response_relevancy": 0.7}
    good = {"hybrid": {"queries": 10.0, "hit@5": 0.9, "mrr@10": 0.8}}
    low = {"hybrid": {**good["hybrid"], "faithfulness": 0.5, "response_relevancy": 0.9}}
    gate = decide_gate(low, None, config)
    assert any("faithfulness 0.5 below" in f for f in gate["failures"])
    fine = {"hybrid": {**good["hybrid"], "faithfulness": 0.8, "response_relevancy": 0.9}}
    before = {"hybrid": {**good["hybrid"], "faithfulness": 0.9, "response_relevancy": 0.9}}
    gate = decide_gate(fine, before, config)
    assert any("faithfulness fell from 0.9 to 0.8" in f for f in gate["failures"])
    assert decide_gate(fine, fine, config)["failures"] == []
    assert decide_gate(good, None, GateConfig())["failures"] == []


def test_case_rows_pass_or_fail_against_the_thresholds() -> None:
    t = CaseThresholds(max_distance=0.4, min_precision5=0.2)
    row = case_row("gc-001", "default", {"similarity": 0.75, "precision@5": 0.2}, 0.31234, t)
    assert row == {
        "test_id": "gc-001",
        "mode": "default",
        "distance": 0.25,
        "similarity": 0.75,
        "duration_s": 0.312,
        "precision@5": 0.2,
        "pass": True,
    }
    assert not case_row("gc-002", "default", {"similarity": 0.5, "precision@5": 0.4}, 1, t)["pass"]
    assert not case_row("gc-003", "hybrid", {"precision@5": 0.0}, 1, t)["pass"]
    assert case_row("gc-003", "hybrid", {"precision@5": 0.4}, 1, t)["distance"] is None


def test_llm_drafts_lose_placeholders_recommendations_keep_them(
    llm: tuple[ChatClient, Any, str],
) -> None:
    client, _, url = llm
    content = json.dumps(
        {
            "answered": True,
            "category": "Другое",
            "recommendations": ["Ответьте <PERSON> по шагам из S2."],
            "draft_reply": "Здравствуйте, <PERSON>!\n\nНапишите на <EMAIL>. "
            "Включите письма о новых задачах в профиле.",
            "source_ids": ["S2"],
            "confidence": 0.8,
        },
        ensure_ascii=False,
    )
    spec = {"output": "raw", "content": content, "count": 1}
    httpx.post(f"{url}/_admin/faults", json=spec).raise_for_status()
    result = generate(QUESTION, HITS, CATEGORIES, client)
    assert result.mode == "llm"
    assert result.answer.draft_reply == (
        "Здравствуйте!\n\nВключите письма о новых задачах в профиле."
    )
    assert result.answer.recommendations == ["Ответьте <PERSON> по шагам из S2."]
    only = json.loads(content)
    only["draft_reply"] = "Здравствуйте, <PERSON>! Пишите на <EMAIL>."
    spec = {"output": "raw", "content": json.dumps(only, ensure_ascii=False), "count": 1}
    httpx.post(f"{url}/_admin/faults", json=spec).raise_for_status()
    fallback = generate(QUESTION, HITS, CATEGORIES, client)
    assert fallback.mode == "extractive" and fallback.fallback_reason == "invalid_output"
    assert "<" not in fallback.answer.draft_reply
