"""Sendable drafts without an LLM: the draft lint, extractive drafting in whole units,
generalising another customer's ticket, placeholders, configurable greeting/closing,
and the naive baseline. No database, no network."""

from __future__ import annotations

from pathlib import Path

import pytest

from kb_core.generation import categories_from_settings, generate
from kb_core.generation.draft import blocks, naive_draft, situational
from kb_core.generation.lint import lint_draft
from kb_core.models import SearchHit
from kb_core.settings import Settings
from kb_core.texts import load_texts

CATEGORIES = categories_from_settings(Settings.defaults())
QUESTION = "Не приходят уведомления о новых задачах на почту, что проверить?"


def hit(
    n: int, title: str, text: str, *, source: str = "confluence", score: float = 0.9
) -> SearchHit:
    return SearchHit(
        document_id=n,
        chunk_id=100 + n,
        title=title,
        score=score,
        snippet=" ".join(text.split())[:300],
        heading_path=(title,),
        url=None,
        source=source,
        external_id=str(200000 + n),
        text=text,
    )


ARTICLE = hit(
    1,
    "Уведомления по почте",
    "# Уведомления по почте\n\n"
    "Письма о новых задачах приходят участникам маршрута и подписчикам. "
    "Поэтому отдельных писем о задачах нет у тех, кто не в маршруте.\n\n"
    "Чтобы письма о новых задачах снова приходили на почту:\n"
    "1. Откройте Профиль → Настройки → Уведомления.\n"
    "2. Включите канал «Электронная почта» в режиме «Сразу».\n"
    "3. Выключите режим «Не беспокоить».\n\n"
    "После этого письма о новых задачах приходят сразу.",
)
TICKET = hit(
    2,
    "Перестали приходить письма",
    "# Перестали приходить письма\n\n## Вопрос\n\nНе приходят письма о задачах.\n\n"
    "## Решение\n\nЗдравствуйте, <PERSON>!\n\n"
    "Вчера в вашем профиле был включён режим «Не беспокоить» для почты. "
    "Проверили журнал отправки для адреса <EMAIL>. "
    "Отключите режим «Не беспокоить» в разделе Профиль → Уведомления, и письма о новых "
    "задачах снова будут приходить на почту.\n\nХорошего дня!",
    source="pyrus",
)


def draft_of(question: str, hits: list[SearchHit]) -> str:
    return generate(question, hits, CATEGORIES, None).answer.draft_reply


# -- the lint ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("draft", "code"),
    [
        ("Здравствуйте!\n\nЧтобы письма снова приходили сразу: 1.", "truncated_list"),
        ("Здравствуйте!\n\nСделайте так:\n1. Откройте профиль.\n3. Сохраните.", "truncated_list"),
        (
            "Здравствуйте!\n\nПроверьте настройки уведомлений и сделайте следующее:",
            "truncated_list",
        ),
        (
            "Здравствуйте!\n\nПоэтому отдельных писем о задачах нет, проверьте маршрут.",
            "dangling_connective",
        ),
        (
            "Здравствуйте!\n\nПосле этого письма о новых задачах приходят сразу.",
            "dangling_connective",
        ),
        ("Здравствуйте, <PERSON>! Откройте профиль и включите письма о задачах.", "placeholder"),
        (
            "Здравствуйте!\n\nОткройте раздел «Уведомления и включите письма о задачах.",
            "unbalanced",
        ),
        ("Здравствуйте!\n\nОткройте профиль (Настройки и включите письма о задачах.", "unbalanced"),
        ("Здравствуйте!\n\nДа.", "length"),
        ("Здравствуйте!\n\n" + "Откройте профиль. " * 200, "length"),
    ],
)
def test_lint_finds_what_keeps_a_draft_from_being_sent(draft: str, code: str) -> None:
    assert code in {issue.code for issue in lint_draft(draft)}


def test_lint_passes_a_sendable_draft() -> None:
    draft = (
        "Здравствуйте!\n\nЧтобы письма о новых задачах приходили на почту:\n"
        "1. Откройте Профиль → Настройки → Уведомления.\n"
        "2. Включите канал «Электронная почта» (режим «Сразу»).\n\n"
        "Если это не поможет, ответьте на это сообщение."
    )
    assert lint_draft(draft) == []


# -- drafting in whole units ------------------------------------------------------------------
def test_a_list_is_taken_whole_with_the_line_that_introduces_it() -> None:
    draft = draft_of(QUESTION, [ARTICLE])
    assert lint_draft(draft) == []
    assert "Чтобы письма о новых задачах снова приходили на почту:\n1. Откройте" in draft
    assert "3. Выключите режим «Не беспокоить»." in draft
    assert not any(line.startswith(("Поэтому", "После этого")) for line in draft.splitlines())


