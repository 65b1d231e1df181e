"""Feed readers: bureau figures and plan targets from CSV or JSON Lines files.

Every non-blank physical line after a CSV header is one FeedRow, accepted (``record``) or
rejected (``error`` with a reason code), so a clerk can find each rejection by its line number.
Lines are read and decoded one at a time (UTF-8, else GB18030, which covers GBK): a bad quote or
a stray byte costs its own line, never the rest of the file. Nothing in a file's content makes
these readers raise; only opening the file can (OSError).
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from parkpulse.schemas.catalogue import Catalogue
from parkpulse.schemas.deadletter import dead_letter, kept_raw
from parkpulse.schemas.errors import RejectedInput
from parkpulse.schemas.fields import MAX_FIELD_CHARS, show
from parkpulse.schemas.records import DeadLetter, Observation, PlanTarget, Registration
from parkpulse.schemas.targets import validate_target
from parkpulse.schemas.validation import validate_observation

MAX_LINE_BYTES = 128 * 1024  # a feed row is a few hundred bytes; a longer line is malformed
MAX_EXAMPLES = 20  # rejected rows quoted in a summary
JSON_SUFFIXES = frozenset({".jsonl", ".ndjson", ".json"})
# Header columns without which no row of the file can be read.
FEED_KEY_COLUMNS = ("ZONE", "INDICATOR", "TIME_PERIOD", "BASIS")
TARGET_KEY_COLUMNS = ("plan", "zone", "indicator")

Record = Observation | PlanTarget


@dataclass(frozen=True, slots=True)
class FeedRow:
    """One non-blank line of a feed: the record it gave, or why it was rejected."""

    line: int  # 1-based physical line in the file (a CSV header is line 1)
    text: str  # the line as read (decoded, without its line break)
    record: Observation | PlanTarget | Registration | None
    error: RejectedInput | None
    place: str = ""  # a spreadsheet cell, ``1-6月!D7``; "" for a line of a text feed
    revised: bool = False  # a bulletin figure that changed since an earlier file gave it
    duplicate: bool = False  # a register export's repeat of a row already read (no record)

    @property
    def accepted(self) -> bool:
        return self.error is None


@dataclass(slots=True)
class FeedSummary:
    """Counts of a read feed, by reason, with the first rejected rows as ``<line> <reason>: …``."""

    accepted: int = 0
    rejected: int = 0
    revised: int = 0  # accepted bulletin figures that are a new revision
    duplicates: int = 0  # repeated rows of a register export, not published again
    by_reason: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)

    def add(self, row: FeedRow) -> None:
        if row.duplicate:
            self.duplicates += 1
            return
        if row.error is None:
            self.accepted += 1
            self.revised += row.revised
            return
        self.rejected += 1
        reason = row.error.reason
        self.by_reason[reason] = self.by_reason.get(reason, 0) + 1
        if len(self.examples) < MAX_EXAMPLES:
            where = row.place or row.line
            self.examples.append(f"{where} {reason}: {_printable(row.error.detail)}")


def read_feed(path: Path, catalogue: Catalogue, *, now: datetime) -> Iterator[FeedRow]:
    """The rows of a bureau feed (SDMX-CSV shaped CSV, or JSON Lines), validated.

    Within the file, a second row for the same key and revision with another value is a
    ``conflict``; an exact repeat is accepted.
    """
    handle = path.open("rb")  # a missing file raises here, not at the first next()
    return _read(
        handle,
        path,
        lambda raw: validate_observation(raw, catalogue, now=now),
        FEED_KEY_COLUMNS,
    )


def read_targets(path: Path, catalogue: Catalogue) -> Iterator[FeedRow]:
    """The rows of a plan-target file (plan_targets.csv columns, or JSON Lines), validated."""
    handle = path.open("rb")
    return _read(handle, path, lambda raw: validate_target(raw, catalogue), TARGET_KEY_COLUMNS)


def to_deadletter(
    row: FeedRow, origin: str, source_topic: str, *, received_at: datetime | None = None
) -> DeadLetter:
    """The dead letter of a rejected row: reason, detail, the line's text (cut to 4 KiB)."""
    if row.error is None:
        raise ValueError(f"line {row.line} was accepted; only rejected rows are dead letters")
    return dead_letter(
        source_topic,
        row.error,
        kept_raw(row.text),
        origin=f"{origin}:{row.place}" if row.place else origin,
        line=row.line,
        received_at=(received_at or datetime.now(UTC)).isoformat(timespec="milliseconds"),
    )


