"""The clerk's view of ``parkpulse produce`` and ``parkpulse deadletter`` on the embedded stack
(real Tansu, Faust worker and chdb, started once per session by the ``stack`` fixture).

- A file that is no feed (empty, header only, a folder, a text or a binary file) exits 1 with one
  line saying what it is not, is not kept for replays, and a binary file is one dead letter.
- A figure the worker rejects (a conflict with a figure already stored) is in produce's summary
  and exit status, not only in the dead-letter table later.
- ``deadletter`` says how many of how many it shows, filters by origin and reason, and its JSON
  holds every column in full.

Zone tianjin-binhai-hitech is this file's: no other test of the session stack publishes it.
"""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import PARKPULSE, RunningStack
from tests.fault_support import HEADER

pytestmark = pytest.mark.integration

ZONE = "tianjin-binhai-hitech"


def feed_line(period: str, value: str, *, zone: str = ZONE, indicator: str = "retail_sales") -> str:
    return (
        f"dataflow,PARKPULSE:ZONE_MONTHLY(1.0),I,{zone},{indicator},{period},YTD,{value},"
        "CNY_100M,,A,0,2019-04-15T09:00:00+08:00"
    )


def write(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def kept(stack: RunningStack, *names: str) -> set[str]:
    """The files of these names kept for replays under DATA_DIR/feeds (as <digest>-<name>)."""
    root = stack.data_dir / "feeds"
    return {p.name for p in root.rglob("*") if p.is_file() and p.name.split("-", 1)[1] in names}


def said(result: subprocess.CompletedProcess[str]) -> list[str]:
    """What produce said on stderr to a person (the JSON lines are its logs)."""
    return [line for line in result.stderr.splitlines() if not line.startswith("{")]


def page(stack: RunningStack, *args: str) -> dict[str, Any]:
    result = stack.cli("deadletter", "--format", "json", *args)
    assert result.returncode == 0, result.stderr
    return orjson.loads(result.stdout)


def api_status(stack: RunningStack, query: dict[str, str]) -> tuple[int, Any]:
    url = f"{stack.api}/api/deadletter?{urllib.parse.urlencode(query)}"
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return int(resp.status), orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), orjson.loads(exc.read() or b"null")


def test_a_file_that_is_no_feed_exits_1_with_one_line_and_is_not_kept(
    stack: RunningStack, tmp_path: Path
) -> None:
    binary = tmp_path / "photo.csv"
    binary.write_bytes(bytes(range(256)) * 40 + b"\n" * 104)  # 144 "lines" of junk
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "folder").mkdir()
    cases = {
        tmp_path / "empty.csv": "is empty",
        write(tmp_path / "header.csv", HEADER): "has a header but no rows",
        tmp_path / "folder": "is a folder",
        write(tmp_path / "notes.txt", "minutes of the meeting", "nothing to see"): "not a feed",
        binary: "binary",
    }
    for path, what in cases.items():
        result = stack.cli("produce", str(path))
        assert result.returncode == 1, (path, result.stdout, result.stderr)
        (line,) = said(result)
        assert line.startswith(f"parkpulse: {path} ") and what in line, line
        assert "published" not in result.stdout
    names = [path.name for path in cases]
    assert kept(stack, *names) == set()  # nothing kept for a replay

    # A feed beside them is still published and kept; the exit status still says 1.
    feed = write(tmp_path / "beside.csv", HEADER, feed_line("2018-03", "7.5"))
    result = stack.cli("produce", str(feed), str(binary))
    assert result.returncode == 1, result.stderr
    assert "beside.csv: 1 published, 0 rejected" in result.stdout
    assert len(kept(stack, "beside.csv", *names)) == 1

    # The binary file is one dead letter for the whole file (twice published: one row, since
    # a dead letter is kept once per file, line and reason), not one per line.
    dead = page(stack, "--origin", "photo.csv")
    assert dead["total"] == 1, dead
    (row,) = dead["rows"]
    assert (row["reason"], row["line"]) == ("malformed", 1)
    assert "binary" in row["detail"]


def test_a_conflict_with_a_stored_figure_is_in_the_summary_and_exit_status(
    stack: RunningStack, tmp_path: Path
) -> None:
    first = write(tmp_path / "march.csv", HEADER, feed_line("2019-03", "10.5"))
    result = stack.cli("produce", str(first))
    assert result.returncode == 0, result.stderr
    assert "march.csv: 1 published, 0 rejected" in result.stdout

    # The bureau sends March again, changed, without a higher revision, beside a new April.
    changed, april = feed_line("2019-03", "11.5"), feed_line("2019-04", "14")
    second = write(tmp_path / "march-again.csv", HEADER, changed, april)
    result = stack.cli("produce", str(second))
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "march-again.csv: 1 published, 1 rejected (1 by the worker)" in result.stdout
    assert "march-again.csv:2 conflict:" in result.stderr  # the line, the reason, the detail
    assert "decided by the worker" in result.stderr

    # Sent again, it is rejected again; the first file, sent again, is not.
    again = stack.cli("produce", str(second))
    assert again.returncode == 2 and "1 published, 1 rejected" in again.stdout, again.stderr
    repeat = stack.cli("produce", str(first))
    assert repeat.returncode == 0 and "1 published, 0 rejected" in repeat.stdout, repeat.stderr

    # Corrected at once, under the same name: the earlier conflict of its line 2 is not news.
    write(second, HEADER, feed_line("2019-03", "10.5"), april)
    fixed = stack.cli("produce", str(second))
    assert fixed.returncode == 0, (fixed.stdout, fixed.stderr)
    assert "march-again.csv: 2 published, 0 rejected" in fixed.stdout


