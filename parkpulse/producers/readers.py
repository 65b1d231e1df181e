"""Which reader a published file goes through: the SDMX-shaped feed and plan_targets.csv, or
the bureau's own tables (a bulletin, a plan's indicator table, a register's export).

A file is recognised by its suffix (a workbook is never an SDMX feed) and, for CSV, by its
header: the SDMX and plan_targets.csv headers name their key columns in English. The options
a file was published with are kept beside its archived copy (``read_options.py``), so ``produce
--replay`` reads it the same way again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from parkpulse.producers.feed import (
    FEED_KEY_COLUMNS,
    TARGET_KEY_COLUMNS,
    FeedRow,
    NotAFeed,
    read_feed,
    read_targets,
)
from parkpulse.producers.read_options import ReadOptions, kept_options
from parkpulse.producers.sheets import is_workbook
from parkpulse.schemas.catalogue import Catalogue
from parkpulse.schemas.errors import RejectedInput

SNIFF_BYTES = 64 * 1024


def rows_of(
    path: Path,
    kind: str,
    catalogue: Catalogue,
    *,
    now: datetime,
    options: ReadOptions | None = None,
) -> Iterable[FeedRow]:
    """The validated rows of one file of ``kind`` ("observations" | "targets" |
    "registrations")."""
    options = options or ReadOptions()
    kept = kept_options(path)
    if kept is not None and not options.kept():  # a replayed copy: read as first published
        options = replace(kept, ledger=options.ledger)
    if kind == "registrations":
        from parkpulse.producers.register_export import read_export

        return read_export(path, catalogue, now=now, options=options)
    if kind == "targets":
        if bureau_table(path, kind):
            from parkpulse.producers.plan_table import read_plan_table

            return read_plan_table(path, catalogue, plan=options.plan, zone=options.zone)
        return read_targets(path, catalogue)
    if bureau_table(path, kind):
        from parkpulse.producers.bulletin import read_bulletin

        return read_bulletin(path, catalogue, now=now, options=options)
    return read_feed(path, catalogue, now=now)


def bureau_table(path: Path, kind: str) -> bool:
    """Whether a file of ``kind`` is a bureau's own table (a register export, a workbook, or text
    in Chinese without our feed's key columns) rather than one of our feed formats."""
    if not path.is_file():
        return False
    if kind == "registrations" or is_workbook(path):
        return True
    with path.open("rb") as fh:
        if b"\x00" in fh.read(SNIFF_BYTES):  # binary, and no workbook: no table of anyone's
            return False
    columns = TARGET_KEY_COLUMNS if kind == "targets" else FEED_KEY_COLUMNS
    return not _english_header(path, columns)


def table_refusal(path: Path, first: object) -> NotAFeed | None:
    """Whether a bureau table is no table at all, judged by the first item its reader gave.

    The bulletin, plan-table and register-export readers say so in one whole-file reject (line
    0, ``malformed``) and nothing else: not a readable workbook, or no sheet with their header.
    Such a file is refused like any other file that is no feed (one line, exit 1, one dead
    letter, never kept for replays), not reported as a feed whose one row was rejected."""
    if not isinstance(first, FeedRow) or first.line != 0 or first.error is None:
        return None
    what = f"is not a feed: {first.error.detail}"
    # The file's dead letter, as any refused file's: the file's origin (no cell), "the file …".
    whole = replace(first, place="", error=RejectedInput("malformed", f"the file {what}"))
    return NotAFeed(path, what, whole)


def kind_of(path: Path, kind: str) -> str:
    """``kind``, except that a file given as observations whose header is a register export's
    (统一社会信用代码, 成立日期 …) is one of registrations."""
    if kind == "observations":
        from parkpulse.producers.register_export import looks_like_export

        if looks_like_export(path):
            return "registrations"
    return kind


def _english_header(path: Path, columns: tuple[str, ...]) -> bool:
    """Whether a text file is one of ours: JSON Lines, or a CSV header with ``columns``."""
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        return True
    try:
        with path.open("rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError:
        return True  # the reader reports it
    text = head.decode("utf-8", "ignore").lstrip("\ufeff \r\n\t")
    if text.startswith("{"):
        return True
    first = text.split("\n", 1)[0].lower()
    names = {name.strip().strip('"') for name in first.split(",")}
    # A file with none of the key columns and Chinese in it is a bureau's own table; an
    # English header that lacks some key column still goes to the feed reader, which says so.
    if names & {c.lower() for c in columns}:
        return True
    try:
        decoded = head.decode("utf-8")
    except UnicodeDecodeError:
        decoded = head.decode("gb18030", "ignore")
    return not any("\u4e00" <= ch <= "\u9fff" for ch in decoded)
