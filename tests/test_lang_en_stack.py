"""PARKPULSE_LANG=en on the running stack: the board, the static report and what alerts are
told (parkpulse_language_info) speak English; the JSON keeps its codes."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import orjson
import pytest

from parkpulse.vocabulary import STATUS_LABELS
from tests.conftest import start_stack, wait_until

pytestmark = pytest.mark.integration
CHINESE = re.compile(r"[\u4e00-\u9fff]")


def page(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return resp.read().decode("utf-8")


def test_an_english_stack(tmp_path: Path) -> None:
    stack = start_stack(tmp_path / "en", "--no-scoreboard", settings={"PARKPULSE_LANG": "en"})
    try:
        report = stack.data_dir / "report.html"
        wait_until(
            lambda: report.exists() and "Jinan High-tech" in report.read_text(encoding="utf-8"),
            timeout=120,
            every=0.5,
        )
        text = report.read_text(encoding="utf-8")
        assert "attainment" in text and "gap pp" in text and "CNY 100M" in text
        assert "状态" not in text and "济南高新技术产业开发区" not in text
        rows = stack.get_json("/api/status")
        assert rows and {r["status"] for r in rows} <= set(STATUS_LABELS["en"])  # codes
        board = page(stack.api + "/")
        assert "share on track" in board and "Jinan High-tech" in board
        assert not CHINESE.search(board.replace("★", ""))
        assert "正常及以上占比" in page(stack.api + "/?lang=zh")
        labels = orjson.loads(page(stack.api + "/api/labels"))
        assert labels["lang"] == "en" and labels["status"]["at_risk"] == "at risk"
        assert stack.metric("parkpulse_language_info", lang="en") == 1.0
        assert stack.metric("parkpulse_language_info", lang="zh") == 0.0
    finally:
        assert stack.stop() == 0
