"""The question ``parkpulse deadletter`` and ``/api/deadletter`` ask of the dead-letter table.

One validated value object for the API's query string and the CLI's arguments: a limit, and
optional filters on the origin (a file name, or topic/partition@offset), the reason code and
the time received. Values reach ClickHouse only as bound parameters; validation is there to
answer a clear 400 instead of an empty page, not to keep SQL out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from parkpulse.schemas.errors import REASONS

DEFAULT_LIMIT = 1000
MAX_LIMIT = 100_000
MAX_ORIGIN_CHARS = 256  # what a dead letter keeps of an origin (streams/rollup.py)


@dataclass(frozen=True, slots=True)
class DeadLetterQuery:
    """Which dead letters to show: at most ``limit``, newest first, filtered."""

    limit: int = DEFAULT_LIMIT
    origin: str | None = None
    reason: str | None = None
    since: datetime | None = None  # received at or after (UTC)

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise ValueError(f"limit must be 1..{MAX_LIMIT}, got {self.limit}")
        if self.origin is not None and (
            not self.origin or len(self.origin) > MAX_ORIGIN_CHARS or not self.origin.isprintable()
        ):
            raise ValueError(f"origin must be 1..{MAX_ORIGIN_CHARS} printable characters")
        if self.reason is not None and self.reason not in REASONS:
            raise ValueError(f"reason must be one of {', '.join(REASONS)}")
        if self.since is not None and self.since.tzinfo is None:
            raise ValueError("since must carry a time zone")

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> DeadLetterQuery:
        """From a query string; raises ValueError naming the parameter that is wrong."""
        unknown = sorted(set(params) - {"limit", "origin", "reason", "since"})
        if unknown:
            raise ValueError(f"unknown parameter {', '.join(unknown)}")
        try:
            limit = int(params.get("limit") or DEFAULT_LIMIT)
        except ValueError:
            raise ValueError("limit must be an integer") from None
        since = None
        if params.get("since"):
            try:
                since = datetime.fromisoformat(params["since"])
            except ValueError:
                raise ValueError("since must be an ISO 8601 time with its zone") from None
        return cls(limit, params.get("origin") or None, params.get("reason") or None, since)

    def params(self) -> dict[str, Any]:
        """As query-string values, in the order of ``ClickHouseStore.deadletter_page``'s
        arguments (``cli.query`` passes them to it positionally; None is left out of a URL)."""
        since = self.since.isoformat() if self.since else None
        return {"limit": self.limit, "origin": self.origin, "reason": self.reason, "since": since}


def page_summary(page: Mapping[str, Any]) -> str:
    """``N of M shown`` under a table of dead letters."""
    shown, total = len(page.get("rows", [])), int(page.get("total", 0))
    return f"{shown} of {total} shown"