def summarize(rows: Iterable[FeedRow]) -> FeedSummary:
    """Accepted and rejected counts, by reason, with the first rejected rows."""
    summary = FeedSummary()
    for row in rows:
        summary.add(row)
    return summary


def format_summary(summary: FeedSummary, path: Path | str) -> str:
    """A summary for stderr: counts, then ``path:line reason: detail`` per example."""
    name = str(path)
    lines = [f"{name}: {summary.accepted} accepted, {summary.rejected} rejected"]
    if summary.by_reason:
        ranked = sorted(summary.by_reason.items(), key=lambda item: (-item[1], item[0]))
        lines.append("  rejected by reason: " + ", ".join(f"{r} {n}" for r, n in ranked))
    lines += [f"{name}:{example}" for example in summary.examples]
    hidden = summary.rejected - len(summary.examples)
    if hidden > 0:
        lines.append(f"  … and {hidden} more rejected rows (all are in the dead-letter table)")
    return "\n".join(lines)


# --- whole files that are not feeds ----------------------------------------------------------

BINARY_PROBE = 8 * 1024  # bytes looked at to tell a binary file from text


@dataclass(frozen=True, slots=True)
class NotAFeed:
    """Why a file is no feed at all, said in one line; it is refused whole, never kept.

    ``dead_letter`` is the one dead letter the file gives (reason ``malformed``, its first 4 KiB
    as the raw text) when it has content; an empty or header-only file, or a folder, loses
    nothing and gives none.
    """

    path: Path
    what: str  # "is empty", "is a folder, not a feed file", …: follows the file's name
    dead_letter: FeedRow | None = None


def not_a_feed(path: Path, kind: str = "observations") -> NotAFeed | None:
    """Whether ``path`` is no feed: a folder, empty, a header without rows, binary, or text whose
    first line is neither a header naming the key columns nor a JSON object. None for a feed.

    A CSV file is judged by its first line: under a header that cannot be read every row would
    get the same reject, so the file gets one instead. JSON Lines is no feed when no line is a
    JSON object (one bad line first costs only itself). So a refused file has no row
    ``read_feed`` would accept, and one without a dead letter has no row at all.
    """
    if path.is_dir():
        return NotAFeed(path, "is a folder, not a feed file")
    if not path.is_file():
        return NotAFeed(path, "is not a regular file")
    key_columns = TARGET_KEY_COLUMNS if kind == "targets" else FEED_KEY_COLUMNS
    with path.open("rb") as handle:
        head = handle.read(BINARY_PROBE)
        handle.seek(0)
        lines = (line for line in _lines(handle) if line.problem or line.text.strip())
        first = next(lines, None)
        if first is None:
            return NotAFeed(path, "is empty" if not head else "has only blank lines")
        suffix = path.suffix.lower()
        if suffix in JSON_SUFFIXES or (suffix != ".csv" and first.text.lstrip().startswith("{")):
            if any(isinstance(_json_object(line), dict) for line in chain([first], lines)):
                return None
            problem = "no line is a JSON object, as each line of JSON Lines is"
        else:
            header = CsvHeader.parse(first, key_columns)
            if header.problem is None:
                has_rows = next(lines, None) is not None
                return None if has_rows else NotAFeed(path, "has a header but no rows")
            problem = header.problem
    if _binary(head):  # only now: a feed may carry a binary line under a good header
        problem = "it is binary, not CSV or JSON Lines text (a spreadsheet? export it as CSV)"
    return _refused(path, f"is not a feed: {problem}", first, head)


def _binary(head: bytes) -> bool:
    """NUL bytes, or neither UTF-8 nor GB18030 text, in the first bytes of a file."""
    if b"\x00" in head:
        return True
    for encoding in ("utf-8", "gb18030"):
        try:
            codecs.getincrementaldecoder(encoding)().decode(head, final=False)
            return False
        except UnicodeDecodeError:
            continue
    return True


def _json_object(line: Line) -> Any:
    if line.problem:
        return None
    try:
        return orjson.loads(line.text)
    except orjson.JSONDecodeError:
        try:  # NaN/Infinity: a feed row with a bad value, as _json_row reads it
            return json.loads(line.text)
        except (ValueError, RecursionError):
            return None


