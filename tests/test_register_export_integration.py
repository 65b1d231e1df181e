"""A register's export on the embedded stack (real Tansu broker, Faust worker, chdb): rows in,
distinct monthly counts and the figures derived from them out, a bad row's dead letter with its
line and cell."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import RunningStack, wait_until
from tests.test_register_export import HEADER, write_csv, write_xlsx

pytestmark = pytest.mark.integration

ZONE = "yantai-hitech"  # test_registrations counts all of xiamen's
BUREAU = "烟台高新技术产业开发区市场监督管理局"
ROWS: list[list[Any]] = [
    [1, "91370600MAXM000001", "烟台甲公司", BUREAU, "", date(2018, 8, 4),
     "有限责任公司(自然人独资)", "I6510", 100],
    [2, "91370600MAXM000002", "烟台乙公司", BUREAU, "", "2018/8/5",
     "股份有限公司(非上市)", "C3981", 2000],
    [3, "92370600MAXM000003", "莱山区某餐馆", "", "烟台高新区", "2018年8月6日",
     "个体工商户", "H6210", None],
    [4, "91370600MAXM000001", "烟台甲公司", BUREAU, "", date(2018, 8, 4),
     "有限责任公司(自然人独资)", "I6510", 100],  # the same entity again
    [5, "91370600MAXM000005", "烟台丙公司", BUREAU, "", "2018-08-32",
     "有限责任公司", "I6510", 10],  # no such day: line 7, cell F7
    [6, "91370600MAXM000006", "烟台丁公司", BUREAU, "", "2018-07-28",
     "有限责任公司", "M7320", 50],
]  # fmt: skip
assert HEADER[5] == "成立日期"


MONTHS = ("2018-07", "2018-08")  # no other test registers there: the stack is shared


def counts(stack: RunningStack) -> dict[tuple[str, str], int]:
    rows = [r for m in MONTHS for r in stack.get_json(f"/api/registrations?zone={ZONE}&month={m}")]
    return {(r["month"], r["entity_type"]): int(r["registrations"]) for r in rows}


def figures(stack: RunningStack) -> dict[tuple[str, str], float]:
    rows = stack.get_json(f"/api/registrations/figures?zone={ZONE}")
    return {
        (r["indicator"], r["period"]): r["value"]
        for r in rows
        if r["basis"] == "MONTH" and r["period"] in MONTHS
    }


def test_a_register_export_becomes_monthly_counts(stack: RunningStack, tmp_path: Path) -> None:
    export = write_xlsx(tmp_path / "export.xlsx", ROWS)
    result = stack.cli("produce", "--registrations", str(export))
    assert result.returncode == 2, result.stderr  # one row rejected, the rest published
    assert "export.xlsx: 4 published, 1 rejected, 1 duplicates" in result.stdout
    assert "登记!F7 bad_period" in result.stderr and "Traceback" not in result.stderr

    expected = {
        ("2018-07", "enterprise"): 1,
        ("2018-08", "enterprise"): 2,
        ("2018-08", "individual_business"): 1,
    }
    wait_until(lambda: counts(stack) == expected or None, timeout=60)
    derived = {
        ("new_enterprises", "2018-07"): 1.0,
        ("new_enterprises", "2018-08"): 2.0,
        ("new_market_entities", "2018-07"): 1.0,
        ("new_market_entities", "2018-08"): 3.0,
    }
    wait_until(lambda: figures(stack) == derived or None, timeout=60)

    def dead() -> dict[str, Any] | None:
        page = orjson.loads(stack.cli("deadletter", "--format", "json").stdout)
        return next((r for r in page["rows"] if r["origin"] == "export.xlsx:登记!F7"), None)

    letter = wait_until(dead, timeout=60)
    assert (letter["reason"], letter["line"]) == ("bad_period", 7)
    assert letter["source_topic"] == "parkpulse.registrations"

    # The same entities again as a GBK CSV, known by its header, with one new one: only the
    # new one counts.
    again = ROWS[:3] + [
        [7, "91370600MAXM000007", "烟台戊公司", BUREAU, "", "2018-08-09", "合伙企业", "L7212", 5]
    ]
    result = stack.cli("produce", str(write_csv(tmp_path / "again.csv", again)))
    assert result.returncode == 0, result.stderr
    assert "again.csv: 4 published, 0 rejected" in result.stdout
    expected[("2018-08", "enterprise")] = 3
    wait_until(lambda: counts(stack) == expected or None, timeout=60)
    derived[("new_enterprises", "2018-08")] = 3.0
    derived[("new_market_entities", "2018-08")] = 4.0
    wait_until(lambda: figures(stack) == derived or None, timeout=60)