def test_produce_without_a_verdict_says_so_in_one_line(stack: RunningStack, tmp_path: Path) -> None:
    feed = write(tmp_path / "may.csv", HEADER, feed_line("2019-05", "20"))
    result = stack.cli("produce", "--wait", "0.001", str(feed))
    assert result.returncode == 0, result.stderr
    assert "may.csv: 1 published, 0 rejected" in result.stdout
    (line,) = said(result)
    assert "no verdict" in line and "may still come" in line and "--origin may.csv" in line


def test_a_producer_elsewhere_asks_the_worker_api_it_is_given(
    stack: RunningStack, tmp_path: Path
) -> None:
    """As from a host beside a production stack: --broker and --api, no run.json to find."""
    write(tmp_path / "june.csv", HEADER, feed_line("2019-06", "30"))
    feed = write(tmp_path / "june-again.csv", HEADER, feed_line("2019-06", "31"))
    env = {**stack.env(), "PARKPULSE_DATA_DIR": str(tmp_path / "elsewhere")}

    def produce(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [PARKPULSE, "produce", "--broker", stack.broker, *args]
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)

    assert produce("--api", stack.api, str(tmp_path / "june.csv")).returncode == 0
    result = produce("--api", stack.api, str(feed))
    assert result.returncode == 2 and "(1 by the worker)" in result.stdout, result.stderr

    blind = produce(str(feed))  # nothing to ask: it says so, and what it knows is its status
    assert blind.returncode == 0 and "1 published, 0 rejected" in blind.stdout
    (line,) = said(blind)
    assert "no verdict: no worker API (--api URL)" in line and "may still come" in line


def test_deadletter_says_how_many_it_shows_and_filters(stack: RunningStack, tmp_path: Path) -> None:
    bad = [feed_line(f"2017-{m:02d}", "1", zone="atlantis-hitech") for m in range(1, 6)]
    bad += [feed_line("2017-06", "NaN"), feed_line("2017-07", "1", indicator="happiness")]
    feed = write(tmp_path / "many-bad.csv", HEADER, *bad, feed_line("2017-08", "3"))
    assert stack.cli("produce", str(feed)).returncode == 2

    result = stack.cli("deadletter", "--origin", str(feed), "--limit", "3")  # a path: its name
    assert result.returncode == 0, result.stderr
    assert "3 of 7 shown" in result.stdout

    everything = page(stack, "--origin", "many-bad.csv")
    assert everything["total"] == 7 and len(everything["rows"]) == 7
    assert everything["by_reason"] == {"unknown_zone": 5, "bad_value": 1, "unknown_indicator": 1}
    assert {r["origin"] for r in everything["rows"]} == {"many-bad.csv"}
    full = next(r for r in everything["rows"] if r["line"] == 2)
    assert full["raw"] == bad[0] and "atlantis-hitech" in full["detail"]  # nothing cut
    assert set(full) == {"received_at", "source_topic", "reason", "detail", "raw", "origin", "line"}

    zones = page(stack, "--origin", "many-bad.csv", "--reason", "unknown_zone", "--limit", "2")
    assert zones["total"] == 5 and len(zones["rows"]) == 2
    assert {r["reason"] for r in zones["rows"]} == {"unknown_zone"}

    everyone = page(stack, "--limit", "1")
    assert everyone["total"] >= 7 and len(everyone["rows"]) == 1


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ({"reason": "not_a_reason"}, 400),
        ({"limit": "0"}, 400),
        ({"limit": "100001"}, 400),
        ({"since": "yesterday"}, 400),
        ({"origin": "x" * 257}, 400),
        ({"colour": "red"}, 400),
        ({"origin": "x' OR '1'='1"}, 200),
        ({"origin": "南宁高新区.csv", "reason": "conflict"}, 200),
    ],
)
def test_the_deadletter_api_checks_its_parameters(
    stack: RunningStack, query: dict[str, str], status: int
) -> None:
    got, body = api_status(stack, query)
    assert got == status, body
    if status == 200:
        assert body["total"] == 0 and body["rows"] == []  # a value, never SQL
    else:
        assert "error" in body
