"""The taxonomy and classifier a deployment's settings describe."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from kb_core.categorize.classifier import TicketClassifier
from kb_core.categorize.taxonomy import Taxonomy, load_taxonomy, taxonomy_from_catalog
from kb_core.settings import Settings

log = logging.getLogger(__name__)


class CatalogReader(Protocol):
    def get_catalog(self, catalog_id: int) -> dict[str, Any]: ...


def taxonomy_from_settings(settings: Settings, pyrus: CatalogReader | None = None) -> Taxonomy:
    """The YAML taxonomy, or the Pyrus catalog's items (with the YAML's keywords) when
    ``KB_PYRUS_CATEGORY_CATALOG_ID`` is set and a Pyrus client is given."""
    taxonomy = load_taxonomy(settings.categories.path, settings.bot.category_fallback)
    catalog_id = settings.pyrus.category_catalog_id
    if catalog_id is None or pyrus is None:
        return taxonomy
    synced = taxonomy_from_catalog(pyrus.get_catalog(catalog_id), keywords_from=taxonomy)
    log.info("categories synced from Pyrus catalog %s: %d", catalog_id, len(synced.categories))
    return synced


def classifier_from_settings(
    settings: Settings, pyrus: CatalogReader | None = None
) -> TicketClassifier:
    return TicketClassifier(taxonomy_from_settings(settings, pyrus), k=settings.categories.knn_k)
