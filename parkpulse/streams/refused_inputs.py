"""The roll-up's rows ClickHouse refused, as dead letters placed at the inputs they came from.

A refused figure or target is dead-lettered as the input that carried it, with its origin and
line as every dead letter of the roll-up has them (``Rollup.apply`` dead-letters an input that
carries an error, so the place is found in one way). A refused derived row (a status, a
scorecard, a suspect figure) has no one input: it is kept as itself (``sinks/refusals.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from parkpulse.schemas.records import DeadLetter
from parkpulse.sinks.refusals import Refused, refused_deadletters
from parkpulse.streams.rollup import Input, Rollup
from parkpulse.topics import OBSERVATIONS

INPUT_TABLES = ("observations", "plan_targets")


def rollup_deadletters(
    refused: Sequence[Refused], inputs: Sequence[Input], rollup: Rollup
) -> list[DeadLetter]:
    """The dead letters of a roll-up batch's refused rows; ``inputs`` is the batch. The
    roll-up's state is left as it is (the stage drops it to reload what ClickHouse holds)."""
    sources = _sources(inputs, rollup) if any(r.table in INPUT_TABLES for r in refused) else {}
    dead: list[DeadLetter] = []
    derived: list[Refused] = []
    for row in refused:
        item = sources.get(row.record) if row.table in INPUT_TABLES else None
        if item is None:
            derived.append(row)
        else:
            dead += rollup.apply([replace(item, error=row.error)]).deadletters
    return dead + refused_deadletters(derived, OBSERVATIONS)


def _sources(inputs: Sequence[Input], rollup: Rollup) -> dict[Any, Input]:
    """Each figure and target the inputs read as, alone, to the input it came from (the last
    one, as the roll-up applied them, when several carry the same)."""
    found: dict[Any, Input] = {}
    for item in inputs:
        alone = Rollup(rollup.catalogue, jump_factor=rollup.jump_factor).apply([item]).batch
        for record in (*alone.observations, *alone.targets):
            found[record] = item
    return found
