"""The bureau's own tables on the embedded stack (real Tansu broker, Faust worker, chdb):
a plan table and a bulletin in, status rows out, asked for by Chinese names."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import orjson
import pytest

from tests.conftest import RunningStack, wait_until
from tests.fault_support import HEADER
from tests.sheets import write_sheet
from tests.test_plan_table import TABLE_2, write_xlsx

pytestmark = pytest.mark.integration

ZONE = "wuxi-hitech"
HEADER_ZH = ["指标名称", "计量单位", "本月", "1-6月", "同比增长(%)"]


def bulletin(path: Path, import_export: float, budget: object = 60.2) -> Path:
    book = openpyxl.Workbook()
    ws = book.active
    assert ws is not None
    ws.title = "1-6月"
    ws.append(["无锡高新区2021年1-6月主要经济指标"])
    ws.append(HEADER_ZH)
    ws.append(["外贸进出口总额", "亿元", None, import_export, 30.5])
    ws.append(["一般公共预算收入", "亿元", None, budget, 8.0])
    ws.append(["注:快报数。"])
    book.save(path)
    return path


def test_plan_table_and_bulletin_in_status_by_name_out(stack: RunningStack, tmp_path: Path) -> None:
    plan = write_xlsx(tmp_path / "plan.xlsx", TABLE_2)
    result = stack.cli("targets", str(plan), "--plan", "it-bureau", "--zone", "无锡高新区")
    assert result.returncode == 0, result.stderr
    assert "31 published, 0 rejected" in result.stdout

    first = bulletin(tmp_path / "first.xlsx", 400.1)
    result = stack.cli("produce", str(first))
    assert result.returncode == 0, result.stderr
    assert "2 published, 0 rejected" in result.stdout
    result = stack.cli("produce", str(first))  # the same workbook twice changes nothing
    assert result.returncode == 0 and "revised" not in result.stdout

    def trade_row(value: float) -> dict | None:
        result = stack.cli(
            "status", "--zone", "无锡高新技术产业开发区", "--indicator", "进出口总额",
            "--plan", "it-bureau", "--format", "json",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        rows = orjson.loads(result.stdout)
        return rows[0] if rows and rows[0]["actual"] == value else None

    row = wait_until(lambda: trade_row(400.1), timeout=60)
    assert (row["zone"], row["indicator"], row["period"]) == (
        ZONE,
        "import_export_total",
        "2021-06",
    )

    second = bulletin(tmp_path / "second.xlsx", 410.0)
    result = stack.cli("produce", str(second))
    assert result.returncode == 0, result.stderr
    assert "1 revised" in result.stdout
    wait_until(lambda: trade_row(410.0), timeout=60)


def test_bad_cells_and_unknown_filters_are_one_line(stack: RunningStack, tmp_path: Path) -> None:
    bad = bulletin(tmp_path / "bad.xlsx", 1.0, budget="abc")
    result = stack.cli("produce", str(bad))
    assert result.returncode == 2
    assert "1-6月!D4 bad_value" in result.stderr

    def dead() -> dict | None:
        page = orjson.loads(stack.cli("deadletter", "--format", "json").stdout)
        return next((r for r in page["rows"] if r["origin"] == "bad.xlsx:1-6月!D4"), None)

    letter = wait_until(dead, timeout=60)
    assert letter["reason"] == "bad_value" and letter["line"] == 4
    # Asked for by the file's name (as produce's hint says), the cell's dead letter is there.
    by_file = stack.cli("deadletter", "--origin", "bad.xlsx", "--format", "json")
    assert [r["origin"] for r in orjson.loads(by_file.stdout)["rows"]] == ["bad.xlsx:1-6月!D4"]
    by_path = stack.cli("deadletter", "--origin", str(bad), "--format", "json")
    assert orjson.loads(by_path.stdout)["total"] == 1

    for value in ("无锡高薪区", "a b&c"):
        result = stack.cli("status", "--zone", value)
        assert result.returncode == 1
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        assert result.stderr.startswith(f"parkpulse: --zone {value!r} is not a known zone")
    assert "nearest: wuxi-hitech" in stack.cli("status", "--zone", "无锡高薪区").stderr


def test_a_bulletin_figure_the_worker_rejects_names_its_cell(
    stack: RunningStack, tmp_path: Path
) -> None:
    """A figure already stored from the SDMX feed (revision 0) comes again, changed, in a
    bulletin the ledger has not seen: only the worker knows it conflicts, and its dead letter
    and produce's summary name the bulletin's cell, as the producer's own rejects do."""
    feed = tmp_path / "june2020.csv"
    feed.write_text(
        f"{HEADER}\ndataflow,PARKPULSE:ZONE_MONTHLY(1.0),I,{ZONE},retail_sales,2020-06,YTD,"
        "150.0,CNY_100M,,A,0,2020-07-15T09:00:00+08:00\n",
        encoding="utf-8",
    )
    assert stack.cli("produce", str(feed)).returncode == 0
    title = "无锡高新区2020年1-6月主要经济指标"
    sheet = [[title], HEADER_ZH, ["社会消费品零售总额", "亿元", "", 155.0, ""]]
    result = stack.cli(
        "produce", str(write_sheet(tmp_path / "conflict.xlsx", sheet, sheet="1-6月"))
    )
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "conflict.xlsx: 0 published, 1 rejected (1 by the worker)" in result.stdout
    assert "conflict.xlsx:1-6月!D3 conflict:" in result.stderr

    def dead() -> dict | None:
        page = stack.cli("deadletter", "--origin", "conflict.xlsx", "--format", "json").stdout
        return next(iter(orjson.loads(page)["rows"]), None)

    letter = wait_until(dead, timeout=60)
    assert (letter["origin"], letter["reason"], letter["line"]) == (
        "conflict.xlsx:1-6月!D3",
        "conflict",
        3,
    )