def test_a_sentence_opening_with_a_connective_keeps_the_one_before_it() -> None:
    question = "почему нет отдельных писем о задачах у тех, кто не в маршруте"
    draft = draft_of(question, [ARTICLE])
    assert lint_draft(draft) == []
    assert "Письма о новых задачах приходят участникам маршрута и подписчикам. Поэтому" in draft


def test_an_opening_connective_without_its_predecessor_is_dropped() -> None:
    lone = hit(3, "Почта", "Поэтому письма о задачах приходят только участникам маршрута.")
    draft = draft_of("кому приходят письма о задачах", [lone])
    assert lint_draft(draft) == []
    assert "Письма о задачах приходят только участникам маршрута." in draft
    assert "Поэтому" not in draft


def test_another_customers_ticket_is_generalised() -> None:
    draft = draft_of(QUESTION, [TICKET])
    assert lint_draft(draft) == []
    assert "<" not in draft and "Здравствуйте!" in draft
    # Their case (when, their profile, their address, what was done) stays out; the
    # instruction, which holds for this customer too, stays in.
    assert "Вчера" not in draft and "в вашем профиле" not in draft and "журнал" not in draft
    assert "Отключите режим «Не беспокоить»" in draft
    assert "Хорошего дня" not in draft


def test_recommendations_for_the_agent_may_keep_typed_placeholders() -> None:
    result = generate(QUESTION, [TICKET], CATEGORIES, None)
    assert "<" not in result.answer.draft_reply
    assert result.answer.recommendations[0].startswith("Похожая заявка #200002")


def test_situational_sentences_are_told_from_instructions() -> None:
    assert situational("Вчера у вас был включён режим «Не беспокоить».")
    assert situational("В вашем профиле включён режим «Не беспокоить».")
    assert situational("Проверили настройки почтового сервера.")
    assert not situational("Отключите режим «Не беспокоить» в профиле.")
    assert not situational("Вы можете включить письма в профиле.")
    assert not situational("Письма о новых задачах приходят участникам маршрута.")


def test_greeting_closing_and_reference_come_from_the_texts(tmp_path: Path) -> None:
    overrides = tmp_path / "texts.yaml"
    overrides.write_text(
        'draft_greeting: "Добрый день!"\ndraft_closing: "С уважением, поддержка."\n'
        'draft_reference: "См. статью «{title}»."\n',
        encoding="utf-8",
    )
    texts = load_texts(overrides)
    draft = generate(QUESTION, [ARTICLE], CATEGORIES, None, texts=texts).answer.draft_reply
    assert draft.startswith("Добрый день!")
    assert draft.endswith("С уважением, поддержка.")
    assert "См. статью «Уведомления по почте»." in draft
    assert lint_draft(draft) == []


def test_the_article_is_cited_even_when_a_ticket_answers() -> None:
    draft = draft_of(QUESTION, [TICKET, ARTICLE])
    assert "Подробнее — в статье «Уведомления по почте»." in draft
    assert "Заявка" not in draft and "200002" not in draft


def test_a_source_with_nothing_sendable_gives_way_to_the_next() -> None:
    only_case = hit(
        4,
        "Письма",
        "## Решение\n\nЗдравствуйте, <PERSON>! Вчера мы перезапустили вашу почтовую очередь.",
        source="pyrus",
    )
    draft = draft_of(QUESTION, [only_case, ARTICLE])
    assert lint_draft(draft) == []
    assert "перезапустили" not in draft and "Откройте Профиль" in draft


def test_blocks_keep_inline_numbered_lists_whole() -> None:
    found = blocks("Чтобы письма приходили: 1. Откройте профиль. 2. Включите почту. Готово.")
    lists = [b for b in found if b.kind == "list"]
    assert lists and lists[0].sentences[0] == "Чтобы письма приходили:"
    assert lists[0].text().startswith("Чтобы письма приходили:\n1. Откройте профиль.")


def test_every_draft_is_lint_clean_on_awkward_sources() -> None:
    awkward = [
        hit(5, "A", "Это ожидаемо. Он приходит раз в сутки."),
        hit(6, "B", "Сделайте так:\n1."),
        hit(7, "C", "См. раздел «Профиль (настройки."),
        hit(8, "D", "## Решение\n\nЗдравствуйте, <PERSON>! Спасибо за обращение.", source="pyrus"),
    ]
    for hits in ([h] for h in awkward):
        draft = draft_of(QUESTION, hits)
        assert lint_draft(draft) == [], draft


def test_the_naive_baseline_is_the_first_sentences_of_the_top_resolution() -> None:
    assert naive_draft([TICKET, ARTICLE]) == (
        "Здравствуйте, <PERSON>! Вчера в вашем профиле был включён режим «Не беспокоить» для почты."
    )
    assert naive_draft([]) == ""
