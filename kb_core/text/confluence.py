"""Confluence storage format → Markdown.

Storage bodies are XHTML fragments with Confluence's own ``ac:``/``ri:`` elements: no
root element, no namespace declarations, HTML entities XML does not know. So they are
parsed with BeautifulSoup's forgiving ``html.parser`` (which keeps ``ac:*`` names), the
Confluence elements are rewritten in place into plain HTML, and the result goes through
the same markdownify converter as every other HTML source.

Rules (see the table in the external APIs notes): code/noformat → fenced code with its
language; info/note/warning/tip/panel → quoted blocks labelled with their kind; expand →
its body under its title; toc/children and similar navigation macros → dropped; Jira →
the issue key; status → its title; links → their text; attachments and images → file
names; user mentions → a neutral placeholder (never a name); task lists → checklists;
layouts, inline comments and unknown wrappers → their content. Anything unrecognised is
unwrapped, never deleted with its text: the converter must not lose body text.
"""

from __future__ import annotations

import html
import posixpath
import re
from collections.abc import Callable
from urllib.parse import urlparse

from bs4 import BeautifulSoup, Tag
from bs4.element import NavigableString, PageElement

from kb_core.text.markdown import KbMarkdownConverter, normalize_markdown

# What readers see in place of Confluence constructs (Russian: the knowledge base is).
PANEL_LABELS = {
    "info": "Информация",
    "note": "Примечание",
    "warning": "Внимание",
    "tip": "Совет",
    "panel": "Панель",
    "success": "Готово",
    "error": "Ошибка",
}
EXPAND_DEFAULT_TITLE = "Подробнее"
USER_PLACEHOLDER = "@пользователь"
IMAGE_LABEL = "изображение"
MACRO_LABEL = "макрос"
MACRO_PARAMS = 5  # plain parameters shown in an unknown macro's label
MACRO_PARAM_CHARS = 80

# Navigation and dynamic-content macros: their output is not part of the page's text.
DROPPED_MACROS = frozenset(
    {
        "toc",
        "toc-zone",
        "children",
        "contentbylabel",
        "pagetree",
        "recently-updated",
        "anchor",
        "include",
        "excerpt-include",
        "attachments",
        "livesearch",
        "create-from-template",
    }
)
CODE_MACROS = frozenset({"code", "noformat"})

# A CDATA section ends at the first literal "]]>"; exports write a nested one as "]] >".
_CDATA = re.compile(r"<!\[CDATA\[(.*?)\]\]>", re.DOTALL)
_NONE_STYLE = re.compile(r"list-style-type\s*:\s*none", re.IGNORECASE)


def _inline_cdata(storage: str) -> str:
    """Replace CDATA sections by escaped text (html.parser ends CDATA at "]] >")."""
    return _CDATA.sub(lambda m: html.escape(m[1].replace("]] >", "]]>"), quote=False), storage)


def _param(macro: Tag, name: str) -> str:
    for child in macro.find_all("ac:parameter", recursive=False):
        if child.get("ac:name") == name:
            return str(child.get_text(" ", strip=True))
    return ""


def _macro_label(macro: Tag, name: str) -> str:
    """``[макрос NAME: key=value, …]`` with the parameters that are plain text."""
    params: list[str] = []
    for child in macro.find_all("ac:parameter", recursive=False):
        if child.find(True) is not None:  # a user, page or space reference: not plain
            continue
        key, value = str(child.get("ac:name") or ""), child.get_text(" ", strip=True)
        if value and len(value) <= MACRO_PARAM_CHARS and len(params) < MACRO_PARAMS:
            params.append(f"{key}={value}" if key else value)
    return f"[{MACRO_LABEL} {name}: {', '.join(params)}]" if params else f"[{MACRO_LABEL} {name}]"


def _child(tag: Tag, name: str) -> Tag | None:
    found = tag.find(name, recursive=False)
    return found if isinstance(found, Tag) else None


