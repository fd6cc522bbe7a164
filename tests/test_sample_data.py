"""The sample knowledge base is well-formed: what the fakes serve and the golden set."""

import json
from collections import Counter

import pytest

from kb_core.pii.checksums import inn_valid, luhn_valid, snils_valid
from kb_core.settings import PROJECT_ROOT
from kb_core.sources.pyrus_tasks import TicketDocumentBuilder, comment_history
from kb_fakes.confluence import ConfluenceStore
from kb_fakes.pyrus import PyrusStore

SAMPLES = PROJECT_ROOT / "samples"
GOLDEN = PROJECT_ROOT / "evals" / "golden" / "sample.jsonl"


@pytest.fixture(scope="module")
def pyrus() -> PyrusStore:
    return PyrusStore.from_samples()


@pytest.fixture(scope="module")
def confluence() -> ConfluenceStore:
    return ConfluenceStore.from_samples()


def test_confluence_pages(confluence: ConfluenceStore):
    pages = confluence.pages
    assert len(pages) >= 40
    assert {p.space for p in pages.values()} == {"SUP", "ADM", "INT"}
    for page in pages.values():
        assert page.parent_id is None or page.parent_id in pages


def test_tickets_cover_the_categories(pyrus: PyrusStore):
    builder = TicketDocumentBuilder(bot_ids=frozenset({9000, 9001}))
    resolved = [t for t in pyrus.tasks.values() if t["form_id"] == 321 and t.get("is_closed")]
    assert len(resolved) >= 150
    categories = Counter(
        doc.metadata["category"] for t in resolved if (doc := builder.document(t)) is not None
    )
    assert len(categories) >= 8 and min(categories.values()) >= 10
    open_tickets = [
        t for t in pyrus.tasks.values() if t["form_id"] == 321 and not t.get("is_closed")
    ]
    assert open_tickets, "some open tickets must exist to check they are not indexed"


def test_comment_ids_and_edit_targets(pyrus: PyrusStore):
    seen: set[int] = set()
    for task in pyrus.tasks.values():
        earlier: set[int] = set()
        for comment in task.get("comments", []):
            assert comment["id"] not in seen
            seen.add(comment["id"])
            for key in ("edit_comment_id", "delete_comment_id"):
                if comment.get(key):
                    assert comment[key] in earlier, (task["id"], comment["id"])
            earlier.add(comment["id"])
        comment_history(task)  # applies cleanly


def _pii_manifest() -> list[dict]:
    items = []
    for path in sorted((SAMPLES / "pyrus" / "tickets").glob("*.pii.json")):
        items.extend(json.loads(path.read_text("utf-8")))
    return items


def test_planted_personal_data_is_findable_and_valid(pyrus: PyrusStore):
    manifest = _pii_manifest()
    assert len({item["task_id"] for item in manifest}) >= 50
    assert {"PERSON", "PHONE", "EMAIL", "INN", "SNILS", "CARD"} <= {i["type"] for i in manifest}
    for item in manifest:
        task = pyrus.tasks[item["task_id"]]
        if item.get("comment_id"):
            texts = [c.get("text", "") for c in task["comments"] if c["id"] == item["comment_id"]]
        else:
            texts = [str(f.get("value", "")) for f in task["fields"] if f["id"] == item["field_id"]]
        assert any(item["value"] in text for text in texts), item
        digits = "".join(c for c in item["value"] if c.isdigit())
        if item["type"] == "INN":
            assert inn_valid(digits), item
        elif item["type"] == "SNILS":
            assert snils_valid(digits), item
        elif item["type"] == "CARD":
            assert luhn_valid(digits), item


def test_golden_set_references_existing_documents(pyrus: PyrusStore, confluence: ConfluenceStore):
    cases = [json.loads(line) for line in GOLDEN.read_text("utf-8").splitlines() if line.strip()]
    assert len(cases) >= 60
    assert len({c["id"] for c in cases}) == len(cases)
    builder = TicketDocumentBuilder(bot_ids=frozenset({9000, 9001}))
    for case in cases:
        assert case["question"].strip() and case["reference_answer"].strip()
        assert case["origin"] in {"curated", "correction", "synthetic"}
        for doc_id in case["relevant_doc_ids"]:
            source, _, external = doc_id.partition(":")
            if source == "confluence":
                assert external in confluence.pages, doc_id
            else:
                assert source == "pyrus", doc_id
                assert builder.document(pyrus.tasks[int(external)]) is not None, doc_id
