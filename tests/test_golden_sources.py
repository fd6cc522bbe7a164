"""The Jira and attachment golden sets name documents the sample sources really hold."""

import json

from kb_core.settings import PROJECT_ROOT
from kb_fakes.confluence import ConfluenceStore
from kb_fakes.jira import JiraStore

GOLDEN = PROJECT_ROOT / "evals" / "golden"


def _cases(name: str) -> list[dict]:
    text = (GOLDEN / name).read_text("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_jira_golden_questions_point_at_resolved_sample_issues():
    issues = JiraStore.from_samples().issues
    cases = _cases("jira.jsonl")
    assert len(cases) >= 8 and len({c["id"] for c in cases}) == len(cases)
    for case in cases:
        for doc_id in case["relevant_doc_ids"]:
            source, _, key = doc_id.partition(":")
            assert source == "jira" and issues[key].resolution, doc_id


def test_attachment_golden_questions_point_at_sample_attachments():
    store = ConfluenceStore.from_samples()
    attachments = {a.id: a for page in store.pages.values() for a in page.attachments}
    cases = _cases("attachments.jsonl")
    assert len(cases) >= 5
    for case in cases:
        for doc_id in case["relevant_doc_ids"]:
            source, _, attachment_id = doc_id.partition(":")
            assert source == "confluence_attachment", doc_id
            assert attachments[attachment_id].filename.endswith((".pdf", ".docx", ".csv"))
