"""Headless Chromium, for what a browser does best: printing a page to PDF.

The flags keep Chromium off the network and out of the user's profile; the page tests use the
same ones (tests/browser.py). Chromium is an optional system package (scripts/system-deps.sh):
without it, :func:`print_pdf` raises :class:`ChromiumMissing` with one line saying so.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


class ChromiumMissing(RuntimeError):
    """No Chromium on PATH."""


class ChromiumFailed(RuntimeError):
    """Chromium ran but produced no PDF."""


def find_chromium() -> str:
    """The path of a Chromium on PATH; ChromiumMissing when there is none."""
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise ChromiumMissing(
        "PDF needs headless Chromium, and none is on PATH (install it with "
        "scripts/system-deps.sh, or use --format html)"
    )


def print_pdf(page: Path, pdf: Path, timeout: float = 120) -> Path:
    """Print the HTML file ``page`` to ``pdf`` (A4, no header or footer) and return ``pdf``."""
    binary = find_chromium()
    with tempfile.TemporaryDirectory(prefix="parkpulse-chromium-") as profile:
        result = subprocess.run(
            [
                binary,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                "--no-pdf-header-footer",
                f"--print-to-pdf={pdf}",
                page.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    if result.returncode != 0 or not pdf.exists() or pdf.stat().st_size == 0:
        tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise ChromiumFailed(f"Chromium could not print {page} to PDF: {tail}")
    return pdf
