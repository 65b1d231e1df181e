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
wire form, grouped by zone in line order (``ZoneFigures``): the records the line-by-line path
would send, as columns without a Python object per row in between (producers/column_text.py).
"""

from __future__ import annotations

import math
import re
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

from parkpulse.producers.column_text import (
    Field,
    Numbers,
    ZoneFigures,
    objects,
    repeats,
    wire_columns,
)
from parkpulse.producers.feed import (
    FEED_KEY_COLUMNS,
    JSON_SUFFIXES,
    MAX_LINE_BYTES,
    ConflictCheck,
    CsvHeader,
    FeedRow,
    Line,
    read_feed,
)
from parkpulse.producers.read_options import ReadOptions, kept_options
from parkpulse.producers.readers import bureau_table, rows_of
from parkpulse.schemas.catalogue import Catalogue, Indicator
from parkpulse.schemas.envelope import records_of_columns
from parkpulse.schemas.errors import RejectedInput
from parkpulse.schemas.fields import MAX_NUMBER_CHARS, WHOLE_UNITS, Names, lookup_ids
from parkpulse.schemas.records import Observation
from parkpulse.schemas.validation import (
    ACTION_SPELLINGS,
    BASIS_SPELLINGS,
    OBSERVATION_ALIASES,
    OBSERVATION_FIELDS,
    REMEMBERED_CHARS,
    SOURCE_SPELLINGS,
    STATUS_SPELLINGS,
    observation_reader,
    validate_observation,
)
from parkpulse.schemas.wire import observation_to_wire, shared_columns

__all__ = ["ZoneFigures", "feed_items", "read_feed_columns"]

_FAST_FIELD_BYTES = 4096  # a longer field (any column) sends its row to the line reader
_PLAIN = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$"  # what float() and Decimal() read alike


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
    try:
        items = list(_Columns(plan, catalogue, now, origin).items())
    except _Whole:
        items = list(_by_lines(read_feed(path, catalogue, now=now), origin))
    yield from items


_LONE_CR = re.compile(rb"\r(?!\n)")


class _Whole(Exception):
    """The file goes to the line reader whole (a line too long to read as a row)."""


@dataclass(slots=True)
class _Plan:
    data: bytes  # the file as UTF-8, without its byte-order mark (lines end in LF or CRLF)
    start: int  # where the rows begin: after the header line
    header: CsvHeader
    keys: tuple[str, ...]  # the header names a row's mapping has, in order
    columns: dict[str, int]  # validated field -> column position in the CSV
    _text: str | None = None
    _lines: list[str] | None = None

    @property
    def body(self) -> memoryview:
        """The rows' bytes (not copied)."""
        return memoryview(self.data)[self.start :]

    @property
    def lines(self) -> list[str]:
        """The file's lines (decoded and split only when some line is read line by line)."""
        if self._lines is None:
            if self._text is None:
                self._text = self.data.decode("utf-8")
            lines = self._text.split("\n")
            self._lines = (
                [line.removesuffix("\r") for line in lines] if "\r" in self._text else lines
            )
        return self._lines

    def line_sizes(self) -> tuple[int, int]:
        """(how many lines follow the header, empty lines at the end not counted; the bytes
        of the longest of them, its line end included)."""
        end = len(self.data)
        while end > self.start and self.data[end - 1] in b"\r\n":
            end -= 1
        if end <= self.start:
            return 0, 0
        body = np.frombuffer(self.data, np.uint8, end - self.start, self.start)
        ends = np.flatnonzero(body == 10)
        bounds = np.concatenate(([-1], ends, [len(body)]))
        return len(ends) + 1, int(np.diff(bounds).max())


def _plan(path: Path, data: bytes) -> _Plan | None:
    """How to read ``data`` as columns, or None when it goes to the line reader whole."""
    if path.suffix.lower() in JSON_SUFFIXES:
        return None
    # CRLF line ends are what the line reader strips (pyarrow reads them too); a lone CR is not
    if b"\r" in data and _LONE_CR.search(data):
        return None
    text = None  # ASCII is UTF-8 as it is, without a byte-order mark (a scan, not a decode)
    if not data.isascii():
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return None
        if text.startswith("\ufeff"):
            text, data = text[1:], data[3:]
        if "\ufeff" in text:
            return None
    if not data or data[:1] in (b"\n", b"\r"):
        return None
    end = data.find(b"\n")
    first = (data if end < 0 else data[:end]).decode("utf-8").removesuffix("\r")
    if len(first) > MAX_LINE_BYTES // 4:  # a long header: the line reader says what it is
        return None
    if path.suffix.lower() != ".csv" and first.lstrip().startswith("{"):
        return None
    header = CsvHeader.parse(Line(1, first), FEED_KEY_COLUMNS)
    if header.problem is not None or '"' in first:
        return None
    keys = tuple(name for name in header.names if name)
    if len(keys) > REMEMBERED_CHARS or any(len(k) > REMEMBERED_CHARS for k in keys):
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
    return _Plan(data, end + 1 if end >= 0 else len(data), header, keys, columns, text)


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
        yield ZoneFigures.of(zone, records)


