"""A batch of registrations as ClickHouse inserts it: its columns in the Native format (pure).

The registrations backlog was bound by the worker's interpreter lock, and a third of what it
did per registration was handling the batch as Python strings: unpacking the reader process's
columns into 360,000 string objects a batch, hashing the ids, tallying (zone, month, type),
then clickhouse-connect encoding every value into a Native block again. So the reader process
(streams/batch_reader.py) hands over the batch as this block instead: each text column already
in the Native ``String`` form (a value's length, then its UTF-8 bytes) with where each value
starts, the numbers as arrays, the ids' hashes and the codes of zone, month and entity type.
The worker de-duplicates on the arrays (streams/registrations.py ``dedupe``), cuts out the rows
it keeps (``take``, numpy) and inserts ``native()`` as it is (``raw_insert``).

A text column of ASCII values is encoded in one pass over its values joined by a separator:
each separator becomes the length of the value after it. A column with other characters, a
value of 128 bytes or more (a length of two bytes) or one that holds the separator is encoded
value by value. ``LowCardinality`` columns travel as ``String``;
ClickHouse converts them on insert (``input_format_native_allow_types_conversion``, on by
default), as it does for clickhouse-connect's own inserts of them.

An id's hash is xxHash64 of its UTF-8 bytes (``id_hashes``): the same in every process, so the
reader process can hash what the worker's cache (``DistinctIds``) compares. ``registrations()``
gives the rows back exactly (for the rows ClickHouse refuses, written again part by part).
Pure: ``RegistrationBlock.of(columns).registrations()`` equals ``columns``
(tests/test_registration_block.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import xxhash

from parkpulse.schemas.records import Registration
from parkpulse.schemas.registration import RegistrationColumns

SEPARATOR = "\x1f"
_SEPARATOR_BYTE = 0x1F
_ONE_BYTE_LENGTH = 0x80  # LEB128: a length below this is one byte
BEIJING_OFFSET_MS = 8 * 3600 * 1000  # registrations carry Beijing time (UTC+8)
_PLAIN_TIME_CHARS = len("2021-04-15T09:30:00+08:00")
_BEIJING_SUFFIX = np.frombuffer(b"+08:00", np.uint8)
TEXTS = (
    "zone",
    "registration_id",
    "registered_at",
    "month",
    "entity_type",
    "industry_code",
    "batch_id",
    "sent_at",
)
# The registrations table's columns in insert order, each with the type it is sent as.
INSERTED = (
    ("zone", "String"),
    ("registration_id", "String"),
    ("registered_at", "DateTime64(3, 'Asia/Shanghai')"),
    ("month", "String"),
    ("entity_type", "String"),
    ("industry_code", "String"),
    ("registered_capital", "Nullable(Float64)"),
    ("batch_id", "String"),
    ("sent_at", "Nullable(DateTime64(6, 'UTC'))"),
)


def _leb128(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


@dataclass(frozen=True, slots=True)
class TextColumn:
    """Texts as a Native ``String`` column: ``data`` holds each value's LEB128 byte length
    and its UTF-8 bytes, one after the other; value ``i`` is ``data[starts[i]:starts[i + 1]]``."""

    data: np.ndarray  # uint8
    starts: np.ndarray  # int64, one more than the values

    @classmethod
    def of(cls, values: Sequence[str]) -> TextColumn:
        n = len(values)
        joined = SEPARATOR.join(values)
        if n and joined.isascii() and joined.count(SEPARATOR) == n - 1:
            # A character is a byte: each separator's place is where the next value's length
            # goes, one more for the first value's.
            lengths = np.fromiter(map(len, values), np.int64, n)
            if lengths.max() < _ONE_BYTE_LENGTH:
                data = np.frombuffer((SEPARATOR + joined).encode("ascii"), np.uint8).copy()
                starts = np.zeros(n + 1, np.int64)
                np.cumsum(lengths + 1, out=starts[1:])
                data[starts[:-1]] = lengths
                return cls(data, starts)
        return cls._one_by_one(values)

    @classmethod
    def _one_by_one(cls, values: Sequence[str]) -> TextColumn:
        parts = [_leb128(len(b)) + b for b in (v.encode() for v in values)]
        starts = np.zeros(len(parts) + 1, np.int64)
        np.cumsum(np.fromiter(map(len, parts), np.int64, len(parts)), out=starts[1:])
        return cls(np.frombuffer(b"".join(parts), np.uint8), starts)

    def __len__(self) -> int:
        return len(self.starts) - 1

    def take(self, rows: np.ndarray) -> TextColumn:
        """The values at ``rows``, in that order."""
        first, lengths = self.starts[rows], np.diff(self.starts)[rows]
        starts = np.zeros(len(rows) + 1, np.int64)
        np.cumsum(lengths, out=starts[1:])
        picked = np.repeat(first - starts[:-1], lengths) + np.arange(starts[-1])
        return TextColumn(self.data[picked], starts)

    def values(self) -> list[str]:
        """The texts (a Python step per value: for the rare paths and the tests)."""
        data = self.data.tobytes()
        out = []
        for i in range(len(self)):
            at, stop = int(self.starts[i]), int(self.starts[i + 1])
            while data[at] & 0x80:  # the length's bytes
                at += 1
            out.append(data[at + 1 : stop].decode())
        return out


@dataclass(frozen=True, slots=True)
class Codes:
    """A text column's distinct values and each row's index into them."""

    values: tuple[str, ...]
    of_rows: np.ndarray  # int32

    @classmethod
    def of(cls, column: Sequence[str]) -> Codes:
        index = {value: i for i, value in enumerate(dict.fromkeys(column))}
        return cls(tuple(index), np.fromiter(map(index.__getitem__, column), np.int32, len(column)))

    def take(self, rows: np.ndarray) -> Codes:
        return Codes(self.values, self.of_rows[rows])


@dataclass(frozen=True, slots=True, eq=False)
class RegistrationBlock(Sequence[Registration]):
    """A batch's registrations, ready to insert (``native``) and to de-duplicate (``hashes``,
    the codes); read as a sequence, it gives Registrations (decoded: for tests and rare paths)."""

    texts: dict[str, TextColumn]  # TEXTS
    registered_ms: np.ndarray  # int64, Unix milliseconds
    capital: np.ndarray  # float64 (0 where there is none)
    no_capital: np.ndarray  # uint8: 1 where there is none
    sent_us: np.ndarray  # int64, Unix microseconds (0 where there is none)
    not_sent: np.ndarray  # uint8: 1 where sent_at is "" or unreadable
    hashes: np.ndarray  # int64: id_hashes of registration_id
    zones: Codes
    months: Codes
    kinds: Codes  # entity types
    oldest_sent: str = ""  # the earliest sent_at, for the logs

    @classmethod
    def of(cls, columns: RegistrationColumns) -> RegistrationBlock:
        n = len(columns)
        capital = np.array(columns.registered_capital, np.float64) if n else np.empty(0)
        no_capital = np.isnan(capital)  # None became NaN; an amount is never NaN (validated)
        sent = {text: epoch_us(text) for text in set(columns.sent_at)}  # one per envelope
        sent_us = np.fromiter((sent[t] or 0 for t in columns.sent_at), np.int64, n)
        not_sent = np.fromiter((sent[t] is None for t in columns.sent_at), np.uint8, n)
        return cls(
            texts={name: TextColumn.of(getattr(columns, name)) for name in TEXTS},
            registered_ms=beijing_ms(columns.registered_at),
            capital=np.where(no_capital, 0.0, capital),
            no_capital=no_capital.astype(np.uint8),
            sent_us=sent_us,
            not_sent=not_sent,
            hashes=id_hashes(columns.registration_id),
            zones=Codes.of(columns.zone),
            months=Codes.of(columns.month),
            kinds=Codes.of(columns.entity_type),
            oldest_sent=min((t for t in sent if sent[t] is not None), default=""),
        )

    @classmethod
    def of_rows(cls, registrations: Sequence[Registration]) -> RegistrationBlock:
        """``registrations`` as a block (returned as they are when already one)."""
        if isinstance(registrations, RegistrationBlock):
            return registrations
        return cls.of(RegistrationColumns.of(registrations))

    def __len__(self) -> int:
        return len(self.hashes)

    def __iter__(self) -> Iterator[Registration]:
        return iter(self.registrations())

    def __getitem__(self, index: int) -> Registration:  # type: ignore[override]
        return self.registrations()[index]

    def pairs(self) -> set[tuple[str, str]]:
        """The (zone, month)s of its rows."""
        months = len(self.months.values)
        both = np.unique(self.zones.of_rows.astype(np.int64) * months + self.months.of_rows)
        return {(self.zones.values[k // months], self.months.values[k % months]) for k in both}

    def take(self, rows: np.ndarray) -> RegistrationBlock:
        """The rows at ``rows`` (sorted), in that order."""
        return RegistrationBlock(
            texts={name: column.take(rows) for name, column in self.texts.items()},
            registered_ms=self.registered_ms[rows],
            capital=self.capital[rows],
            no_capital=self.no_capital[rows],
            sent_us=self.sent_us[rows],
            not_sent=self.not_sent[rows],
            hashes=self.hashes[rows],
            zones=self.zones.take(rows),
            months=self.months.take(rows),
            kinds=self.kinds.take(rows),
            oldest_sent=self.oldest_sent,
        )

    def native(self) -> bytes:
        """The rows as one block of ClickHouse's Native format, columns in ``INSERTED``."""
        out = [_leb128(len(INSERTED)), _leb128(len(self))]
        data = {
            "registered_at": (self.registered_ms,),
            "registered_capital": (self.no_capital, self.capital),
            "sent_at": (self.not_sent, self.sent_us),
        }
        for name, kind in INSERTED:
            for text in (name, kind):
                out += (_leb128(len(text)), text.encode())
            arrays = data.get(name) or (self.texts[name].data,)
            out += (array.tobytes() for array in arrays)
        return b"".join(out)

    def registrations(self) -> RegistrationColumns:
        """The registrations as they were read (for the rows ClickHouse refuses, and tests)."""
        texts = {name: column.values() for name, column in self.texts.items()}
        capital = [
            None if none else value
            for value, none in zip(self.capital.tolist(), self.no_capital.tolist(), strict=True)
        ]
        return RegistrationColumns(registered_capital=capital, **texts)


