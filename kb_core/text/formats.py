"""The Markdown of a stored document body, by its raw format.

One dispatch over every converter: plain Markdown and HTML (``kb_core.text.markdown``),
Confluence storage format (``kb_core.text.confluence``) and Jira issues
(``kb_core.text.jira``). It sits above the converters, which build on
``kb_core.text.markdown`` themselves, so no converter module imports another's caller
(the dispatch used to live in ``markdown`` and import ``confluence``, which imports
``markdown``: a cycle).
"""

from __future__ import annotations

from kb_core.errors import KbError
from kb_core.text.confluence import confluence_to_markdown
from kb_core.text.front_matter import split_front_matter
from kb_core.text.jira import issue_to_markdown
from kb_core.text.markdown import html_to_markdown, normalize_markdown


class UnsupportedFormatError(KbError, ValueError):
    """A document's raw format has no converter."""


def to_markdown(raw_format: str, raw_body: str) -> str:
    """The Markdown of a document body in one of the supported raw formats."""
    if raw_format == "markdown":
        _, body = split_front_matter(raw_body)
        return normalize_markdown(body)
    if raw_format == "html":
        return html_to_markdown(raw_body)
    if raw_format == "confluence_storage":
        return confluence_to_markdown(raw_body)
    if raw_format == "jira_issue":
        return issue_to_markdown(raw_body)
    raise UnsupportedFormatError(f"no Markdown converter for raw format {raw_format!r}")
