"""The roll-up's rows ClickHouse refused: dead letters placed at the inputs they came from, and
the statuses those inputs touched recomputed from what ClickHouse holds.

A refused figure or target is dead-lettered as the input that carried it, with its origin and
line as every dead letter of the roll-up has them (``Rollup.apply`` dead-letters an input that
carries an error, so the place is found in one way). A refused derived row (a status, a
scorecard, a suspect figure) has no one input: it is kept as itself (``sinks/refusals.py``).

Derived rows are written before their inputs (``sinks/writer.py``), so by the time a figure is
refused the status rows computed with it are stored. ``restate`` recomputes the indicators it
touched from ClickHouse's own figures and targets and writes what differs (tombstones for months
that only it filled), once: what that write has refused is dead-lettered, never recomputed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import orjson

from parkpulse.schemas.records import DeadLetter, Observation, PlanTarget
from parkpulse.schemas.wire import observation_to_wire, target_to_wire
from parkpulse.sinks.refusals import Refused, refused_deadletters
from parkpulse.sinks.retry import retry_store, write_durably
from parkpulse.streams.deps import Deps
from parkpulse.streams.rollup import Input, Rollup, RollupResult
from parkpulse.topics import OBSERVATIONS, TARGETS_BY_ZONE

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


async def restate(
    refused: Sequence[Refused],
    rollup: Rollup,
    deps: Deps,
    stopping: Callable[[], bool],
    result: RollupResult,
) -> list[DeadLetter]:
    """Recompute the (zone, indicator)s whose figures or targets ClickHouse refused from what it
    holds, write the rows that differ, and add the status rows to ``result`` (sent on with the
    batch's, the later last). The roll-up's state is dropped, to be reloaded as ClickHouse holds
    it. Returns the dead letters of what this write had refused."""
    rollup.forget()
    pairs = {(r.record.zone, r.record.indicator) for r in refused if r.table in INPUT_TABLES}
    if not pairs:
        return []
    zones = sorted({zone for zone, _ in pairs})
    store, metrics = deps.store, deps.metrics
    states = await retry_store(store, store.zones_state, zones, metrics=metrics, stopping=stopping)
    fresh = Rollup(rollup.catalogue, rollup.thresholds, jump_factor=rollup.jump_factor)
    again: list[Input] = []
    for zone in zones:
        observations, targets, statuses, suspects = states[zone]
        # The touched indicators' own figures and targets go in again, so that apply
        # recomputes them against the status rows stored; tombstones stay as they are.
        redo = [r for r in (*observations, *targets) if _again(r, zone, pairs)]
        again += [_input(r) for r in redo]
        held = {id(r) for r in redo}
        fresh.load(
            zone,
            [o for o in observations if id(o) not in held],
            [t for t in targets if id(t) not in held],
            statuses,
            suspects,
        )
    fixed = fresh.apply(again)
    fixed.batch.deadletters = []  # stored figures, not inputs: nothing to reject again
    refused_again = await write_durably(store, fixed.batch, metrics, stopping)
    result.batch.statuses += fixed.batch.statuses
    result.batch.status_tombstones += fixed.batch.status_tombstones
    result.shrunk.update(fixed.shrunk)
    return refused_deadletters(refused_again, OBSERVATIONS)


def _again(record: Observation | PlanTarget, zone: str, pairs: set[tuple[str, str]]) -> bool:
    return (zone, record.indicator) in pairs and record.action != "D"


def _input(record: Observation | PlanTarget) -> Input:
    if isinstance(record, PlanTarget):
        return Input(TARGETS_BY_ZONE, "target", orjson.dumps(target_to_wire(record)))
    return Input(OBSERVATIONS, "observation", orjson.dumps(observation_to_wire(record)))
