"""The one base class of every error the product reports to a person.

Each domain error derives from :class:`KbError` (usually together with the built-in class it
refines, so ``except ValueError`` keeps working), so an entry point can catch one class: the
CLI prints any ``KbError`` as one line and exits 1, the API maps it to an HTTP status once.
Private control-flow exceptions (retry signals inside a client) stay outside this tree.
"""

from __future__ import annotations


class KbError(Exception):
    """A failure with a message meant for a person, not a traceback."""
