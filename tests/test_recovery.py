"""Recovery bounded by what has not landed: the kept-file ledger, and the embedded stack after a
worker kill and a broker kill.

Unit part: ``producers/kept.py`` (entries, the landed rule, origins). Integration part: a
``parkpulse run`` of its own (Tansu + worker + chdb): a worker killed with the broker alive
re-publishes nothing; a broker killed re-publishes only the kept files that had not landed; a
replay, automatic or by hand, lands on the same dead-letter rows; a ``run`` started again on
the same DATA_DIR exports the stored statuses as gauges within seconds.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parkpulse.config import Settings
from parkpulse.producers.kept import Entry, archive, archived, entries, origin_of, record
from tests.conftest import RunningStack, start_stack, wait_until

TARGETS = (
    "plan,zone,indicator,kind,base_year,base_value,target_year,target_value,"
    "annual_growth_pct,binding,unit,source\n"
    "recovery-plan,xian-hitech,hitech_enterprises,level,2020,100,2025,200,,false,COUNT,test\n"
)
HEADER = (
    "STRUCTURE,STRUCTURE_ID,ACTION,ZONE,INDICATOR,TIME_PERIOD,BASIS,OBS_VALUE,UNIT_MEASURE,"
    "YOY_PCT,OBS_STATUS,REVISION,PUBLISHED_AT"
)


# -- the ledger, pure ------------------------------------------------------------------------

offsets = st.dictionaries(
    st.tuples(
        st.sampled_from(["parkpulse.observations", "parkpulse.deadletter"]), st.integers(0, 7)
    ),
    st.integers(0, 10_000),
    min_size=1,
)


@given(offsets)
def test_a_file_lands_once_every_partition_is_committed_past_it(last):
    entry = Entry("0123456789abcdef-a.csv", "observations", "a.csv", "e1", last)
    past = {tp: o + 1 for tp, o in last.items()}
    assert entry.landed(past, epoch="e1")
    assert not entry.landed(past, epoch="e2")  # offsets of another broker say nothing
    for tp in last:  # one partition not yet past its last offset: not landed
        assert not entry.landed({**past, tp: last[tp]}, epoch="e1")
        assert not entry.landed({k: v for k, v in past.items() if k != tp}, epoch="e1")


@given(offsets, st.text(min_size=1, max_size=20).filter(lambda s: "/" not in s and "\0" not in s))
def test_an_entry_reads_back_as_written(last, epoch):
    entry = Entry("0123456789abcdef-a b&c.csv", "targets", "a b&c.csv", epoch, last)
    assert Entry.from_json(entry.to_json()) == entry


def test_a_kept_copy_is_published_under_its_original_name(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "var")
    feed = tmp_path / "早期 feed.csv"
    feed.write_text(f"{HEADER}\n", encoding="utf-8")
    kept = archive(settings, feed, "observations")
    assert kept != feed and kept.name.endswith("-早期 feed.csv")
    assert origin_of(kept) == origin_of(feed) == "早期 feed.csv"
    assert archive(settings, kept, "observations") == kept  # a replayed copy stays put
    # A user's own file that merely looks like a kept name keeps its name.
    lookalike = tmp_path / "0123456789abcdef-report.csv"
    lookalike.write_text("x")
    assert origin_of(lookalike) == "0123456789abcdef-report.csv"


def test_landed_files_leave_the_replay_set(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "var")
    names = []
    for n in range(3):
        path = tmp_path / f"f{n}.csv"
        path.write_text(f"{HEADER}\n{n}\n", encoding="utf-8")
        kept = archive(settings, path, "observations")
        record(settings, Entry(kept.name, "observations", path.name, "", {}))
        names.append(kept.name)
    assert [p.name for p, _ in archived(settings)] == names
    assert [p.name for p, _ in archived(settings, skip={names[1]})] == [names[0], names[2]]
    assert sorted(e.file for e in entries(settings)) == sorted(names)


# -- the embedded stack ----------------------------------------------------------------------


def feed(path: Path, zone: str, rows: list[tuple[str, str]], bad: int = 0) -> Path:
    lines = [HEADER]
    for period, value in rows:
        lines.append(
            f"dataflow,PARKPULSE:ZONE_MONTHLY(1.0),I,{zone},hitech_enterprises,{period},LEVEL,"
            f"{value},COUNT,,A,0,2021-07-15T09:00:00+08:00"
        )
    lines += [
        f"dataflow,PARKPULSE:ZONE_MONTHLY(1.0),I,no-such-zone-{n},gdp,2021-01,YTD,1,CNY_100M,,A,0,"
        for n in range(bad)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def replayed(stack: RunningStack, since: int = 0) -> list[str]:
    """The ``replayed FILE: …`` lines the stack printed after its first ``since`` lines."""
    return [line for line in stack.lines[since:] if line.startswith("replayed")]


def deadletters(stack: RunningStack, origin_suffix: str) -> list[dict]:
    rows = stack.get_json("/api/deadletter?limit=100000")["rows"]
    return [r for r in rows if str(r["origin"]).endswith(origin_suffix)]


def consumed(stack: RunningStack) -> float:
    try:
        return stack.metric(
            "parkpulse_events_total", topic="parkpulse.observations", direction="in"
        )
    except OSError:
        return -1.0


@pytest.mark.integration
def test_restarts_republish_only_what_has_not_landed(tmp_path: Path) -> None:
    stack = start_stack(tmp_path / "stack", "--no-demo", "--no-scoreboard")
    try:
        (tmp_path / "targets.csv").write_text(TARGETS, encoding="utf-8")
        assert stack.cli("targets", "--no-progress", str(tmp_path / "targets.csv")).returncode == 0
        early = feed(
            tmp_path / "early.csv", "xian-hitech", [("2021-01", "10"), ("2021-02", "20")], bad=1
        )
        done = stack.cli("produce", "--no-progress", str(early))
        assert done.returncode == 2, done.stderr  # one bad row
        wait_until(lambda: len(deadletters(stack, "early.csv")) == 1, timeout=60)
        log = stack.data_dir / "stderr.log"
        wait_until(lambda: "feeds_landed" in log.read_text(), timeout=60)

        # A worker killed with the broker alive: the new one re-publishes and re-reads nothing,
        # and exports the stored statuses within seconds.
        before = stack.worker_pid()
        assert before is not None
        printed = len(stack.lines)
        os.kill(before, signal.SIGKILL)
        wait_until(lambda: stack.worker_pid() not in (None, before), timeout=30)
        wait_until(stack.signals_match_status, timeout=30)
        time.sleep(3.0)
        assert replayed(stack, printed) == []
        assert consumed(stack) == 0

        # The broker killed: a fresh Tansu gets only the kept files that had not landed.
        late = feed(tmp_path / "late.csv", "xian-hitech", [("2021-03", "30")])
        assert stack.cli("produce", "--no-progress", str(late)).returncode == 0
        tansu = stack.broker_pid()
        assert tansu is not None
        os.kill(tansu, signal.SIGKILL)
        wait_until(lambda: sum("ready" in line for line in stack.lines) >= 3, timeout=90)
        wait_until(
            lambda: '"event": "replay"' in log.read_text() or '"event":"replay"' in log.read_text(),
            timeout=30,
        )
        assert not any("early.csv" in line for line in replayed(stack, printed))

        # A replay by hand re-publishes every kept file: the dead letter stays one row.
        seen = consumed(stack)
        assert stack.cli("produce", "--replay", "--no-progress").returncode == 2
        wait_until(lambda: consumed(stack) >= seen + 3, timeout=60)
        time.sleep(2.0)
        assert len(deadletters(stack, "early.csv")) == 1
        assert all(r["origin"] == "early.csv" for r in deadletters(stack, "early.csv"))
        rows = {
            (r["period"], r["actual"])
            for r in stack.get_json("/api/status/history?zone=xian-hitech")
        }
        assert rows  # the figures are all in

        # `parkpulse run` stopped and started again on the same DATA_DIR: within seconds the
        # new worker exports exactly what `parkpulse status` shows, though no figure changed.
        wait_until(stack.signals_match_status, timeout=30)
        shown = stack.exported_statuses()
        assert shown and any(key[3] != "no_data" for key in shown)
        assert stack.stop() == 0
        stack = start_stack(tmp_path / "stack", "--no-demo", "--no-scoreboard")
        wait_until(stack.signals_match_status, timeout=30)
        assert stack.exported_statuses() == shown
    finally:
        assert stack.stop() == 0
