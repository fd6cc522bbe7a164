"""The category taxonomy: names with descriptions and keywords, from YAML or a catalog.

The YAML file (``KB_CATEGORIES_PATH``) is the default source. A deployment whose
helpdesk form already has a category catalog in Pyrus names it in
``KB_PYRUS_CATEGORY_CATALOG_ID``: names and descriptions then come from the catalog (so
a category added there is used the next day without a release), and keywords are still
taken from the YAML for the names it knows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kb_core.errors import KbError
from kb_core.text.lemmas import lemmas


def category_key(name: str) -> str:
    """Names compare case-, space- and ё-insensitively (catalogs are typed by people)."""
    return " ".join(name.split()).casefold().replace("ё", "е")


@dataclass(frozen=True)
class Category:
    name: str
    description: str = ""
    keywords: tuple[str, ...] = ()
    item_id: int | None = None  # the catalog item, when synced from Pyrus

    @property
    def keyword_lemmas(self) -> frozenset[tuple[str, ...]]:
        """Each keyword as a lemma sequence (a phrase matches when all its lemmas occur)."""
        return frozenset(tuple(lemmas(k)) for k in self.keywords if lemmas(k))


@dataclass(frozen=True)
class Taxonomy:
    categories: tuple[Category, ...]
    fallback: str = "Другое"
    source: str = "yaml"
    _by_key: dict[str, Category] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_key.update({category_key(c.name): c for c in self.categories})

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.categories]

    def get(self, name: str | None) -> Category | None:
        return self._by_key.get(category_key(name)) if name else None

    def canonical(self, name: str | None) -> str | None:
        """The taxonomy's spelling of ``name``, or None when it is not a category."""
        found = self.get(name)
        return found.name if found else None


class TaxonomyError(KbError, ValueError):
    """A taxonomy file or catalog the product cannot use; the message says why."""


def load_taxonomy(path: Path, fallback: str = "Другое") -> Taxonomy:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise TaxonomyError(f"{path}: cannot read the categories ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise TaxonomyError(f"{path}: not UTF-8 text (save the file as UTF-8)") from None
    except yaml.YAMLError as exc:
        raise TaxonomyError(f"{path}: not valid YAML: {exc}") from None
    items = data.get("categories") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise TaxonomyError(f"{path}: expected a non-empty list under 'categories'")
    categories: list[Category] = []
    seen: set[str] = set()
    for number, item in enumerate(items, 1):
        if not isinstance(item, dict) or not str(item.get("name") or "").strip():
            raise TaxonomyError(f"{path}: category #{number} has no name")
        name = " ".join(str(item["name"]).split())
        if category_key(name) in seen:
            raise TaxonomyError(f"{path}: category {name!r} is listed twice")
        seen.add(category_key(name))
        keywords = item.get("keywords") or []
        if not isinstance(keywords, list):
            raise TaxonomyError(f"{path}: keywords of {name!r} must be a list")
        categories.append(
            Category(
                name=name,
                description=str(item.get("description") or ""),
                keywords=tuple(str(k) for k in keywords),
            )
        )
    return Taxonomy(tuple(categories), str(data.get("fallback") or fallback), source=str(path))


def taxonomy_from_catalog(
    catalog: dict[str, Any], keywords_from: Taxonomy | None = None, fallback: str = "Другое"
) -> Taxonomy:
    """Categories from a Pyrus catalog (``GET /catalogs/{id}``): first column the name,
    second (if any) the description; deleted items are left out."""
    categories = []
    for item in catalog.get("items") or []:
        values = item.get("values") or []
        if item.get("deleted") or not values or not str(values[0]).strip():
            continue
        name = " ".join(str(values[0]).split())
        known = keywords_from.get(name) if keywords_from else None
        categories.append(
            Category(
                name=name,
                description=str(values[1]) if len(values) > 1 else "",
                keywords=known.keywords if known else (),
                item_id=int(item["item_id"]) if item.get("item_id") is not None else None,
            )
        )
    if not categories:
        raise TaxonomyError(f"catalog {catalog.get('catalog_id')} has no live items")
    return Taxonomy(
        tuple(categories),
        keywords_from.fallback if keywords_from else fallback,
        source=f"pyrus catalog {catalog.get('catalog_id')}",
    )
