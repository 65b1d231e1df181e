"""``parkpulse report --month`` on what a real stack wrote (Tansu + Faust worker + chdb with the
demo feed, the session's ``demo_run``): the HTML brief in headless Chromium (DOM + screenshot),
the PDF printed by Chromium, and a clear error where Chromium is missing."""

from __future__ import annotations

import os
import re
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from tests.browser import render
from tests.conftest import PARKPULSE, DemoRun

pytestmark = pytest.mark.integration
JINAN = "jinan-hitech"
LAGGING = {"at_risk", "behind"}
ORDER = {"achieved": 0, "on_track": 1, "at_risk": 2, "behind": 3}


def report(demo_run: DemoRun, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    """``parkpulse report`` on the demo run's data directory (the stack is stopped: the store)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKPULSE_")}
    env["PARKPULSE_DATA_DIR"] = str(demo_run.data_dir)
    env.update(extra_env)
    return subprocess.run(
        [PARKPULSE, "report", *args], env=env, capture_output=True, text=True, timeout=180
    )


def status_as_of(history: list[dict[str, Any]], month: str) -> dict[tuple, dict[str, Any]]:
    """(zone, indicator, plan) -> its latest row at or before ``month``."""
    latest: dict[tuple, dict[str, Any]] = {}
    for r in sorted(history, key=lambda r: r["period"]):
        if r["period"] <= month:
            latest[(r["zone"], r["indicator"], r["plan"])] = r
    return latest


def moves(history: list[dict[str, Any]], month: str, previous: str) -> dict[str, set[tuple]]:
    """Keys that fell behind / recovered between the two months, read straight off the rows."""
    now, before = status_as_of(history, month), status_as_of(history, previous)
    out: dict[str, set[tuple]] = defaultdict(set)
    for key, row in now.items():
        was = before.get(key, {}).get("status")
        if row["status"] in LAGGING and (was not in ORDER or ORDER[row["status"]] > ORDER[was]):
            out["fell_behind"].add(key)
        if row["status"] in ("achieved", "on_track") and was in LAGGING:
            out["recovered"].add(key)
    return out


def listed(dom: str, zone: str, name: str) -> set[tuple]:
    section = dom[dom.index(f'<section class="zone" data-zone="{zone}"') :]
    section = section[: section.index("</section>")]
    match = re.search(rf'<ul class="changes" data-list="{name}">(.*?)</ul>', section, re.S)
    items = re.findall(
        r'<li data-indicator="([^"]+)" data-plan="([^"]+)"', match.group(1) if match else ""
    )
    return {(zone, ind, plan) for ind, plan in items}


def test_the_html_brief_lists_what_fell_behind_and_what_recovered(
    demo_run: DemoRun, tmp_path: Path
) -> None:
    history = demo_run.history
    # The month of the most moves in the demo data, so the brief has something to say.
    months = sorted({r["period"] for r in history})
    month, previous = max(
        zip(months[1:], months, strict=False),
        key=lambda pair: sum(len(v) for v in moves(history, *pair).values()),
    )
    expected = moves(history, month, previous)
    assert expected["fell_behind"] or expected["recovered"]
    out = tmp_path / "brief.html"
    result = report(demo_run, "--month", month, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    dom = render(out.as_uri(), tmp_path, tmp_path / "brief.png", "1400,3000")
    zones = re.findall(r'<section class="zone" data-zone="([^"]+)"', dom)
    assert sorted(zones) == sorted({k[0] for k in status_as_of(history, month)})
    for zone in zones:
        for name in ("fell_behind", "recovered"):
            want = {k for k in expected[name] if k[0] == zone}
            assert listed(dom, zone, name) == want, (zone, name)
    assert "月度简报" in dom and "新落后或预警" in dom and "济南高新技术产业开发区" in dom


def test_one_zone_by_its_chinese_name_in_english(demo_run: DemoRun, tmp_path: Path) -> None:
    out = tmp_path / "jinan.html"
    args = ("--month", "2023-12", "--zone", "济南高新区", "--out", str(out))
    result = report(demo_run, *args, PARKPULSE_LANG="en")
    assert result.returncode == 0, result.stderr
    page = out.read_text(encoding="utf-8")
    assert re.findall(r'<section class="zone" data-zone="([^"]+)"', page) == [JINAN]
    latest = status_as_of(demo_run.history, "2023-12")
    evaluated = [k for k, r in latest.items() if k[0] == JINAN and r["status"] in ORDER]
    assert page.count("<tr data-indicator=") == len(evaluated)
    assert "monthly brief 2023-12" in page and "Jinan" in page and "落后" not in page


def test_the_pdf_brief_is_printed_by_chromium(demo_run: DemoRun, tmp_path: Path) -> None:
    out = tmp_path / "brief.pdf"
    result = report(demo_run, "--month", "2023-06", "--format", "pdf", "--out", str(out))
    assert result.returncode == 0, result.stderr
    data = out.read_bytes()
    assert data.startswith(b"%PDF-")
    pages = int(re.search(rb"/Type\s*/Pages\b[^>]*?/Count\s+(\d+)", data, re.S).group(1))
    assert pages >= len({r["zone"] for r in demo_run.history})  # a page per zone at least


def test_without_chromium_a_pdf_is_one_line_and_a_failure(
    demo_run: DemoRun, tmp_path: Path
) -> None:
    out = tmp_path / "brief.pdf"
    result = report(demo_run, "--month", "2023-06", "--format", "pdf", "--out", str(out), PATH="")
    assert result.returncode == 1 and not out.exists()
    assert result.stderr.count("\n") == 1 and "Chromium" in result.stderr


def test_bad_months_and_zones_are_one_line_errors(demo_run: DemoRun) -> None:
    bad = report(demo_run, "--month", "2023-13")
    assert bad.returncode == 1 and "YYYY-MM" in bad.stderr and bad.stderr.count("\n") == 1
    early = report(demo_run, "--month", "1999-01")
    assert early.returncode == 1 and "no status rows" in early.stderr
    nowhere = report(demo_run, "--month", "2023-06", "--zone", "no-such-zone")
    assert nowhere.returncode == 1 and "--zone" in nowhere.stderr
    assert nowhere.stderr.count("\n") == 1
