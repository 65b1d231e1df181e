"""The columnar fast reader of SDMX-CSV feeds: a backfill's well-formed rows as whole columns.

The line-by-line reader (producers/feed.py) reads, validates and encodes one Python row at a
time, some 30-45k rows/s. A backfill file is 65k rows that look alike, so here pyarrow reads
the whole file as string columns and the validator's checks run once per distinct value (zone,
indicator, period with basis, unit with indicator, revision, publication date, action, status,
source) or as one vectorised step (the numbers). A row passes here only when every field is
one the validator would accept exactly as it is written; any other row (a bad or odd value, a
wrong field count, a quote, a delete, a row whose key repeats another's) goes through the
line-by-line reader, so its verdict, reason and line number are the ones that reader gives.
A file this reader does not take at all (JSON Lines, a header it cannot map, a carriage return
not ending a line,
a byte-order mark inside, text that is not UTF-8) is read line by line whole.

What comes out is the rejected rows (``FeedRow``) and the accepted figures already in their
wire form, grouped by zone in line order (``ZoneFigures``): the records and envelopes the
line-by-line path would send, built without a Python object per row in between.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from parkpulse.producers.feed import (
    FEED_KEY_COLUMNS,
    JSON_SUFFIXES,
    MAX_LINE_BYTES,
    FeedRow,
    _Conflicts,
    _Header,
    _Line,
    read_feed,
)
from parkpulse.producers.readers import ReadOptions, bureau_table, kept_options, rows_of
from parkpulse.schemas.catalogue import Catalogue, Indicator
from parkpulse.schemas.errors import RejectedInput
from parkpulse.schemas.fields import MAX_NUMBER_CHARS, WHOLE_UNITS, Names, lookup_ids
from parkpulse.schemas.records import Observation
from parkpulse.schemas.validation import (
    _ACTION_SPELLINGS,
    _BASIS_SPELLINGS,
    _SHORT,
    _SOURCE_SPELLINGS,
    _STATUS_SPELLINGS,
    OBSERVATION_ALIASES,
    _ObservationReader,
    validate_observation,
)
from parkpulse.schemas.wire import STRUCTURE, STRUCTURE_ID, observation_to_wire

__all__ = ["ZoneFigures", "feed_items", "read_feed_columns"]

_FAST_FIELD_BYTES = 4096  # a longer field (any column) sends its row to the line reader
_PLAIN = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$"  # what float() and Decimal() read alike


@dataclass(frozen=True, slots=True)
class ZoneFigures:
    """The accepted figures of one zone in a file, as wire records in line order."""

    zone: str
    records: list[dict[str, Any]]


def feed_items(
    path: Path,
    kind: str,
    catalogue: Catalogue,
    *,
    now: datetime,
    options: ReadOptions,
    origin: str,
) -> Iterable[FeedRow | ZoneFigures]:
    """The rows of one published file: an SDMX-CSV feed through the columnar reader, any other
    file through ``readers.rows_of``."""
    if kind == "observations" and not bureau_table(path, kind) and kept_options(path) is None:
        return read_feed_columns(path, catalogue, now=now, origin=origin)
    return rows_of(path, kind, catalogue, now=now, options=options)


def read_feed_columns(
    path: Path, catalogue: Catalogue, *, now: datetime, origin: str
) -> Iterator[FeedRow | ZoneFigures]:
    """``read_feed``'s verdicts, with its accepted rows as wire records grouped by zone.

    Rejected rows come first (in line order), then each zone's figures (the wire records of
    accepted rows, with ``origin`` and ``line``, in line order)."""
    data = path.read_bytes()  # a missing file raises here, as read_feed's open does
    plan = _plan(path, data)
    if plan is None:
        yield from _by_lines(read_feed(path, catalogue, now=now), origin)
        return
    yield from _Columns(plan, catalogue, now, origin).items()


@dataclass(frozen=True, slots=True)
class _Plan:
    lines: list[str]  # the file's lines, decoded (the first without its byte-order mark)
    header: _Header
    keys: tuple[str, ...]  # the header names a row's mapping has, in order
    columns: dict[str, int]  # validated field -> column position in the CSV


def _plan(path: Path, data: bytes) -> _Plan | None:
    """How to read ``data`` as columns, or None when it goes to the line reader whole."""
    if path.suffix.lower() in JSON_SUFFIXES:
        return None
    if b"\r" in data:  # CRLF line ends are what the line reader strips; a lone CR is not
        if data.count(b"\r") != data.count(b"\r\n"):
            return None
        data = data.replace(b"\r\n", b"\n")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    text = text.removeprefix("\ufeff")
    if "\ufeff" in text or not text or text[0] == "\n":
        return None
    lines = text.split("\n")
    if max(map(len, lines)) > MAX_LINE_BYTES // 4:  # a long line: the line reader says so
        return None
    first = lines[0]
    if path.suffix.lower() != ".csv" and first.lstrip().startswith("{"):
        return None
    header = _Header.parse(_Line(1, first), FEED_KEY_COLUMNS)
    if header.problem is not None or '"' in first:
        return None
    keys = tuple(name for name in header.names if name)
    if len(keys) > _SHORT or any(len(k) > _SHORT for k in keys):
        return None
    columns: dict[str, int] = {}
    for at, name in enumerate(header.names):
        if not name:
            continue
        field = name.strip().lower()
        field = OBSERVATION_ALIASES.get(field, field)
        if field in columns:
            return None  # two columns name one field: the validator compares them
        columns[field] = at
    return _Plan(lines, header, keys, columns)


def _by_lines(rows: Iterable[FeedRow], origin: str) -> Iterator[FeedRow | ZoneFigures]:
    """Rows of the line reader as the columnar reader gives them."""
    zones: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row.record is None:
            yield row
        else:
            assert isinstance(row.record, Observation)
            zones.setdefault(row.record.zone, []).append(_wire(row.record, origin, row.line))
    for zone, records in zones.items():
        yield ZoneFigures(zone, records)


def _wire(record: Observation, origin: str, line: int) -> dict[str, Any]:
    wire = observation_to_wire(record)
    wire["origin"], wire["line"] = origin, line
    return wire


class _Columns:
    """One file read as columns: which rows pass as they are, and what they hold."""

    def __init__(self, plan: _Plan, catalogue: Catalogue, now: datetime, origin: str) -> None:
        self.plan = plan
        self.catalogue = catalogue
        self.now = now
        self.origin = origin
        reader = catalogue.derived.get("observations")
        if reader is None:
            reader = catalogue.derived["observations"] = _ObservationReader(catalogue)
        self.reader: _ObservationReader = reader
        layout = reader.layouts.get(plan.keys) or reader._layout(plan.keys)
        self.names: Names = layout.names if layout is not None else Names({}, True)

    def items(self) -> Iterator[FeedRow | ZoneFigures]:
        plan = self.plan
        width = len(plan.header.names)
        names = [f"c{i}" for i in range(width)]
        table = pacsv.read_csv(
            pa.py_buffer("\n".join(plan.lines[1:]).encode()),
            read_options=pacsv.ReadOptions(column_names=names, use_threads=False),
            parse_options=pacsv.ParseOptions(
                quote_char=False, ignore_empty_lines=True, invalid_row_handler=_skip
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        # Line numbers of the table's rows: every line after the header but the empty ones and
        # those with another field count, which pyarrow skips (no quotes: a comma splits).
        lines = plan.lines
        commas = width - 1
        numbers = np.array(
            [
                n
                for n in range(2, len(lines) + 1)
                if lines[n - 1] and lines[n - 1].count(",") == commas
            ],
            dtype=np.int64,
        )
        skipped = [
            n
            for n in range(2, len(lines) + 1)
            if lines[n - 1].strip() and lines[n - 1].count(",") != commas
        ]
        n = table.num_rows
        assert len(numbers) == n, (len(numbers), n)
        ok = np.ones(n, dtype=bool)
        for column in table.columns:  # long fields and quotes: the line reader's business
            ok &= _np(pc.less_equal(pc.binary_length(column), _FAST_FIELD_BYTES))
            ok &= ~_np(pc.match_substring(column, '"'))
        values = self._values(table, ok)
        fast = np.flatnonzero(ok)
        rows: dict[int, FeedRow] = {}  # line -> a row the line reader gave
        slow_lines = sorted({int(x) for x in numbers[~ok]} | set(skipped))
        for number in slow_lines:
            line = _Line(number, lines[number - 1])
            rows[number] = plan.header.row(
                line, lambda raw: validate_observation(raw, self.catalogue, now=self.now)
            )
        yield from self._verdicts(numbers, fast, values, rows)

    def _values(self, table: pa.Table, ok: np.ndarray) -> dict[str, list[Any]]:
        """Each validated field as the validator reads it, per row; rows that do not pass as
        they are written are cleared in ``ok``."""
        cols = self.plan.columns
        n = table.num_rows
        cat = self.catalogue
        names = self.names
        any_indicator = next(iter(cat.indicators))
        any_zone = next(iter(cat.zones))

        def zone_of(v: str) -> str | None:
            return lookup_ids(names, v, any_indicator, cat)[0]

        def indicator_of(v: str) -> Indicator | None:
            return lookup_ids(names, any_zone, v, cat)[1]

        out: dict[str, list[Any]] = {}
        zone, zone_ok = self._mapped(table, cols.get("zone"), n, zone_of, stripped=True)
        ind, ind_ok = self._mapped(table, cols.get("indicator"), n, indicator_of, stripped=True)
        action, action_ok = self._mapped(table, cols.get("action"), n, _ACTION_SPELLINGS.get)
        source, source_ok = self._mapped(table, cols.get("source"), n, _SOURCE_SPELLINGS.get)
        basis, basis_ok = self._mapped(table, cols.get("basis"), n, _BASIS_SPELLINGS.get)
        status, status_ok = self._mapped(table, cols.get("obs_status"), n, _STATUS_SPELLINGS.get)
        revision, revision_ok = self._mapped(table, cols.get("revision"), n, _revision)
        published, published_ok = self._mapped(
            table, cols.get("published_at"), n, self._published_at
        )
        for good in (zone_ok, ind_ok, action_ok, source_ok, basis_ok, status_ok):
            ok &= good
        ok &= revision_ok & published_ok
        ok &= np.array([a != "D" for a in action], dtype=bool)  # deletes: the line reader
        # Period with basis: the pair decides.
        text = self._column(table, cols.get("time_period"), n)
        pair = [(t, b) for t, b in zip(text, basis, strict=True)]
        known: dict[tuple[Any, Any], tuple[str, int] | None] = {}
        limit = self.now.year * 12 + self.now.month
        periods: list[str | None] = []
        for key in pair:
            got = known.get(key, False)
            if got is False:
                got = known[key] = self._period(key[0], key[1], limit)
            periods.append(got[0] if got is not None else None)
        ok &= np.array([p is not None for p in periods], dtype=bool)
        value, yoy, figures_ok = self._figures(table, n, ind, ok)
        ok &= figures_ok
        out.update(
            zone=zone,
            indicator=ind,
            action=action,
            source=source,
            basis=basis,
            obs_status=status,
            revision=revision,
            published_at=published,
            period=periods,
            value=value,
            yoy=yoy,
        )
        return out

    def _column(self, table: pa.Table, at: int | None, n: int) -> list[str | None]:
        if at is None:
            return [None] * n
        return table.column(at).to_pylist()

    def _mapped(
        self,
        table: pa.Table,
        at: int | None,
        n: int,
        read: Any,
        *,
        stripped: bool = False,
    ) -> tuple[list[Any], np.ndarray]:
        """A low-cardinality column mapped value by value (None when it does not pass)."""
        if at is None:
            got = _safely(read, None)
            return [got] * n, np.full(n, got is not None, dtype=bool)
        encoded = table.column(at).combine_chunks().dictionary_encode()
        mapped = []
        for value in encoded.dictionary.to_pylist():
            if stripped and (not value or value.strip() != value or len(value) > _SHORT):
                mapped.append(None)
            else:
                mapped.append(_safely(read, value))
        lookup = np.array([*mapped, None], dtype=object)
        indices = encoded.indices.to_numpy(zero_copy_only=False)
        per_row = lookup[indices]
        good = np.array([m is not None for m in mapped] + [False], dtype=bool)[indices]
        return per_row.tolist(), good

    def _published_at(self, written: str | None) -> str | None:
        if written is None or written == "":
            return ""
        if len(written) > _SHORT:
            return None
        return self.reader._published_at(self.names, written)

    def _period(self, text: Any, basis: Any, limit: int) -> tuple[str, int] | None:
        if text is None or basis is None or not text or text.strip() != text or len(text) > _SHORT:
            return None
        try:
            period, month = self.reader._period(self.names, text, basis)
        except RejectedInput:
            return None
        return None if month > limit else (period, month)

    def _figures(
        self, table: pa.Table, n: int, indicators: list[Indicator | None], ok: np.ndarray
    ) -> tuple[list[float | None], list[float | None], np.ndarray]:
        """(value in the indicator's unit, yoy_pct, which rows pass) as the validator reads
        plain decimals, convertible units and in-range figures."""
        cols = self.plan.columns
        number_text, number, has_number, plain_number = _numbers(table, cols.get("obs_value"), n)
        _, yoy, has_yoy, plain_yoy = _numbers(table, cols.get("yoy_pct"), n)
        good = plain_number & plain_yoy & (has_number | has_yoy)
        good &= ~has_yoy | (yoy >= -100)
        unit_at = cols.get("unit_measure")
        units = self._column(table, unit_at, n)
        factors: dict[tuple[Any, str], Decimal | int | None] = {}
        value: list[float | None] = [None] * n
        for i in np.flatnonzero(ok & good):
            indicator = indicators[i]
            assert indicator is not None
            unit = units[i]
            factor: Decimal | int | None = None
            if unit:  # as the validator's own fast path reads a figure
                key = (unit, indicator.unit)
                factor = factors.get(key, False)  # type: ignore[assignment]
                if factor is False:
                    factor = factors[key] = _safely(self.reader._factor, unit, indicator)
            elif not has_number[i]:
                factor = 1  # a growth-only figure needs no unit
            if factor is None:
                good[i] = False
                continue
            if not has_number[i]:
                continue
            v = float(number[i]) if factor == 1 else float(Decimal(number_text[i]) * factor)
            if not (
                0 <= v < math.inf
                and not (indicator.unit in WHOLE_UNITS and not v.is_integer())
                and not (indicator.unit == "PCT" and indicator.kind == "ratio" and v > 100)
            ):
                good[i] = False
                continue
            value[i] = v
        yoys = [float(y) if h else None for y, h in zip(yoy.tolist(), has_yoy, strict=True)]
        return value, yoys, good

    def _verdicts(
        self,
        numbers: np.ndarray,
        fast: np.ndarray,
        values: dict[str, list[Any]],
        rows: dict[int, FeedRow],
    ) -> Iterator[FeedRow | ZoneFigures]:
        """Rejected rows, then each zone's wire records, with conflicts checked as the line
        reader checks them (only rows whose key and revision repeat can conflict)."""
        zone, ind, basis, period = (
            values["zone"],
            values["indicator"],
            values["basis"],
            values["period"],
        )
        source, revision = values["source"], values["revision"]
        line_of = numbers.tolist()
        keys: dict[tuple[Any, ...], int] = {}  # key + revision -> how many rows give it
        for i in fast.tolist():
            key = (zone[i], ind[i].id, basis[i], period[i], source[i], revision[i])
            keys[key] = keys.get(key, 0) + 1
        for row in rows.values():
            if isinstance(row.record, Observation):
                key = (*row.record.key, row.record.revision)
                keys[key] = keys.get(key, 0) + 1
        repeated = {key for key, count in keys.items() if count > 1}
        slow = dict(rows)
        fast_rows: list[int] = []
        for i in fast.tolist():
            key = (zone[i], ind[i].id, basis[i], period[i], source[i], revision[i])
            if key in repeated:
                line = line_of[i]
                slow[line] = FeedRow(line, self.plan.lines[line - 1], self._record(values, i), None)
            else:
                fast_rows.append(i)
        conflicts = _Conflicts()
        for line in sorted(slow):
            slow[line] = conflicts.check(slow[line])
        for line in sorted(slow):
            if slow[line].record is None:
                yield slow[line]
        yield from self._zones(values, fast_rows, line_of, slow)

    def _record(self, values: dict[str, list[Any]], i: int) -> Observation:
        ind = values["indicator"][i]
        return Observation(
            values["zone"][i],
            ind.id,
            values["period"][i],
            values["basis"][i],
            values["value"][i],
            ind.unit,
            values["yoy"][i],
            values["obs_status"][i],
            values["revision"][i],
            values["action"][i],
            values["published_at"][i],
            values["source"][i],
        )

    def _zones(
        self,
        values: dict[str, list[Any]],
        fast_rows: list[int],
        line_of: list[int],
        slow: dict[int, FeedRow],
    ) -> Iterator[ZoneFigures]:
        origin = self.origin
        by_line: list[tuple[int, str, dict[str, Any]]] = []
        zone, ind, period, basis = (
            values["zone"],
            values["indicator"],
            values["period"],
            values["basis"],
        )
        value, yoy, status, revision = (
            values["value"],
            values["yoy"],
            values["obs_status"],
            values["revision"],
        )
        action, published, source = values["action"], values["published_at"], values["source"]
        for i in fast_rows:
            indicator = ind[i]
            by_line.append(
                (
                    line_of[i],
                    zone[i],
                    {
                        "structure": STRUCTURE,
                        "structure_id": STRUCTURE_ID,
                        "action": action[i],
                        "zone": zone[i],
                        "indicator": indicator.id,
                        "time_period": period[i],
                        "basis": basis[i],
                        "obs_value": value[i],
                        "unit_measure": indicator.unit,
                        "yoy_pct": yoy[i],
                        "obs_status": status[i],
                        "revision": revision[i],
                        "published_at": published[i],
                        "source": source[i],
                        "origin": origin,
                        "line": line_of[i],
                    },
                )
            )
        for line, row in slow.items():
            if isinstance(row.record, Observation):
                by_line.append((line, row.record.zone, _wire(row.record, origin, line)))
        if slow:
            by_line.sort(key=lambda item: item[0])
        zones: dict[str, list[dict[str, Any]]] = {}
        for _, zone_id, wire in by_line:
            records = zones.get(zone_id)
            if records is None:
                records = zones[zone_id] = []
            records.append(wire)
        for zone_id, records in zones.items():
            yield ZoneFigures(zone_id, records)


def _numbers(
    table: pa.Table, at: int | None, n: int
) -> tuple[list[str | None], np.ndarray, np.ndarray, np.ndarray]:
    """(texts, floats, which rows have one, which rows are empty or plain decimals)."""
    if at is None:
        none = np.zeros(n, dtype=bool)
        return [None] * n, np.zeros(n), none, ~none
    column = table.column(at)
    has = _np(pc.not_equal(pc.binary_length(column), 0))
    plain = _np(pc.match_substring_regex(column, _PLAIN)) & _np(
        pc.less_equal(pc.binary_length(column), MAX_NUMBER_CHARS)
    )
    floats = pc.cast(pc.if_else(pc.equal(pa.array(plain), True), column, "0"), pa.float64())
    return column.to_pylist(), _np(floats), has, plain | ~has


def _skip(row: Any) -> str:
    return "skip"  # a row with another field count: read line by line


def _np(array: Any) -> np.ndarray:
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array.to_numpy(zero_copy_only=False)


def _revision(written: str | None) -> int | None:
    """A REVISION the validator reads as it is: digits, or none (0); None: the line reader."""
    if not written:
        return 0
    if written.isdigit() and written.isascii() and len(written) < 19:
        return int(written)
    return None


def _safely(read: Any, *args: Any) -> Any:
    try:
        return read(*args)
    except RejectedInput:
        return None
