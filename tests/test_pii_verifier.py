"""The independent verifier, the name morphology it shares with the scrubber, and the
people directory: no NER involved, so these run in milliseconds."""

from kb_core.pii.directory import catalog_names, directory_entries, member_names
from kb_core.pii.names import ambiguous, name_kind, transliterations
from kb_core.pii.verifier import Verifier


def test_names_in_any_case_form_and_script():
    for word in ("наталья", "Наташе", "кузнецову", "петровой", "саша", "Kirill", "Dmitry"):
        assert name_kind(word) is not None, word
    assert "ольга" in transliterations("Olga")
    assert "евгения" in transliterations("Evgeniya")


def test_product_role_and_word_names_are_not_names():
    for word in ("Контрагенты", "Ассистент", "руководитель", "бухгалтерия", "Pyrus", "ИНН"):
        assert name_kind(word) is None, word
    for word in ("вера", "роза", "лев"):
        assert name_kind(word) is None and ambiguous(word), word


def test_verifier_reports_kinds_and_offsets_of_what_is_left():
    verifier = Verifier()
    text = "спасибо, наталья. тел +7 (912) 345-67-89, почта a.b@example.org, инн 7707083893"
    kinds = [s.kind for s in verifier.scan(text)]
    assert sorted(kinds) == ["EMAIL", "INN", "PERSON", "PHONE"]
    assert all(isinstance(s.start, int) for s in verifier.scan(text))


def test_verifier_passes_scrubbed_text_and_words_that_look_like_names():
    verifier = Verifier(allow=frozenset({"pyrus"}))
    clean = (
        "Здравствуйте, <PERSON>! Вера в успех есть, роза ветров не печатается. "
        "Pyrus 4.12, заявка №200145, ИНН <INN>, ключ SUP-1234, сумма 12 500 ₽."
    )
    assert verifier.scan(clean) == []


def test_directory_catches_its_people_in_every_form_and_stores_no_names():
    entries = directory_entries(member_names([{"first_name": "Злата", "last_name": "Старикова"}]))
    assert not any("злат" in key or "старик" in key for key in entries)  # hashes only
    verifier = Verifier(directory=frozenset(entries))
    assert [s.kind for s in verifier.scan("передайте стариковой, что злата в курсе")] == [
        "PERSON",
        "PERSON",
    ]


def test_catalog_person_columns_join_the_directory():
    catalog = {
        "catalog_headers": [{"name": "Клиент", "type": "text"}, {"name": "ФИО", "type": "text"}],
        "items": [{"item_id": 1, "values": ["ООО Ромашка", "Иванова Анна"]}],
    }
    assert catalog_names(catalog) == ["Иванова Анна"]
