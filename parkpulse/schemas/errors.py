"""Input errors carrying the reason code the dead-letter record reuses."""

from __future__ import annotations

REASONS = (
    "malformed",
    "unknown_zone",
    "unknown_indicator",
    "bad_value",
    "bad_period",
    "unit_mismatch",
    "future_period",
    "conflict",
)


class RejectedInput(ValueError):
    """An input record that parkpulse refuses, with a reason code from REASONS."""

    def __init__(self, reason: str, detail: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown reason code {reason!r}")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
