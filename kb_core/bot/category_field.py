"""Writes the bot's category into the ticket's category field, when the form has one.

The helpdesk form's category is usually a catalog field: Pyrus takes its value as a
catalog item id, so the category name is looked up in the catalog (read once and kept).
A plain text field takes the name itself. No field, or no item of that name: nothing is
written, and the comment still names the category.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from kb_core.categorize.taxonomy import category_key
from kb_core.sources.pyrus_tasks import field_by_code

log = logging.getLogger(__name__)


class CatalogReader(Protocol):
    def get_form(self, form_id: int) -> dict[str, Any]: ...

    def get_catalog(self, catalog_id: int) -> dict[str, Any]: ...


class CategoryField:
    def __init__(self, pyrus: CatalogReader, code: str | None) -> None:
        self.pyrus = pyrus
        self.code = code
        self._catalog_items: dict[int, dict[str, int]] = {}

    def _form_field(self, task: dict[str, Any]) -> dict[str, Any] | None:
        if not task.get("form_id"):
            return None
        form = self.pyrus.get_form(int(task["form_id"]))
        return next((f for f in form.get("fields", []) if f.get("code") == self.code), None)

    def _catalog_id(self, task: dict[str, Any], field: dict[str, Any]) -> int | None:
        info = field.get("info") or {}
        if info.get("catalog_id"):
            return int(info["catalog_id"])
        form = self.pyrus.get_form(int(task["form_id"]))
        for definition in form.get("fields", []):
            if definition.get("id") == field.get("id"):
                return int((definition.get("info") or {}).get("catalog_id") or 0) or None
        return None

    def _item_id(self, catalog_id: int, category: str) -> int | None:
        if catalog_id not in self._catalog_items:
            catalog = self.pyrus.get_catalog(catalog_id)
            self._catalog_items[catalog_id] = {
                category_key(str(item["values"][0])): int(item["item_id"])
                for item in catalog.get("items", [])
                if item.get("values") and not item.get("deleted")
            }
        return self._catalog_items[catalog_id].get(category_key(category))

    def updates(self, task: dict[str, Any], category: str | None) -> list[dict[str, Any]]:
        """``field_updates`` for the comment that carries the answer."""
        if not self.code or not category:
            return []
        # A task lists the fields that have values; an empty one is found on the form.
        field = field_by_code(task, self.code) or self._form_field(task)
        if field is None:
            return []
        if field.get("type") == "catalog":
            catalog_id = self._catalog_id(task, field)
            item_id = self._item_id(catalog_id, category) if catalog_id else None
            if item_id is None:
                log.info("category %r is not an item of the category catalog", category)
                return []
            return [{"id": field["id"], "value": {"item_id": item_id}}]
        if field.get("type") in ("text", "note"):
            return [{"id": field["id"], "value": category}]
        return []
