"""Query normalisation and synonym expansion (kb_core/search/normalize.py, synonyms.py,
synonyms_file.py; config/synonyms.yaml)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kb_core.search.normalize import normalize_query
from kb_core.search.synonyms import SynonymDictionary
from kb_core.settings import PROJECT_ROOT, Settings
from kb_core.text.lemmas import lemmas

SHIPPED = PROJECT_ROOT / "config" / "synonyms.yaml"

SMALL = """\
# a comment
- [впн, vpn]
- [постмортем, postmortem, пост-мортем]
- [1с, 1c, одинэс]
- [двухфакторная аутентификация, двухфакторка, 2fa]
- [пароль, password]
- [сброс пароля, password reset]
- [права доступа, permissions]
- [деплой, deploy, выкатка]
- ["429", too many requests]
"""


@pytest.fixture
def small(tmp_path: Path) -> SynonymDictionary:
    path = tmp_path / "synonyms.yaml"
    path.write_text(SMALL, encoding="utf-8")
    return SynonymDictionary.load(path)


@pytest.fixture(scope="module")
def shipped() -> SynonymDictionary:
    return SynonymDictionary.load(SHIPPED)


# -- normalisation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  не  работает\n\tвпн  ", "не работает впн"),
        ("Всё ещё не приходят письма", "Все еще не приходят письма"),
        ("«Заявка №123» — не видна…", '"Заявка №123" - не видна'),  # NFKC keeps «№»
        ("ошибка „Invalid SAML response“", 'ошибка "Invalid SAML response"'),
        ("ＶＰＮ\u00a0не\u2009работает", "VPN не работает"),  # full-width, no-break spaces
        ("па\u200bроль не\u00adподходит", "пароль неподходит"),  # zero-width, soft hyphen
        ("зна\u0301чение поля", "значение поля"),  # stress mark
        ("SАML не работает", "SAML не работает"),  # Cyrillic А inside a Latin word
        ("не подходит пaроль", "не подходит пароль"),  # Latin a inside a Russian word
        ("- не работает вход", "не работает вход"),
        ("...почему не приходят письма???", "почему не приходят письма"),
        ("Добрый день! Не работает VPN", "Не работает VPN"),
        ("Здравствуйте, коллеги. не приходят пуши", "коллеги. не приходят пуши"),
        ("Подскажите, пожалуйста, как сбросить 2FA?", "Подскажите как сбросить 2FA"),
        ("Не печатает принтер. Заранее спасибо за помощь!", "Не печатает принтер"),
        ("Всем привет! где бэкапы", "где бэкапы"),
        ("доброго времени суток, Excel ломает кодировку. С уважением", "Excel ломает кодировку"),
    ],
)
def test_normalize_query(raw: str, expected: str) -> None:
    assert normalize_query(raw) == expected


@pytest.mark.parametrize(
    "kept",
    [
        "ящик висит AUTHENTICATIONFAILED",
        "api отвечает 401 expired_token",
        "ошибка 0x80070005 при обновлении до 2.3.1",
        "лог в /var/log/pyrus/sync.log и C:\\Users\\ivan\\AppData",
        "письма на support@example.ru не доходят",
        "подпись X-Pyrus-Sig не сходится",
        "ошибка 429 too_many_requests",
        "Please try again later",  # English boilerplate is left alone: it may be a quote
    ],
)
def test_normalize_keeps_codes_versions_paths_and_addresses(kept: str) -> None:
    assert normalize_query(kept) == kept


def test_normalize_keeps_case_and_a_query_that_is_only_a_greeting() -> None:
    assert normalize_query("SSO через ADFS") == "SSO через ADFS"
    assert normalize_query("Здравствуйте!") == "Здравствуйте"
    assert normalize_query("спасибо, пожалуйста") == "спасибо, пожалуйста"
    assert normalize_query("   ") == ""


def test_politeness_inside_words_addresses_and_paths_is_not_removed() -> None:
    assert normalize_query("приветственное письмо") == "приветственное письмо"
    assert normalize_query("файл /tmp/spasibo/пожалуйста.txt") == "файл /tmp/spasibo/пожалуйста.txt"


# -- matching ------------------------------------------------------------------------------


def test_inflected_forms_match(small: SynonymDictionary) -> None:
    # pymorphy3 guesses «впна» → впный, «впну» → впнуть: the stem fallback still finds «впн».
    for query in ("не работает впн", "проблема с впном", "нет впна", "подключиться к впну"):
        assert "vpn" in small.expand(query).added_terms, query
    for query in ("как написать постмортем", "шаблон постмортема", "пост-мортема нет"):
        assert "postmortem" in small.expand(query).added_terms, query
    assert "deploy" in small.expand("после деплоя все упало").added_terms


def test_expansion_fields(small: SynonymDictionary) -> None:
    expansion = small.expand("Добрый день! Не работает впн, помогите пожалуйста")
    assert expansion.normalized == "Не работает впн, помогите"
    assert expansion.added_terms == ["vpn"]
    assert expansion.expanded_text == "Не работает впн, помогите (vpn)"
    [match] = expansion.matched
    assert (match.group, match.entry, match.query_text) == (0, "впн", "впн")
    assert match.terms == ("впн", "vpn")
    assert match.added == ("vpn",)


def test_added_terms_are_lemmas_not_already_in_the_query(small: SynonymDictionary) -> None:
    assert small.expand("впн и vpn").added_terms == []
    # «впна» lemmatises to «впный», so the entry's own lemma is added for BM25 …
    expansion = small.expand("нет впна")
    assert expansion.added_terms == ["впн", "vpn"]
    # … but the text for embedders only gets the other spellings.
    assert expansion.expanded_text == "нет впна (vpn)"
    # Added terms are what the lexical side indexes: lemmas of the spellings.
    assert set(small.expand("2fa").added_terms) == {
        *lemmas("двухфакторная аутентификация"),
        *lemmas("двухфакторка"),
    }


def test_latin_and_cyrillic_spellings(small: SynonymDictionary) -> None:
    cyrillic = small.expand("выгрузка в 1С")  # Cyrillic «С»
    latin = small.expand("выгрузка в 1C")  # Latin «C»
    assert "1c" in cyrillic.added_terms
    assert "1с" not in cyrillic.added_terms
    assert "1с" in latin.added_terms
    assert "1c" not in latin.added_terms
    assert small.expand("VPN-ом не подключиться").added_terms == ["впн", "vpn"]


def test_multi_word_entries(small: SynonymDictionary) -> None:
    expansion = small.expand("как отключить двухфакторную аутентификацию")
    assert expansion.added_terms == ["двухфакторк", "2fa"]
    assert expansion.matched[0].query_text == "двухфакторную аутентификацию"
    assert expansion.expanded_text.endswith("(двухфакторка, 2fa)")
    # Both words are needed: one alone is not the entry.
    assert small.expand("аутентификация через ADFS").matched == []
    assert small.expand("нет прав доступа к форме").added_terms == ["permissions"]


def test_longest_entry_wins_and_each_group_expands_once(small: SynonymDictionary) -> None:
    expansion = small.expand("сброс пароля не приходит")
    assert [m.entry for m in expansion.matched] == ["сброс пароля"]
    assert expansion.expanded_text == "сброс пароля не приходит (password reset)"
    assert [m.entry for m in small.expand("пароль и снова пароль").matched] == ["пароль"]


def test_several_groups_in_query_order(small: SynonymDictionary) -> None:
    expansion = small.expand("после выкатки 429 по впну")
    assert [m.entry for m in expansion.matched] == ["выкатка", "429", "впн"]
    assert expansion.expanded_text == (
        "после выкатки 429 по впну (деплой, deploy, too many requests, vpn)"
    )


def test_unrelated_and_empty_queries_are_not_expanded(small: SynonymDictionary) -> None:
    for query in ("как настроить маршрут формы", "правой кнопкой мыши", "", "???"):
        expansion = small.expand(query)
        assert expansion.added_terms == []
        assert expansion.matched == []
        assert expansion.expanded_text == expansion.normalized


def test_known_words_do_not_match_on_stems() -> None:
    dictionary = SynonymDictionary([["права", "permissions"], ["впн", "vpn"]])
    assert dictionary.expand("правой кнопкой").matched == []
    assert dictionary.expand("права пропали").added_terms == ["permissions"]
    assert dictionary.expand("впнуть").matched == []  # «впнуть» - «уть» is not a case form


# -- loading -------------------------------------------------------------------------------


def test_load_is_cached_per_path_until_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "synonyms.yaml"
    path.write_text("- [впн, vpn]\n", encoding="utf-8")
    first = SynonymDictionary.load(path)
    assert SynonymDictionary.load(str(path)) is first
    path.write_text("- [впн, vpn]\n- [постмортем, postmortem]\n", encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    second = SynonymDictionary.load(path)
    assert second is not first
    assert len(second) == 2
    other = tmp_path / "other.yaml"
    other.write_text("- [впн, vpn]\n", encoding="utf-8")
    assert SynonymDictionary.load(other) is not second


def test_an_empty_list_is_an_empty_dictionary(tmp_path: Path) -> None:
    path = tmp_path / "synonyms.yaml"
    path.write_text("[]\n", encoding="utf-8")
    dictionary = SynonymDictionary.load(path)
    assert len(dictionary) == 0
    assert dictionary.expand("не работает впн").expanded_text == "не работает впн"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("впн: vpn\n", "expected a list of groups, got a mapping"),
        ("- [впн, vpn]\n- впн, vpn\n", "group 2 (line 2): expected a list of spellings"),
        ("- [впн, vpn]\n- []\n", "group 2 (line 2): empty group"),
        ("- [впн]\n", "group 1 (line 1): a group needs at least two spellings"),
        ("- [ошибка 429, 429]\n", "group 1 (line 1): '429' reads as a number"),
        ("- [да, yes]\n", "'yes' reads as a boolean"),
        ("- [впн, ~]\n", "reads as empty (null)"),
        ("- [впн, [vpn]]\n", "expected a spelling, got a list"),
        ("- [впн, '!!!']\n", "entry '!!!' has no words"),
        ("- [впн, vpn\n", "not valid YAML"),
        ("# only a comment\n", "the file is empty"),
        (
            "- [впн, vpn]\n- [тикет, заявка]\n- [тикеты, ticket]\n",
            "group 3 (line 3): duplicate entry «тикеты»: same lemmas (тикета) as «тикет», "
            "an entry of group 2",
        ),
        ("- [VPN, впн]\n- [vpn, ви-пи-эн]\n", "duplicate entry «vpn»"),
        ("- [впн, vpn, впн]\n", "an entry of the same group"),
        ("- [ёлка, елка]\n", "duplicate entry «елка»"),
    ],
)
def test_malformed_files_fail_with_the_path_and_the_problem(
    tmp_path: Path, content: str, problem: str
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError) as error:
        SynonymDictionary.load(path)
    assert str(path) in str(error.value)
    assert problem in str(error.value)


def test_a_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.yaml"):
        SynonymDictionary.load(tmp_path / "missing.yaml")


def test_groups_from_python_are_validated_too() -> None:
    with pytest.raises(ValueError, match="expected a list of groups"):
        SynonymDictionary("впн vpn")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"<synonyms>: group 1: 1 is a number, not a string"):
        SynonymDictionary([["впн", 1]])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="duplicate entry"):
        SynonymDictionary([["впн", "vpn"], ["vpn", "ви-пи-эн"]], source="inline")


# -- the shipped dictionary ------------------------------------------------------------------


def test_settings_point_at_the_shipped_dictionary() -> None:
    assert Settings.defaults().search.synonyms_path == SHIPPED


def test_shipped_dictionary_loads_without_duplicates(shipped: SynonymDictionary) -> None:
    assert 40 <= len(shipped) <= 120
    seen: dict[tuple[str, ...], str] = {}
    for group in shipped.groups:
        assert len(group) >= 2
        for spelling in group:
            key = tuple(lemmas(spelling))
            assert key not in seen, f"{spelling!r} duplicates {seen[key]!r}"
            seen[key] = spelling


@pytest.mark.parametrize(
    ("query", "added"),
    [
        ("не работает впн", "vpn"),
        ("как написать постмортем", "postmortem"),
        ("выгрузка в 1С не идет", "1c"),
        ("сменил телефон, помогите сбросить 2fa", "двухфакторный"),
        ("как включить двухфакторку обязательной", "2fa"),
        ("не приходят пуши на андроид", "push"),
        ("в экселе кракозябры", "excel"),
        ("все тикеты по SLA горят красным", "заявка"),
        ("вебхук прилетает три раза", "webhook"),
        ("после деплоя нужен откат", "rollback"),
        ("где лежат бэкапы", "backup"),
        ("не пускает в конфлюенс", "confluence"),
        ("завести задачу в джире", "jira"),
        ("не печатает принтер", "мфу"),
    ],
)
def test_shipped_dictionary_expands_helpdesk_queries(
    shipped: SynonymDictionary, query: str, added: str
) -> None:
    assert added in shipped.expand(query).added_terms


def test_shipped_dictionary_leaves_unrelated_queries_alone(shipped: SynonymDictionary) -> None:
    for query in ("можно сделать чтобы срок не тикал", "правой кнопкой мыши по полю"):
        assert shipped.expand(query).matched == [], query