def test_a_table_that_is_no_table_is_refused_whole_and_a_files_cells_are_its_own(
    stack: RunningStack, tmp_path: Path
) -> None:
    """A workbook (or Chinese text) holding no bulletin is no feed: exit 1, one line, one dead
    letter under the file's name, not kept for replays; ``deadletter --origin FILE`` finds a
    bulletin's cell rejects (origin ``FILE:sheet!cell``) as its own."""
    book = openpyxl.Workbook()
    book.active.append(["hello", "world"])  # type: ignore[union-attr]
    book.save(tmp_path / "no-bulletin.xlsx")
    (tmp_path / "junk.xlsx").write_bytes(bytes(range(1, 256)) * 20)  # no zip, no workbook
    (tmp_path / "纪要.csv").write_text("会议纪要\n今天开会\n", encoding="utf-8")
    for name in ("no-bulletin.xlsx", "junk.xlsx", "纪要.csv"):
        result = stack.cli("produce", str(tmp_path / name))
        assert result.returncode == 1, (name, result.stdout, result.stderr)
        (line,) = [x for x in result.stderr.splitlines() if not x.startswith("{")]
        assert line.startswith(f"parkpulse: {tmp_path / name} is not a feed: "), line
        assert "published" not in result.stdout
        feeds = stack.data_dir / "feeds"
        assert not [p for p in feeds.rglob("*") if p.name.endswith(f"-{name}")]  # not kept

        def one(name: str = name) -> dict | None:
            page = orjson.loads(
                stack.cli("deadletter", "--origin", name, "--format", "json").stdout
            )
            return page if page["total"] == 1 else None

        (letter,) = wait_until(one, timeout=60)["rows"]
        assert (letter["origin"], letter["reason"]) == (name, "malformed")
        assert letter["detail"].startswith("the file is not a feed: ")

    cells = bulletin(tmp_path / "cells.xlsx", 1.0, budget="abc")
    assert stack.cli("produce", str(cells)).returncode == 2

    def of_file() -> dict | None:
        page = orjson.loads(
            stack.cli("deadletter", "--origin", "cells.xlsx", "--format", "json").stdout
        )
        return page if page["total"] == 1 else None

    (letter,) = wait_until(of_file, timeout=60)["rows"]
    assert letter["origin"] == "cells.xlsx:1-6月!D4"
