"""The monthly brief's content (pure: status history in, a structured brief out; no I/O).

For month M and each (zone, indicator, plan) the brief compares the key's status *as of* M (its
latest row with period ≤ M) with its status as of M−1 (latest row ≤ M−1): a key that published
nothing in M keeps last month's status and shows as unchanged, with the period of its figure.

Decisions written down here:
- Rank of the evaluated statuses, best first: achieved, on_track, at_risk, behind. "Lagging" is
  at_risk or behind.
- ``fell_behind``: lagging now and worse than last month, or lagging now with no evaluated status
  last month (a new key). ``recovered``: achieved or on_track now, lagging last month.
  ``improved``: lagging both months, better now. ``still_lagging``: lagging both months, not
  better. ``steady``: achieved or on_track both months (or new and good). Rows that are not
  evaluated (no_data, not_evaluated) as of M are counted, never classed.
- Changes are this month minus last month: attainment in percentage points (×100), gap_pp as it
  is; None when either month lacks the number.
- A key with no row at or before M is not in the brief; a zone with no such key neither.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from parkpulse.schemas.periods import YearMonth

Row = Mapping[str, Any]
Movement = Literal["fell_behind", "recovered", "improved", "still_lagging", "steady"]
MOVEMENTS: tuple[Movement, ...] = (
    "fell_behind",
    "recovered",
    "improved",
    "still_lagging",
    "steady",
)
RANK = {"achieved": 0, "on_track": 1, "at_risk": 2, "behind": 3}
LAGGING = ("at_risk", "behind")
GOOD = ("achieved", "on_track")


class BriefError(ValueError):
    """A brief that cannot be made (a bad month, nothing on record): one line for the user."""


@dataclass(frozen=True, slots=True)
class Change:
    """One key's move from last month to this month."""

    zone: str
    indicator: str
    plan: str
    kind: str
    binding: bool
    period: str  # the month of the figure the status is as of (≤ the brief's month)
    status: str
    previous_status: str | None  # as of M−1; None when the key had no row then
    movement: Movement
    attainment: float | None
    attainment_change_pp: float | None
    gap_pp: float | None
    gap_change_pp: float | None
    actual: float | None
    expected: float | None
    annual_target: float | None
    required_growth_pct: float | None
    best_rest_growth_pct: float | None
    out_of_reach: bool | None


@dataclass(frozen=True, slots=True)
class ZoneBrief:
    zone: str
    counts: dict[str, int]  # status as of M → number of keys (every status, evaluated or not)
    changes: tuple[Change, ...]  # every evaluated key, binding first, then worst first

    def moved(self, movement: Movement) -> list[Change]:
        return [c for c in self.changes if c.movement == movement]

    @property
    def out_of_reach(self) -> list[Change]:
        return [c for c in self.changes if c.out_of_reach]

    @property
    def share_on_track(self) -> float | None:
        """Achieved or on_track over the evaluated keys (None when none is evaluated)."""
        evaluated = sum(self.counts.get(s, 0) for s in RANK)
        good = sum(self.counts.get(s, 0) for s in GOOD)
        return good / evaluated if evaluated else None


@dataclass(frozen=True, slots=True)
class MonthlyBrief:
    month: str
    previous_month: str
    zones: tuple[ZoneBrief, ...]


def parse_month(text: str) -> YearMonth:
    """``YYYY-MM`` as a YearMonth; BriefError otherwise."""
    if not re.fullmatch(r"\d{4}-\d{2}", text.strip()):
        raise BriefError(f"month must be YYYY-MM (e.g. 2023-06), got {text!r}")
    year, month = (int(part) for part in text.strip().split("-"))
    if not 1 <= month <= 12:
        raise BriefError(f"month must be YYYY-MM (e.g. 2023-06), got {text!r}")
    return YearMonth(year, month)


def previous_month(at: YearMonth) -> YearMonth:
    return YearMonth(at.year - 1, 12) if at.month == 1 else YearMonth(at.year, at.month - 1)


def _as_of(rows: list[Row], month: str) -> Row | None:
    """The latest of ``rows`` (sorted by period) with period ≤ ``month``."""
    found = None
    for row in rows:
        if row["period"] > month:
            break
        found = row
    return found


def movement_of(status: str, previous: str | None) -> Movement | None:
    """How a key moved from ``previous`` to ``status`` (None when ``status`` is not evaluated)."""
    if status not in RANK:
        return None
    before = RANK.get(previous) if previous is not None else None
    if status in LAGGING:
        if before is None or RANK[status] > before:
            return "fell_behind"
        if previous in LAGGING and RANK[status] < before:
            return "improved"
        return "still_lagging"
    return "recovered" if previous in LAGGING else "steady"


def _change(row: Row, before: Row | None, movement: Movement) -> Change:
    def delta(name: str, scale: float = 1.0) -> float | None:
        now = row.get(name)
        then = before.get(name) if before is not None else None
        return None if now is None or then is None else (now - then) * scale

    return Change(
        zone=row["zone"],
        indicator=row["indicator"],
        plan=row["plan"],
        kind=row["kind"],
        binding=bool(row.get("binding")),
        period=row["period"],
        status=row["status"],
        previous_status=before["status"] if before is not None else None,
        movement=movement,
        attainment=row.get("attainment"),
        attainment_change_pp=delta("attainment", 100.0),
        gap_pp=row.get("gap_pp"),
        gap_change_pp=delta("gap_pp"),
        actual=row.get("actual"),
        expected=row.get("expected"),
        annual_target=row.get("annual_target"),
        required_growth_pct=row.get("required_growth_pct"),
        best_rest_growth_pct=row.get("best_rest_growth_pct"),
        out_of_reach=row.get("out_of_reach"),
    )


def build_brief(rows: Iterable[Row], month: str, zone: str | None = None) -> MonthlyBrief:
    """The brief for ``month`` (YYYY-MM) from status history rows (any order), one zone or all."""
    at = parse_month(month)
    this, last = at.label, previous_month(at).label
    history: dict[tuple[str, str, str], list[Row]] = defaultdict(list)
    for row in rows:
        if zone is None or row["zone"] == zone:
            history[(row["zone"], row["indicator"], row["plan"])].append(row)
    per_zone: dict[str, list[Change]] = defaultdict(list)
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for key, key_rows in history.items():
        key_rows.sort(key=lambda r: r["period"])
        now = _as_of(key_rows, this)
        if now is None:
            continue
        counts[key[0]][now["status"]] += 1
        before = _as_of(key_rows, last)
        movement = movement_of(now["status"], before["status"] if before else None)
        if movement is not None:
            per_zone[key[0]].append(_change(now, before, movement))
    zones = tuple(
        ZoneBrief(
            z,
            dict(counts[z]),
            tuple(
                sorted(
                    per_zone[z],
                    key=lambda c: (not c.binding, -RANK[c.status], c.indicator, c.plan),
                )
            ),
        )
        for z in sorted(counts)
    )
    return MonthlyBrief(this, last, zones)
