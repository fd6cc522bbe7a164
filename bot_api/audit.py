"""Audit entries of the console's calls (kb_core.console.audit), from the API's side.

``audited`` wraps one call and stores it with its outcome; ``record_refusal`` stores a
request the API refused (401/403) with no personal data: no query, no name, a pseudonym
only when the caller is known (403), the route's template rather than its path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from bot_api.errors import status_for
from bot_api.state import AppState
from kb_core.console import audit
from kb_core.console.identity import Principal

log = logging.getLogger(__name__)

# The subject of a refused request without a (valid) identity.
ANONYMOUS = "anonymous"


@contextmanager
def audited(
    kb: AppState,
    user: Principal,
    action: str,
    query: str | None,
    detail: dict[str, Any] | None = None,
) -> Iterator[None]:
    """Audit the block as one call with its outcome (200, the error's status, or 500).
    Blocking: use it in a worker thread. Writing the entry may load the scrubber."""
    status = 500
    try:
        yield
        status = 200
    except Exception as exc:
        status = status_for(exc) or 500
        raise
    finally:
        _write(kb, user, action, query, status, detail, scrub=lambda t: kb.console.scrub(t))


def record_refusal(
    kb: AppState, principal: Principal | None, status: int, route: str, method: str
) -> None:
    """A refused request (401/403): who when known (pseudonym), which route, no query.
    Blocking."""
    detail = {"route": route, "method": method}
    # Nothing free-form is stored, so the scrubber (seconds to load) is not needed.
    # A short wait: with the database away, a refusal stays quick (the entry is lost).
    _write(kb, principal, "refused", None, status, detail, scrub=str, timeout=2.0)


def _write(
    kb: AppState,
    principal: Principal | None,
    action: str,
    query: str | None,
    status: int,
    detail: dict[str, Any] | None,
    *,
    scrub: Callable[[str], str],
    timeout: float | None = None,
) -> None:
    try:
        subject = kb.identity.pseudonyms(principal.subject) if principal else ANONYMOUS
        roles = principal.roles if principal else []
        with kb.pool.connection(timeout=timeout) as conn:
            audit.record(
                conn,
                subject=subject,
                roles=roles,
                action=action,
                query=query,
                status=status,
                scrub=scrub,
                detail=detail,
            )
    except Exception as exc:
        # The answer is computed; a lost entry is logged loudly rather than failing it.
        log.error("audit entry not written: %s", type(exc).__name__)