def _wire(record: Observation, origin: str, line: int) -> dict[str, Any]:
    wire = observation_to_wire(record)
    wire["origin"], wire["line"] = origin, line
    return wire


class _Codes:
    """One CSV column, dictionary-encoded: its distinct texts and, per row, which one."""

    def __init__(self, table: pa.Table, at: int | None, n: int) -> None:
        if at is None:  # an absent column: every row holds None
            self.values: list[Any] = [None]
            self.by_value = np.empty(0, dtype=object)
            self.codes = np.zeros(n, dtype=np.int64)
            return
        encoded = table.column(_name(at)).combine_chunks().dictionary_encode()
        self.values = encoded.dictionary.to_pylist()
        self.by_value = np.empty(0, dtype=object)  # what ``mapped`` made of each text
        self.codes = _np(encoded.indices).astype(np.int64)

    def field(self, read: Any, *, stripped: bool = False, key: Any = None) -> Field:
        """What ``read`` makes of each row's text (None: the row goes to the line reader)."""
        out = np.empty(len(self.values), dtype=object)
        for at, value in enumerate(self.values):
            if stripped and (not value or value.strip() != value or len(value) > REMEMBERED_CHARS):
                out[at] = None
            else:
                out[at] = _safely(read, value)
        self.by_value = out
        return Field.of(out, self.codes, key)


