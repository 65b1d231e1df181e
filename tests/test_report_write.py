"""The HTML report written by several workers into one DATA_DIR (``docker compose up --scale
worker=3`` shares the worker volume): every write completes, the page on disk is whole."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from parkpulse.report import keep_report_fresh, write_report
from parkpulse.schemas.catalogue import load_catalogue

CATALOGUE = load_catalogue()
ZONES = ["jinan-hitech", "wuxi-hitech", "xian-hitech"]


class Store:
    """The reads write_report makes, each giving the event loop a turn (as the store's thread
    does), so concurrent writes interleave zone by zone."""

    def status_zones(self) -> list[str]:
        return ZONES

    def status_rows(self, zone: str) -> list[dict[str, Any]]:
        return []

    async def arun(self, fn: Callable[..., Any], *args: Any) -> Any:
        await asyncio.sleep(0)
        return fn(*args)


def test_replicas_writing_one_report_each_finish_and_leave_a_whole_page(tmp_path: Path) -> None:
    path = tmp_path / "report.html"

    async def three() -> list[Path]:
        store: Any = Store()
        return list(await asyncio.gather(*(write_report(store, CATALOGUE, path) for _ in "abc")))

    assert asyncio.run(three()) == [path] * 3
    page = path.read_text(encoding="utf-8")
    assert page.count("</body></html>") == 1 and page.endswith("</body></html>")
    assert all(page.count(f"<section id='{zone}'>") == 1 for zone in ZONES)
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temporary file left
    assert path.stat().st_mode & 0o777 == 0o644


class FingerprintStore(Store):
    def status_fingerprint(self) -> int:
        return 1


def test_a_starting_report_waits_for_the_gauges(tmp_path: Path) -> None:
    """A restarted worker exports its gauges before it spends the interpreter on the page."""
    path, shown = tmp_path / "report.html", threading.Event()

    async def start() -> tuple[bool, bool]:
        store: Any = FingerprintStore()
        task = asyncio.create_task(
            keep_report_fresh(store, CATALOGUE, path, every=0.05, after=shown)
        )
        await asyncio.sleep(0.5)
        before = path.exists()
        shown.set()
        for _ in range(100):
            await asyncio.sleep(0.05)
            if path.exists():
                break
        task.cancel()
        return before, path.exists()

    assert asyncio.run(start()) == (False, True)
