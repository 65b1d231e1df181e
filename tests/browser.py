"""Headless Chromium for page tests: the rendered DOM and a screenshot of a URL or file."""

from __future__ import annotations

import subprocess
from pathlib import Path

from parkpulse.chromium import CHROMIUM_FLAGS


def render(url: str, work: Path, shot: Path | None = None, size: str = "1400,2000") -> str:
    """The DOM Chromium renders for ``url``; with ``shot``, also a screenshot there."""
    common = ["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={work / 'chromium-profile'}"]
    dom = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    if shot is not None:
        result = subprocess.run(
            [*common, f"--screenshot={shot}", f"--window-size={size}", url],
            capture_output=True,
            timeout=120,
        )
        assert result.returncode == 0 and shot.stat().st_size > 10_000, result.stderr[-2000:]
    return dom.stdout
