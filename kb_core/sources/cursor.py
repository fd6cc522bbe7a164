"""The state an incremental sync keeps between runs, and ISO time parsing for sources."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


def parse_time(value: str | None) -> datetime | None:
    """An ISO-8601 time as the APIs send it ("…Z" included); None when absent or bad."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass
class SyncCursor:
    """The newest modification time a sync saw, and when it last listed ids for deletions.

    Times come from the source's own data, never from our clock, so clock skew between
    us and the source cannot make a sync skip changes.
    """

    last_modified: datetime | None = None
    last_full_listing: datetime | None = None

    def listing_due(self, now: datetime, interval: timedelta) -> bool:
        return self.last_full_listing is None or now - self.last_full_listing >= interval

    def as_json(self) -> dict[str, Any]:
        return {
            "last_modified": self.last_modified.isoformat() if self.last_modified else None,
            "last_full_listing": self.last_full_listing.isoformat()
            if self.last_full_listing
            else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> SyncCursor:
        data = data or {}
        return cls(parse_time(data.get("last_modified")), parse_time(data.get("last_full_listing")))
