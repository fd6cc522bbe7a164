"""Russian PII detection and scrubbing (presidio + natasha, offline)."""

import json
import subprocess

import pytest

from kb_core.pii import PiiConfig, Scrubber
from kb_core.pii.checksums import inn_valid, luhn_valid, snils_valid
from kb_core.pii.scrubber import replace_findings
from kb_core.settings import PROJECT_ROOT
from tests.conftest import run_kb


@pytest.fixture(scope="module")
def scrubber() -> Scrubber:
    return Scrubber(PiiConfig.from_file(PROJECT_ROOT / "config" / "pii.yaml"))


@pytest.mark.parametrize(
    ("text", "placeholder"),
    [
        ("Передайте Смирновой Анне Петровне, что всё готово.", "<PERSON>"),
        ("Звонил Котов А. В. из бухгалтерии.", "<PERSON>"),
        ("Согласует А.В. Котову.", "<PERSON>"),
        ("Здравствуйте, Роман! Проверили настройки.", "<PERSON>"),
        ("напишите сергей петров из отдела кадров", "<PERSON>"),
        ("Мой телефон +7 (912) 345-67-89, звоните после обеда.", "<PHONE>"),
        ("Диспетчер: 8 912 345 67 89", "<PHONE>"),
        ("Карпенко Людмила, диспетчер, 89025557134", "<PHONE>"),
        ("Пишите на petr.ivanov@example.ru или в чат.", "<EMAIL>"),
        ("Почта для счетов: buh-2@mail.example", "<EMAIL>"),
        ("ИНН организации 7707083893.", "<INN>"),
        ("ИНН 500100732259 физлица.", "<INN>"),
        ("СНИЛС 112-233-445 95 в анкете.", "<SNILS>"),
        ("Паспорт 45 08 123456 выдан в 2015 году.", "<PASSPORT>"),
        ("Оплатили картой 4111 1111 1111 1111 вчера.", "<CARD>"),
        ("р/с 40702810900000012345 в банке", "<ACCOUNT>"),
        ("IBAN DE89 3704 0044 0532 0130 00 для перевода", "<IBAN>"),
    ],
)
def test_each_kind_is_replaced_by_its_placeholder(scrubber: Scrubber, text: str, placeholder: str):
    scrubbed = scrubber.scrub(text)
    assert placeholder in scrubbed, scrubbed


@pytest.mark.parametrize(
    "text",
    [
        "Заявка #200145 в Pyrus, версия 4.12.3, ошибка 429 too_many_requests.",
        "Форма «Служба поддержки» и справочник «Категории обращений».",
        "ИНН 7707083894 указан с ошибкой в контрольной цифре.",  # invalid checksum
        "СНИЛС 112-233-445 96 не проходит проверку.",  # invalid check number
        "Номер заказа 4111 1111 1111 1112 (не карта).",  # fails Luhn
        "Счёт № 2026-0415 на сумму 12 500 ₽ от 12.03.2026 в 14:30.",
        "Задача 1234567890 закрыта, КПП 770701001.",
        "Ассистент базы знаний ответил в задаче, SAML и NameID настроены.",
    ],
)
def test_look_alikes_and_allow_listed_terms_stay(scrubber: Scrubber, text: str):
    assert scrubber.scrub(text) == text


def test_deny_list_always_scrubbed():
    custom = Scrubber(PiiConfig(deny=("Проект Сокол",)))
    assert (
        custom.scrub("Клиент из Проект Сокол просит доступ") == "Клиент из <PRIVATE> просит доступ"
    )


def test_threshold_is_respected():
    strict = Scrubber(PiiConfig(threshold=0.99))
    # Natasha's PERSON score is 0.85: below a 0.99 threshold nothing is replaced.
    assert strict.scrub("Передайте Смирновой") == "Передайте Смирновой"