class _Columns:
    """One file read as columns: which rows pass as they are, and what they hold."""

    def __init__(self, plan: _Plan, catalogue: Catalogue, now: datetime, origin: str) -> None:
        self.plan = plan
        self.catalogue = catalogue
        self.now = now
        self.origin = origin
        self.reader = reader = observation_reader(catalogue)
        layout = reader.layouts.get(plan.keys) or reader.layout(plan.keys)
        self.names: Names = layout.names if layout is not None else Names({}, True)

    def items(self) -> Iterator[FeedRow | ZoneFigures]:
        plan = self.plan
        width = len(plan.header.names)
        names = [_name(i) for i in range(width)]
        skips: list[int] = []  # rows with another field count, which pyarrow skips
        # Without quotes and long lines no field needs looking at but the ones read: the
        # others (STRUCTURE, STRUCTURE_ID, any extra) are not even made into columns.
        line_count, longest = plan.line_sizes()
        quotes = plan.data.find(b'"', plan.start) >= 0
        include = None
        if not quotes and longest <= _FAST_FIELD_BYTES:
            include = sorted(
                {_name(plan.columns[f]) for f in OBSERVATION_FIELDS if f in plan.columns}
            )

        def skip(row: Any) -> str:
            skips.append(1)
            return "skip"

        table = pacsv.read_csv(
            pa.py_buffer(plan.body),
            read_options=pacsv.ReadOptions(column_names=names, use_threads=False),
            parse_options=pacsv.ParseOptions(
                quote_char=False, ignore_empty_lines=True, invalid_row_handler=skip
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                include_columns=include,
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        # Line numbers of the table's rows: every line after the header but the empty ones and
        # those with another field count, which pyarrow skips (no quotes: a comma splits).
        n = table.num_rows
        skipped: list[int] = []
        if not skips and line_count == n:  # every line a row
            numbers = np.arange(2, n + 2, dtype=np.int64)
        else:
            lines = plan.lines
            commas = width - 1
            counts = [line.count(",") if line else -1 for line in lines]
            numbers = np.array(
                [k for k in range(2, len(lines) + 1) if counts[k - 1] == commas], dtype=np.int64
            )
            skipped = [
                k
                for k in range(2, len(lines) + 1)
                if counts[k - 1] != commas and lines[k - 1].strip()
            ]
        if len(numbers) != n:  # pyarrow split the lines otherwise: read them line by line
            raise _Whole
        ok = np.ones(n, dtype=bool)
        if include is None:  # long fields and quotes: the line reader's business
            for column in table.columns:
                ok &= _np(pc.binary_length(column)) <= _FAST_FIELD_BYTES
                if quotes:
                    ok &= ~_np(pc.match_substring(column, '"'))
        fields = self._values(table, ok)
        slow = self._slow(sorted({int(x) for x in numbers[~ok]} | set(skipped)))
        yield from self._verdicts(numbers, np.flatnonzero(ok), fields, slow)

    def _slow(self, numbers: Iterable[int]) -> dict[int, FeedRow]:
        """The line reader's rows of these lines (blank ones have none)."""
        header = self.plan.header
        rows: dict[int, FeedRow] = {}
        for number in numbers:
            text = self.plan.lines[number - 1]
            if len(text) * 4 > MAX_LINE_BYTES and len(text.encode()) > MAX_LINE_BYTES:
                raise _Whole
            if text.strip():
                rows[number] = header.row(
                    Line(number, text),
                    lambda raw: validate_observation(raw, self.catalogue, now=self.now),
                )
        return rows

    def _values(self, table: pa.Table, ok: np.ndarray) -> dict[str, Any]:
        """Each validated field of every row as the validator reads it (``Field``s; the
        numbers as arrays); the rows that do not pass as written are cleared in ``ok``."""
        cols = self.plan.columns
        n = table.num_rows
        cat = self.catalogue
        names = self.names
        any_indicator = next(iter(cat.indicators))
        any_zone = next(iter(cat.zones))

        def zone_of(v: str) -> str:
            return lookup_ids(names, v, any_indicator, cat)[0]

        def indicator_of(v: str) -> Indicator:
            return lookup_ids(names, any_zone, v, cat)[1]

        def action_of(v: Any) -> str | None:
            action = ACTION_SPELLINGS.get(v)
            return None if action == "D" else action  # a delete: the line reader

        indicators = _Codes(table, cols.get("indicator"), n)
        basis_codes = _Codes(table, cols.get("basis"), n)
        zone = _Codes(table, cols.get("zone"), n).field(zone_of, stripped=True)
        ok &= zone.good()
        indicator = indicators.field(indicator_of, stripped=True, key=lambda i: i.id)
        ok &= indicator.good()
        indicator_of_value = indicators.by_value
        out: dict[str, Any] = {"zone": zone, "indicator": indicator}
        for field, read in (
            ("action", action_of),
            ("source", SOURCE_SPELLINGS.get),
            ("obs_status", STATUS_SPELLINGS.get),
            ("revision", _revision),
            ("published_at", self._published_at),
        ):
            out[field] = _Codes(table, cols.get(field), n).field(read)
            ok &= out[field].good()
        basis_of_value = [BASIS_SPELLINGS.get(v) for v in basis_codes.values]
        out["basis"] = Field.of(basis_of_value, basis_codes.codes)
        out["period"] = self._periods(_Codes(table, cols.get("time_period"), n), basis_codes)
        ok &= out["period"].good()
        out["value"], out["yoy"], good = self._figures(table, n, indicators, indicator_of_value)
        ok &= good
        return out

    def _periods(self, texts: _Codes, basis: _Codes) -> Field:
        """Per row, the period its TIME_PERIOD and BASIS give (None: not as written)."""
        width = len(basis.values)
        pairs, inverse = np.unique(texts.codes * width + basis.codes, return_inverse=True)
        limit = self.now.year * 12 + self.now.month
        periods = np.empty(len(pairs), dtype=object)
        for at, pair in enumerate(pairs.tolist()):
            text = texts.values[pair // width]
            code = BASIS_SPELLINGS.get(basis.values[pair % width])
            periods[at] = self._period(text, code, limit)
        return Field.of(periods, inverse.reshape(-1))

    def _published_at(self, written: str | None) -> str | None:
        if written is None or written == "":
            return ""
        if len(written) > REMEMBERED_CHARS:
            return None
        return self.reader.published_at(self.names, written)

    def _period(self, text: Any, basis: Any, limit: int) -> str | None:
        if (
            text is None
            or basis is None
            or not text
            or text.strip() != text
            or len(text) > REMEMBERED_CHARS
        ):
            return None
        try:
            period, month = self.reader.period(self.names, text, basis)
        except RejectedInput:
            return None
        return None if month > limit else period

    def _figures(
        self, table: pa.Table, n: int, indicators: _Codes, indicator_of_value: np.ndarray
    ) -> tuple[Numbers, Numbers, np.ndarray]:
        """(value in the indicator's unit, yoy_pct, which rows pass) as the validator's own
        fast path reads a figure: plain decimals, a unit it converts, in-range results."""
        cols = self.plan.columns
        number_column, number, has_number, plain_number = _numbers(table, cols.get("obs_value"), n)
        _, yoy, has_yoy, plain_yoy = _numbers(table, cols.get("yoy_pct"), n)
        good = plain_number & plain_yoy & (has_number | has_yoy)
        good &= ~has_yoy | (yoy >= -100)
        # The factor per (unit as written, indicator): 1, another, none, or "no unit".
        units = _Codes(table, cols.get("unit_measure"), n)
        width = len(indicators.values)
        pairs, inverse = np.unique(units.codes * width + indicators.codes, return_inverse=True)
        inverse = inverse.reshape(-1)
        kinds = np.empty(len(pairs), dtype=np.int8)  # 0: factor 1, 1: another, 2: none, 3: no unit
        factors = np.empty(len(pairs), dtype=object)
        for at, pair in enumerate(pairs.tolist()):
            unit, indicator = units.values[pair // width], indicator_of_value[pair % width]
            factor = None
            if indicator is None:
                kinds[at] = 2
            elif unit:
                factor = _safely(self.reader.factor, unit, indicator)
                kinds[at] = 2 if factor is None else 0 if factor == 1 else 1
            else:
                kinds[at] = 3
            factors[at] = factor
        kind = kinds[inverse]
        good &= (kind != 2) & ~((kind == 3) & has_number)
        value = np.where(has_number, number, 0.0)
        other = np.flatnonzero(good & has_number & (kind == 1))
        if len(other):
            texts = number_column.take(_arrow(other)).to_pylist()
            for i, text in zip(other.tolist(), texts, strict=True):
                value[i] = float(Decimal(text) * factors[inverse[i]])
        whole = objects([i is not None and i.unit in WHOLE_UNITS for i in indicator_of_value])
        ratio = objects(
            [i is not None and i.unit == "PCT" and i.kind == "ratio" for i in indicator_of_value]
        )
        whole_row = whole[indicators.codes].astype(bool)
        ratio_row = ratio[indicators.codes].astype(bool)
        with np.errstate(invalid="ignore"):
            in_range = (
                (value >= 0)
                & (value < math.inf)
                & ~(whole_row & (np.floor(value) != value))
                & ~(ratio_row & (value > 100))
            )
        good &= ~has_number | in_range
        return Numbers(value, has_number), Numbers(yoy, has_yoy), good

    def _verdicts(
        self,
        numbers: np.ndarray,
        fast: np.ndarray,
        fields: dict[str, Any],
        rows: dict[int, FeedRow],
    ) -> Iterator[FeedRow | ZoneFigures]:
        """Rejected rows, then each zone's wire records, with conflicts checked as the line
        reader checks them (only rows whose key and revision repeat can conflict)."""
        key_fields = [fields[f] for f in ("zone", "indicator", "basis", "period", "source")]
        key_fields.append(fields["revision"])
        accepted_slow = [r for r in rows.values() if isinstance(r.record, Observation)]
        slow = dict(rows)
        keep = fast
        if accepted_slow or repeats(key_fields, fast):
            lines = numbers[fast].tolist()
            values = {name: field.at(fast) for name, field in fields.items()}
            ids = [indicator.id for indicator in values["indicator"]]
            keys = list(
                zip(
                    values["zone"],
                    ids,
                    values["basis"],
                    values["period"],
                    values["source"],
                    values["revision"],
                    strict=True,
                )
            )
            counts: dict[tuple[Any, ...], int] = {}
            for key in keys:
                counts[key] = counts.get(key, 0) + 1
            for row in accepted_slow:
                assert isinstance(row.record, Observation)
                key = (*row.record.key, row.record.revision)
                counts[key] = counts.get(key, 0) + 1
            repeated = {key for key, count in counts.items() if count > 1}
            kept: list[int] = []
            for i, key in enumerate(keys):
                if key in repeated:
                    line = lines[i]
                    record = self._record(values, i)
                    slow[line] = FeedRow(line, self.plan.lines[line - 1], record, None)
                else:
                    kept.append(i)
            keep = fast[np.array(kept, dtype=np.int64)]
        conflicts = ConflictCheck()
        for line in sorted(slow):
            slow[line] = conflicts.check(slow[line])
            if slow[line].record is None:
                yield slow[line]
        yield from self._zones(fields, keep, numbers[keep], slow)

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
        self, fields: dict[str, Any], rows: np.ndarray, lines: np.ndarray, slow: dict[int, FeedRow]
    ) -> Iterator[ZoneFigures]:
        """Each zone's records in line order (zones in the order they first appear)."""
        accepted = [(ln, r) for ln, r in slow.items() if isinstance(r.record, Observation)]
        if accepted:
            yield from self._merged_zones(fields, rows, lines, accepted)
        elif len(rows):
            yield from self._grouped_zones(fields, rows, lines)

    def _merged_zones(
        self,
        fields: dict[str, Any],
        rows: np.ndarray,
        lines: np.ndarray,
        accepted: list[tuple[int, FeedRow]],
    ) -> Iterator[ZoneFigures]:
        """The columns' rows and the lines the line reader accepted, merged in line order."""
        columns = wire_columns(fields, rows, lines, self.origin)
        merged = list(zip(lines.tolist(), records_of_columns(columns, len(rows)), strict=True))
        for line, row in accepted:
            assert isinstance(row.record, Observation)
            merged.append((line, _wire(row.record, self.origin, line)))
        merged.sort(key=lambda item: item[0])
        zones: dict[str, list[dict[str, Any]]] = {}
        for _, wire in merged:
            zones.setdefault(wire["zone"], []).append(wire)
        for zone_id, records in zones.items():
            yield ZoneFigures.of(zone_id, records)

    def _grouped_zones(
        self, fields: dict[str, Any], rows: np.ndarray, lines: np.ndarray
    ) -> Iterator[ZoneFigures]:
        """Only the columns' rows: each zone's wire columns, its rows grouped with numpy."""
        zone = fields["zone"]
        codes = zone.codes[rows]
        order = np.argsort(codes, kind="stable")  # each zone's rows together, in line order
        ordered, rows, lines = codes[order], rows[order], lines[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        ends = np.r_[starts[1:], len(order)]
        for group in np.argsort(order[starts], kind="stable").tolist():  # by first line
            start, end = int(starts[group]), int(ends[group])
            columns = wire_columns(fields, rows[start:end], lines[start:end], self.origin)
            count = end - start
            yield ZoneFigures(zone.values[ordered[start]], shared_columns(columns, count), count)


def _numbers(
    table: pa.Table, at: int | None, n: int
) -> tuple[pa.ChunkedArray, np.ndarray, np.ndarray, np.ndarray]:
    """(the column, floats, which rows have one, which rows are empty or plain decimals)."""
    if at is None:
        none = np.zeros(n, dtype=bool)
        return pa.chunked_array([], pa.string()), np.zeros(n), none, ~none
    column = table.column(_name(at))
    lengths = _np(pc.binary_length(column))
    has = lengths != 0
    plain = _np(pc.match_substring_regex(column, _PLAIN)) & (lengths <= MAX_NUMBER_CHARS)
    floats = np.zeros(n)  # the plain ones cast, the others 0 (if_else on strings is slow)
    floats[plain] = _np(pc.cast(column.filter(_arrow(plain)), pa.float64()))
    return column, floats, has, plain | ~has


def _name(at: int) -> str:
    """The name pyarrow reads the CSV's column ``at`` under."""
    return f"c{at}"


# Arrow and numpy meet here through their buffers. pyarrow's own ways (``to_numpy``, ``pa.array``,
# a Python scalar in a compute call) first ask whether they were given pandas data, which imports
# pandas: ~0.6 s of every ``produce``, spent in the first file's read.
_NUMPY_OF = {pa.int32(): np.int32, pa.int64(): np.int64, pa.float64(): np.float64}


def _np(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean or number Arrow array as numpy (read from its buffers when it has no nulls)."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    n, at = len(array), array.offset
    if array.null_count or (array.type != pa.bool_() and array.type not in _NUMPY_OF):
        return array.to_numpy(zero_copy_only=False)  # (not met in a feed: imports pandas)
    if n == 0:
        return np.zeros(0, dtype=bool if array.type == pa.bool_() else _NUMPY_OF[array.type])
    data = array.buffers()[1]
    if array.type == pa.bool_():
        bits = np.unpackbits(np.frombuffer(data, np.uint8), bitorder="little")
        return bits[at : at + n].astype(bool)
    dtype = np.dtype(_NUMPY_OF[array.type])
    return np.frombuffer(data, dtype, n, at * dtype.itemsize)


def _arrow(values: np.ndarray) -> pa.Array:
    """A numpy bool or int64 array as Arrow, from its buffer."""
    if values.dtype == np.bool_:
        bits = np.packbits(values, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])
    data = np.ascontiguousarray(values, np.int64)
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(data)])


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