def _refused(path: Path, what: str, first: Line, head: bytes) -> NotAFeed:
    text = head.decode("utf-8", "replace").removeprefix("\ufeff")
    row = FeedRow(first.number, text, None, RejectedInput("malformed", f"the file {what}"))
    return NotAFeed(path, what, row)


# --- reading -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Line:
    """One physical line of a feed file, decoded (shared with the columnar reader)."""

    number: int
    text: str
    problem: str | None = None  # why the line cannot be read at all


def _read(
    handle: BinaryIO,
    path: Path,
    parse: Callable[[Mapping[str, Any]], Record],
    key_columns: tuple[str, ...],
) -> Iterator[FeedRow]:
    with handle:
        lines = (line for line in _lines(handle) if line.problem or line.text.strip())
        first = next(lines, None)
        if first is None:
            return
        suffix = path.suffix.lower()
        sniffed_json = suffix != ".csv" and first.text.lstrip().startswith("{")
        if suffix in JSON_SUFFIXES or sniffed_json:
            rows = (_json_row(line, parse) for line in chain([first], lines))
        else:
            header = CsvHeader.parse(first, key_columns)
            rows = (header.row(line, parse) for line in lines)
        yield from check_conflicts(rows)


def check_conflicts(rows: Iterable[FeedRow]) -> Iterator[FeedRow]:
    """``rows`` with a row whose key and revision repeat an earlier row's with other values
    rejected as a ``conflict`` (an exact repeat passes: it is harmless downstream)."""
    conflicts = ConflictCheck()
    for row in rows:
        yield conflicts.check(row)


def _lines(handle: BinaryIO) -> Iterator[Line]:
    """Physical lines, decoded one by one (a long line is skipped, not read into memory)."""
    number = 0
    while chunk := handle.readline(MAX_LINE_BYTES + 2):
        number += 1
        content = chunk.removesuffix(b"\n").removesuffix(b"\r")
        if len(content) > MAX_LINE_BYTES:
            size = len(chunk)
            while not chunk.endswith(b"\n") and (chunk := handle.readline(1 << 20)):
                size += len(chunk)
            head = kept_raw(content)
            problem = f"the line is {size} bytes long; a feed row may have {MAX_LINE_BYTES} at most"
            yield Line(number, head, problem)
            continue
        yield _decode(number, content)


def _decode(number: int, content: bytes) -> Line:
    for encoding in ("utf-8", "gb18030"):  # GB18030 is a superset of GBK and GB2312
        try:
            # A byte-order mark (UTF-8 EF BB BF, GB18030 84 31 95 33) decodes to U+FEFF; files
            # concatenated with `cat` carry one mid-file too.
            return Line(number, content.decode(encoding).removeprefix("\ufeff"))
        except UnicodeDecodeError:
            continue
    text = content.decode("utf-8", "replace")
    return Line(number, text, "the line is neither UTF-8 nor GB18030 (GBK) text")


def _split(text: str) -> list[str]:
    """One CSV line's fields; raises csv.Error on bad quoting."""
    if '"' not in text and "\r" not in text:  # nothing for the csv module to interpret
        return text.split(",")
    return next(csv.reader([text], strict=True), [])