class _Rewriter:
    """Rewrites one parsed fragment in place; each handler removes the tag it is given."""

    def __init__(self, soup: BeautifulSoup) -> None:
        self.soup = soup
        self.handlers: dict[str, Callable[[Tag], None]] = {
            "ac:structured-macro": self.macro,
            "ac:macro": self.macro,
            "ac:link": self.link,
            "ac:image": self.image,
            "ac:task-list": self.task_list,
            "ac:task": self.task,
            "ri:user": lambda tag: self.replace_text(tag, USER_PLACEHOLDER),
            "ri:page": lambda tag: self.replace_text(tag, str(tag.get("ri:content-title", ""))),
            "ri:attachment": lambda tag: self.replace_text(tag, str(tag.get("ri:filename", ""))),
            "ri:space": lambda tag: self.replace_text(tag, str(tag.get("ri:space-key", ""))),
            "ri:url": lambda tag: self.replace_text(tag, str(tag.get("ri:value", ""))),
            "ac:plain-text-body": self.stray_plain_body,
            "time": self.time,
        }
        self.dropped = frozenset(
            {
                "ac:parameter",
                "ac:emoticon",
                "ac:placeholder",
                "ac:task-id",
                "ac:task-uuid",
                "ac:task-status",
                "ac:default-parameter",
            }
        )

    # -- generic helpers -------------------------------------------------------------
    def new(self, name: str, text: str | None = None, **attrs: str) -> Tag:
        tag = self.soup.new_tag(name, attrs=attrs)
        if text is not None:
            tag.string = text
        return tag

    def replace_text(self, tag: Tag, text: str) -> None:
        if text:
            tag.replace_with(NavigableString(text))
        else:
            tag.decompose()

    def replace_with_children(self, tag: Tag, body: Tag | None, before: list[Tag]) -> None:
        """Put ``before`` and the children of ``body`` where ``tag`` was."""
        anchor: PageElement = tag
        for item in [*before, *(list(body.contents) if body is not None else [])]:
            anchor.insert_after(item.extract() if item.parent is not None else item)
            anchor = item
        tag.decompose()

    def code_block(self, text: str, language: str) -> Tag:
        pre = self.new("pre")
        code = self.new("code", text, **({"class": f"language-{language}"} if language else {}))
        pre.append(code)
        return pre

    # -- handlers ------------------------------------------------------------------------
    def macro(self, tag: Tag) -> None:
        name = str(tag.get("ac:name", "")).lower()
        title = _param(tag, "title")
        rich = _child(tag, "ac:rich-text-body")
        plain = _child(tag, "ac:plain-text-body")
        if name in CODE_MACROS:
            heading = [self.new("p", f"{title}:")] if title else []
            language = _param(tag, "language")
            text = plain.get_text() if plain is not None else tag.get_text()
            self.replace_with_children(tag, None, [*heading, self.code_block(text, language)])
        elif name in PANEL_LABELS:
            quote = self.new("blockquote")
            label = PANEL_LABELS[name] if not (name == "panel" and title) else title
            if title and name != "panel":
                label = f"{label}: {title}"
            head = self.new("p")
            head.append(self.new("strong", f"{label}."))
            quote.append(head)
            for child in list(rich.contents) if rich is not None else []:
                quote.append(child.extract())
            tag.replace_with(quote)
        elif name == "expand":
            head = self.new("p")
            head.append(self.new("strong", title or EXPAND_DEFAULT_TITLE))
            self.replace_with_children(tag, rich, [head])
        elif name == "status":
            self.replace_text(tag, f"[{title}]" if title else "")
        elif name == "jira":
            self.replace_text(tag, _param(tag, "key"))
        elif name in DROPPED_MACROS:
            tag.decompose()
        else:
            # Unknown (often a plugin's, e.g. drawio): a label with its name and plain
            # parameters says something was here, and may be what a reader searches for.
            marker = self.new("p", _macro_label(tag, name))
            if rich is not None:
                self.replace_with_children(tag, rich, [marker])
            elif plain is not None:
                code = self.code_block(plain.get_text(), "")
                self.replace_with_children(tag, None, [marker, code])
            else:
                tag.replace_with(marker)

    def link(self, tag: Tag) -> None:
        plain = _child(tag, "ac:plain-text-link-body")
        rich = _child(tag, "ac:link-body")
        if tag.find("ri:user") is not None:
            self.replace_text(tag, USER_PLACEHOLDER)
        elif plain is not None and plain.get_text(strip=True):
            self.replace_text(tag, plain.get_text())
        elif rich is not None and rich.get_text(strip=True):
            self.replace_with_children(tag, rich, [])
        else:
            target = tag.find(["ri:page", "ri:attachment", "ri:space", "ri:url"])
            text = ""
            if isinstance(target, Tag):
                text = str(
                    target.get("ri:content-title")
                    or target.get("ri:filename")
                    or target.get("ri:space-key")
                    or target.get("ri:value")
                    or ""
                )
            self.replace_text(tag, text or str(tag.get("ac:anchor", "")))

    def image(self, tag: Tag) -> None:
        name = ""
        attachment = tag.find("ri:attachment")
        url = tag.find("ri:url")
        if isinstance(attachment, Tag):
            name = str(attachment.get("ri:filename", ""))
        elif isinstance(url, Tag):
            name = posixpath.basename(urlparse(str(url.get("ri:value", ""))).path)
        self.replace_text(tag, f"[{IMAGE_LABEL}: {name}]" if name else "")

    def task(self, tag: Tag) -> None:
        status = _child(tag, "ac:task-status")
        done = status is not None and status.get_text(strip=True).lower() == "complete"
        item = self.new("li")
        item.append(NavigableString("[x] " if done else "[ ] "))
        body = _child(tag, "ac:task-body")
        for child in list(body.contents) if body is not None else []:
            item.append(child.extract())
        tag.replace_with(item)

    def task_list(self, tag: Tag) -> None:
        listing = self.new("ul")
        for child in list(tag.contents):
            if (isinstance(child, Tag) and child.name == "ac:task") or isinstance(child, Tag):
                listing.append(child.extract())
        tag.replace_with(listing)
        # A task list inside a paragraph would be flattened into its text by markdownify.
        if listing.parent is not None and listing.parent.name == "p":
            listing.parent.insert_after(listing.extract())

    def stray_plain_body(self, tag: Tag) -> None:
        tag.replace_with(self.code_block(tag.get_text(), ""))

    def time(self, tag: Tag) -> None:
        if not tag.get_text(strip=True):
            self.replace_text(tag, str(tag.get("datetime", "")))
        else:
            tag.unwrap()

    # -- driver --------------------------------------------------------------------------
    def needs_work(self, tag: Tag) -> bool:
        name = tag.name or ""
        if name in self.handlers or name in self.dropped:
            return name != "time" or tag.get("datetime") is not None
        if name.startswith(("ac:", "ri:")):
            return True
        if name == "div" and "content-wrapper" in (tag.get("class") or []):
            return True
        return name == "li" and bool(_NONE_STYLE.search(str(tag.get("style", ""))))

    def handle(self, tag: Tag) -> None:
        name = tag.name or ""
        if name in self.dropped:
            tag.decompose()
        elif name in self.handlers:
            self.handlers[name](tag)
        elif name == "li":
            # Confluence wraps nested lists in bulletless items: merge them into the
            # previous item so the nesting survives without an empty bullet.
            previous = tag.find_previous_sibling("li")
            if previous is not None:
                for child in list(tag.contents):
                    previous.append(child.extract())
                tag.decompose()
            else:
                del tag["style"]
        else:
            tag.unwrap()  # layouts, inline comment markers, unknown wrappers: keep content

    def run(self, root: Tag) -> None:
        while True:
            tag = root.find(self.needs_work)
            if not isinstance(tag, Tag):
                return
            self.handle(tag)


def confluence_to_markdown(storage: str) -> str:
    """Markdown of a Confluence storage-format body (fragment or wrapped document)."""
    soup = BeautifulSoup(_inline_cdata(storage), "html.parser")
    for tag in soup.find_all(("script", "style")):
        tag.decompose()
    root: Tag = soup.body if soup.body is not None else soup
    _Rewriter(soup).run(root)
    return normalize_markdown(KbMarkdownConverter().convert_soup(root))