def id_hashes(ids: Sequence[str]) -> np.ndarray:
    """Each registration id's xxHash64 (as int64): the same in every process."""
    return np.fromiter(map(xxhash.xxh64_intdigest, ids), np.uint64, len(ids)).view(np.int64)


def beijing_ms(texts: Sequence[str]) -> np.ndarray:
    """Unix milliseconds of ``YYYY-MM-DDTHH:MM:SS[.f]+08:00`` texts, parsed in bulk by numpy.

    The common case — every text whole seconds, 25 characters — is parsed from one buffer of
    them all, cut to fixed-width ``S19`` values (half the CPU of slicing each text in Python).
    """
    n = len(texts)
    joined = "".join(texts)
    if len(joined) == _PLAIN_TIME_CHARS * n and joined.isascii():
        chars = np.frombuffer(joined.encode("ascii"), np.uint8).reshape(n, _PLAIN_TIME_CHARS)
        if (chars[:, 19:] == _BEIJING_SUFFIX).all():
            local = np.ascontiguousarray(chars[:, :19]).view("S19").ravel().astype("datetime64[s]")
            return local.astype(np.int64) * 1000 - BEIJING_OFFSET_MS
    local = np.array([t[:-6] for t in texts], dtype="datetime64[us]")
    return (local.astype(np.int64) // 1000) - BEIJING_OFFSET_MS


def epoch_us(text: str) -> int | None:
    """Unix microseconds of an ISO 8601 time (naive read as UTC), None when it is not one."""
    ts = parse_ts(text)
    if ts is None:
        return None
    return round(ts.timestamp() * 1_000_000)


def parse_ts(text: str) -> datetime | None:
    if not text:
        return None
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)