class CsvHeader:
    """A CSV header: column names, or why no row under it can be read. ``row`` reads one line
    under it as the line reader does (the columnar reader sends the lines it cannot take here)."""

    def __init__(self, line: int, names: list[str], problem: str | None) -> None:
        self.line = line
        self.names = names
        self.problem = problem

    @classmethod
    def parse(cls, line: Line, key_columns: tuple[str, ...]) -> CsvHeader:
        """The header of a feed from its first line; ``problem`` says why it cannot be used."""
        where = f"the header (line {line.number})"
        if line.problem:
            return cls(line.number, [], f"{where} cannot be read: {line.problem}")
        try:
            names = [name.strip().removeprefix("\ufeff").strip() for name in _split(line.text)]
        except csv.Error as exc:
            return cls(line.number, [], f"{where} is not valid CSV: {exc}")
        folded = [name.lower() for name in names]
        missing = [c for c in key_columns if c.lower() not in folded]
        if missing:
            problem = f"{where} lacks column {', '.join(missing)}; is the header row missing?"
            return cls(line.number, names, problem)
        twice = sorted({n for n in folded if n and folded.count(n) > 1})
        if twice:
            return cls(line.number, names, f"{where} names {', '.join(twice)} twice")
        return cls(line.number, names, None)

    def row(self, line: Line, parse: Callable[[Mapping[str, Any]], Record]) -> FeedRow:
        """The line's verdict: its record from ``parse``, or why it is rejected."""
        if line.problem:
            return _rejected(line, "malformed", line.problem)
        if self.problem:
            return _rejected(line, "malformed", self.problem)
        try:
            fields = _split(line.text)
        except csv.Error as exc:
            return _rejected(line, "malformed", f"not valid CSV ({exc}); an unbalanced quote?")
        if len(fields) != len(self.names):
            return _rejected(
                line,
                "malformed",
                f"{len(fields)} fields where the header (line {self.line}) has {len(self.names)}",
            )
        for name, value in zip(self.names, fields, strict=True):
            if len(value) > MAX_FIELD_CHARS:
                detail = f"{name or 'a field'} is {len(value)} characters long"
                return _rejected(line, "malformed", f"{detail} (at most {MAX_FIELD_CHARS})")
        raw = {name: value for name, value in zip(self.names, fields, strict=True) if name}
        return _validated(line, parse, raw)


def _json_row(line: Line, parse: Callable[[Mapping[str, Any]], Record]) -> FeedRow:
    if line.problem:
        return _rejected(line, "malformed", line.problem)
    try:
        doc = orjson.loads(line.text)
    except orjson.JSONDecodeError as exc:
        try:  # the standard library reads NaN/Infinity, so they are reported as bad_value
            doc = json.loads(line.text)
        except (ValueError, RecursionError):
            return _rejected(line, "malformed", f"not valid JSON: {exc}")
    if not isinstance(doc, dict):
        kind = type(doc).__name__
        return _rejected(line, "malformed", f"expected one JSON object per line, found a {kind}")
    return _validated(line, parse, doc)


def _validated(
    line: Line, parse: Callable[[Mapping[str, Any]], Record], raw: Mapping[str, Any]
) -> FeedRow:
    try:
        return FeedRow(line.number, line.text, parse(raw), None)
    except RejectedInput as exc:
        return FeedRow(line.number, line.text, None, exc.detached())


def _rejected(line: Line, reason: str, detail: str) -> FeedRow:
    return FeedRow(line.number, line.text, None, RejectedInput(reason, detail))


class ConflictCheck:
    """Rejects a row whose key and revision repeat an earlier row's with other values (both
    readers check every file's accepted rows, in line order, through one of these)."""

    def __init__(self) -> None:
        self.seen: dict[tuple[Any, ...], tuple[str, dict[str, Any]]] = {}

    def check(self, row: FeedRow) -> FeedRow:
        """``row``, or a ``conflict`` rejection of it when it contradicts an earlier row."""
        record = row.record
        if record is None:
            return row
        key, payload = _identity(record)
        earlier = self.seen.setdefault(key, (row.place or f"line {row.line}", payload))
        if earlier[1] == payload:
            return row  # first sighting, or an exact repeat (harmless downstream)
        changes = ", ".join(
            f"{name} {show(earlier[1][name])} → {show(payload[name])}"
            for name in payload
            if payload[name] != earlier[1][name]
        )
        what = " ".join(str(part) for part in key[:-1])
        detail = (
            f"{what} revision {key[-1]} was given differently on {earlier[0]} "
            f"({changes}); a changed figure needs a higher REVISION"
        )
        return FeedRow(row.line, row.text, None, RejectedInput("conflict", detail), row.place)


def _identity(record: Record) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """(key + revision, the values that must agree between two rows with that key)."""
    if isinstance(record, Observation):
        payload = {
            "delete": record.is_delete,
            "obs_value": record.value,
            "yoy_pct": record.yoy_pct,
            "obs_status": record.obs_status,
        }
        return (*record.key, record.revision), payload
    payload = {
        "delete": record.action == "D",
        "kind": record.kind,
        "base_year": record.base_year,
        "base_value": record.base_value,
        "target_year": record.target_year,
        "target_value": record.target_value,
        "annual_growth_pct": record.annual_growth_pct,
        "binding": record.binding,
    }
    return (*record.key, record.revision), payload


def _printable(text: str) -> str:
    """``text`` safe for a terminal: control characters escaped, one line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
