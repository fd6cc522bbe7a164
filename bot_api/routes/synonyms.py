"""``GET``/``PUT /api/synonyms``: the query-expansion dictionary, edited by knowledge owners.

Agents search with it but may not change it. The dictionary lives in its file
(KB_SYNONYMS_PATH, kb_core.search.synonyms_editing): search reads the saved file on the next
query. A dictionary the loader would refuse is refused here (422, naming the group).
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from bot_api.audit import audited
from bot_api.deps import KnowledgeOwner, StateDep
from bot_api.schemas import Synonyms
from kb_core.search.synonyms_editing import read_groups, write_groups

router = APIRouter(tags=["console"])


@router.get("/api/synonyms", response_model=Synonyms)
def synonyms(kb: StateDep, user: KnowledgeOwner) -> Synonyms:
    """The dictionary's groups as saved (knowledge owners only)."""
    return Synonyms(groups=read_groups(kb.settings.search.synonyms_path))


@router.put("/api/synonyms", response_model=Synonyms)
def save_synonyms(kb: StateDep, user: KnowledgeOwner, body: Synonyms) -> Synonyms:
    """Replace the dictionary (knowledge owners only); the next search expands with it."""
    groups = body.groups
    with audited(kb, user, "synonyms", None, {"groups": len(groups)}):
        try:
            write_groups(kb.settings.search.synonyms_path, groups)
        except ValueError as exc:
            raise HTTPException(422, detail=str(exc)) from exc
    return Synonyms(groups=read_groups(kb.settings.search.synonyms_path))