def test_findings_carry_no_values(scrubber: Scrubber):
    text = "Иванов Пётр Сергеевич, тел. +7 (912) 345-67-89"
    findings = scrubber.scan(text)
    assert {f.kind for f in findings} == {"PERSON", "PHONE"}
    for finding in findings:
        payload = json.dumps(finding.as_json(), ensure_ascii=False)
        assert "Иванов" not in payload and "345" not in payload
        assert set(finding.as_json()) == {"type", "start", "end", "score"}


def test_line_structure_is_preserved(scrubber: Scrubber):
    text = "Клиент: Смирнова Анна\nТел.: +7 (912) 345-67-89\n\nИНН 7707083893\n"
    scrubbed = scrubber.scrub(text)
    assert scrubbed.count("\n") == text.count("\n")
    assert scrubbed.splitlines()[2] == ""


def test_a_span_across_lines_keeps_its_line_breaks():
    from kb_core.pii.scrubber import Finding

    text = "имя: Анна\nПетровна, ok"
    out = replace_findings(text, [Finding("PERSON", 5, 18, 0.9)])
    assert out == "имя: <PERSON>\n, ok"


@pytest.mark.parametrize(
    ("check", "good", "bad"),
    [
        (inn_valid, "7707083893", "7707083894"),
        (inn_valid, "500100732259", "500100732258"),
        (snils_valid, "112-233-445 95", "112-233-445 96"),
        (luhn_valid, "4111 1111 1111 1111", "4111 1111 1111 1112"),
    ],
)
def test_checksums(check, good: str, bad: str):
    assert check(good) and not check(bad)


def _kb(*args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return run_kb(*args, stdin=stdin)


@pytest.mark.integration  # starts a process
def test_cli_scrub_and_scan():
    text = "Клиент Смирнова Анна\nтел. +7 (912) 345-67-89\n"
    scrubbed = _kb("pii", "scrub", stdin=text)
    assert scrubbed.returncode == 0, scrubbed.stderr
    assert scrubbed.stdout == "Клиент <PERSON>\nтел. <PHONE>\n"
    scanned = _kb("pii", "scan", "--json", stdin=text)
    assert scanned.returncode == 0, scanned.stderr
    findings = json.loads(scanned.stdout)
    assert [f["type"] for f in findings] == ["PERSON", "PHONE"]
    assert "Смирнова" not in scanned.stdout + scanned.stderr


def test_labelled_set_meets_the_targets(scrubber: Scrubber):
    # Regression guard for the numbers the scrubber is accepted on (evals/pii_eval.py).
    from evals.pii_eval import evaluate, load

    report = evaluate(scrubber, load())
    per_type = report["per_type"]
    assert report["samples"] >= 200
    for kind in ("PHONE", "EMAIL", "INN", "SNILS", "PASSPORT", "CARD"):
        assert per_type[kind]["recall"] >= 0.99, (kind, per_type[kind])
    assert per_type["PERSON"]["recall"] >= 0.90
    assert report["precision"] >= 0.90


def test_allow_listed_terms_are_never_scrubbed(scrubber: Scrubber):
    from kb_core.pii.scrubber import PiiConfig as Config

    config = Config.from_file(PROJECT_ROOT / "config" / "pii.yaml")
    for term in config.allow:
        sentence = f"Вопрос про {term} от клиента."
        assert term.casefold() in scrubber.scrub(sentence).casefold(), term


@pytest.mark.integration  # starts a process
def test_parallel_scrubbing_matches_in_process(scrubber: Scrubber):
    from kb_core.pii.configured import PARALLEL_MIN_TEXTS, ParallelScrubber

    texts = [
        f"Заявка {i}: клиент Смирнова Анна, тел. +7 (912) 345-67-{i % 90 + 10}" for i in range(50)
    ]
    assert len(texts) >= PARALLEL_MIN_TEXTS
    with ParallelScrubber(scrubber.config, workers=2) as parallel:
        assert parallel.scrub_many(texts) == scrubber.scrub_many(texts)
        assert parallel._pool is not None  # the batch really went to worker processes
