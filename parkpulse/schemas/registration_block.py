"""A batch of registrations as ClickHouse inserts it: its columns in the Native format (pure).

The registrations backlog was bound by the worker's interpreter lock, and a quarter of what
it did per registration was handling the batch as Python strings: unpacking the reader process's
columns into 360,000 string objects a batch, hashing the ids, tallying (zone, month, type),
then clickhouse-connect encoding every value into a Native block again. So the reader process
(streams/batch_reader.py) hands over the batch as this block instead, and the worker makes no
Python object per registration: it de-duplicates on the block's arrays (streams/registrations.py
``dedupe``), cuts out the rows it keeps (``take``, numpy) and inserts ``native()`` as it is
(``raw_insert``).

The columns of a handful of values repeated (zone, month, entity type, industry, an envelope's
batch and send time) are held as their distinct values and a code per row (``Codes``, one dict
lookup a row) and written in ClickHouse's ``LowCardinality`` serialization: the values once,
then the codes as bytes (``batch_id``, a ``String`` column, is converted by ClickHouse on
insert). The ids are a ``String`` column (``TextColumn``), encoded in one pass over the values
joined by a separator when they are ASCII: each separator becomes the length of the value
after it; other ids are encoded value by value. ``registered_at`` is Unix microseconds, the
capital an array with its null map. clickhouse-connect encodes the same rows to the same bytes
(tests/test_registration_block.py).

An id's hash is xxHash64 of its UTF-8 bytes (``id_hashes``): the same in every process, so the
reader process can hash what the worker's cache (``DistinctIds``) compares. ``registrations()``
gives the rows back exactly (for the rows ClickHouse refuses, written again part by part).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import xxhash

from parkpulse.schemas.periods import SHANGHAI
from parkpulse.schemas.records import Registration
from parkpulse.schemas.registration import RegistrationColumns

SEPARATOR = "\x1f"
_ONE_BYTE_LENGTH = 0x80  # LEB128: a length below this is one byte
_LOW_CARDINALITY = 1  # the serialization version ClickHouse reads
_NEW_KEYS = (1 << 9) | (1 << 10)  # a dictionary of its own, sent with the rows
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PLAIN_TIME_CHARS = len("2021-04-15T09:30:00+08:00")
_BEIJING_SUFFIX = np.frombuffer(b"+08:00", np.uint8)
BEIJING_OFFSET_US = 8 * 3600 * 1_000_000  # registrations carry Beijing time (UTC+8)
# The registrations table's columns in insert order, each with the type it is sent as.
INSERTED = (
    ("zone", "LowCardinality(String)"),
    ("registration_id", "String"),
    ("registered_at", "DateTime64(3, 'Asia/Shanghai')"),
    ("month", "LowCardinality(String)"),
    ("entity_type", "LowCardinality(String)"),
    ("industry_code", "LowCardinality(String)"),
    ("registered_capital", "Nullable(Float64)"),
    ("batch_id", "LowCardinality(String)"),
    ("sent_at", "Nullable(DateTime64(6, 'UTC'))"),
)
_CODED = ("zone", "month", "entity_type", "industry_code", "batch_id", "sent_at")


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


def _u64(value: int) -> bytes:
    return value.to_bytes(8, "little")


@dataclass(frozen=True, slots=True)
class TextColumn:
    """Texts as a Native ``String`` column: ``data`` holds each value's LEB128 byte length
    and its UTF-8 bytes, one after the other; value ``i`` is ``data[starts[i]:starts[i + 1]]``."""

    data: np.ndarray  # uint8
    starts: np.ndarray  # int64, one more than the values

    @classmethod
    def of(cls, values: Sequence[str]) -> TextColumn:
        n = len(values)
        joined = SEPARATOR.join(["", *values])  # a separator before each value
        if n and joined.isascii() and joined.count(SEPARATOR) == n:
            # A character is a byte: each separator's place is where its value's length goes.
            lengths = np.fromiter(map(len, values), np.int64, n)
            if lengths.max() < _ONE_BYTE_LENGTH:
                data = np.frombuffer(bytearray(joined, "ascii"), np.uint8)
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

    @classmethod
    def concat(cls, columns: Sequence[TextColumn]) -> TextColumn:
        """The columns' values one after the other."""
        ends = np.cumsum([len(c.data) for c in columns])
        offsets = np.concatenate(([0], ends[:-1]))
        starts = [c.starts[:-1] + offset for c, offset in zip(columns, offsets, strict=True)]
        return cls(
            np.concatenate([c.data for c in columns]),
            np.concatenate([*starts, ends[-1:]]).astype(np.int64),
        )

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


def _key_type(distinct: int) -> int:
    """LowCardinality's key width for ``distinct`` values: 0 → UInt8, 1 → UInt16, 2 → UInt32."""
    return (max(distinct, 1).bit_length() - 1) >> 3


@dataclass(frozen=True, slots=True)
class Codes:
    """A column as its distinct values (in the order first met) and each row's index into
    them, in LowCardinality's key width."""

    values: tuple[str, ...]
    of_rows: np.ndarray  # uint8, uint16 or uint32

    @classmethod
    def of(cls, column: Sequence[str]) -> Codes:
        index = {value: i for i, value in enumerate(dict.fromkeys(column))}
        width = np.dtype(f"uint{8 << _key_type(len(index))}")
        return cls(tuple(index), np.fromiter(map(index.__getitem__, column), width, len(column)))

    @classmethod
    def concat(cls, parts: Sequence[Codes]) -> Codes:
        """The parts' rows one after the other, coded over all of their values."""
        index = {v: i for i, v in enumerate(dict.fromkeys(v for p in parts for v in p.values))}
        width = np.dtype(f"uint{8 << _key_type(len(index))}")
        recoded = [np.array([index[v] for v in p.values], width)[p.of_rows] for p in parts]
        return cls(tuple(index), np.concatenate(recoded).astype(width))

    def take(self, rows: np.ndarray) -> Codes:
        return Codes(self.values, self.of_rows[rows])

    def native(self) -> bytes:
        """The column in LowCardinality's Native serialization: its version, its dictionary
        (the values as a String column), then the rows' keys."""
        if not len(self.of_rows):
            return _u64(_LOW_CARDINALITY)
        flags = _NEW_KEYS | _key_type(len(self.values))
        dictionary = TextColumn.of(self.values).data.tobytes()
        head = (_LOW_CARDINALITY, flags, len(self.values))
        return b"".join(
            (*map(_u64, head), dictionary, _u64(len(self.of_rows)), self.of_rows.tobytes())
        )

    def decoded(self) -> list[str]:
        return [self.values[k] for k in self.of_rows.tolist()]


@dataclass(frozen=True, slots=True, eq=False)
class RegistrationBlock(Sequence[Registration]):
    """A batch's registrations, ready to insert (``native``) and to de-duplicate (``hashes``,
    the codes); read as a sequence, it gives Registrations (decoded: for tests and rare paths)."""

    ids: TextColumn
    hashes: np.ndarray  # int64: id_hashes of the ids
    coded: dict[str, Codes]  # _CODED
    registered_us: np.ndarray  # int64, Unix microseconds
    capital: np.ndarray  # float64 (0 where there is none)
    no_capital: np.ndarray  # uint8: 1 where there is none

    @classmethod
    def of(cls, columns: RegistrationColumns) -> RegistrationBlock:
        n = len(columns)
        capital = np.array(columns.registered_capital, np.float64) if n else np.empty(0)
        no_capital = np.isnan(capital)  # None became NaN; an amount is never NaN (validated)
        return cls(
            ids=TextColumn.of(columns.registration_id),
            hashes=id_hashes(columns.registration_id),
            coded={name: Codes.of(getattr(columns, name)) for name in _CODED},
            registered_us=beijing_us(columns.registered_at),
            capital=np.where(no_capital, 0.0, capital),
            no_capital=no_capital.astype(np.uint8),
        )

    @classmethod
    def of_rows(cls, registrations: Sequence[Registration]) -> RegistrationBlock:
        """``registrations`` as a block (returned as they are when already one)."""
        if isinstance(registrations, RegistrationBlock):
            return registrations
        return cls.of(RegistrationColumns.of(registrations))

    @classmethod
    def concat(cls, blocks: Sequence[RegistrationBlock]) -> RegistrationBlock:
        """The blocks' rows one after the other (as one block of all their registrations)."""
        if len(blocks) == 1:
            return blocks[0]
        return cls(
            ids=TextColumn.concat([b.ids for b in blocks]),
            hashes=np.concatenate([b.hashes for b in blocks]),
            coded={name: Codes.concat([b.coded[name] for b in blocks]) for name in _CODED},
            registered_us=np.concatenate([b.registered_us for b in blocks]),
            capital=np.concatenate([b.capital for b in blocks]),
            no_capital=np.concatenate([b.no_capital for b in blocks]),
        )

    @property
    def zones(self) -> Codes:
        return self.coded["zone"]

    @property
    def months(self) -> Codes:
        return self.coded["month"]

    @property
    def kinds(self) -> Codes:
        return self.coded["entity_type"]

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

    @property
    def oldest_sent(self) -> str:
        """The earliest readable ``sent_at`` of its rows ("" when none), for the logs."""
        sent = self.coded["sent_at"]
        return min((t for t in sent.values if epoch_us(t) is not None), default="")

    def take(self, rows: np.ndarray) -> RegistrationBlock:
        """The rows at ``rows`` (sorted), in that order."""
        return RegistrationBlock(
            ids=self.ids.take(rows),
            hashes=self.hashes[rows],
            coded={name: codes.take(rows) for name, codes in self.coded.items()},
            registered_us=self.registered_us[rows],
            capital=self.capital[rows],
            no_capital=self.no_capital[rows],
        )

    def native(self) -> bytes:
        """The rows as one block of ClickHouse's Native format, columns in ``INSERTED``."""
        sent = self.coded["sent_at"]
        sent_us = [epoch_us(text) for text in sent.values]  # one per envelope
        sent_keys = sent.of_rows.astype(np.intp)
        data = {
            "registration_id": (self.ids.data.tobytes(),),
            "registered_at": (np.floor_divide(self.registered_us, 1000).tobytes(),),
            "registered_capital": (self.no_capital.tobytes(), self.capital.tobytes()),
            "sent_at": (
                np.array([us is None for us in sent_us], np.uint8)[sent_keys].tobytes(),
                np.array([us or 0 for us in sent_us], np.int64)[sent_keys].tobytes(),
            ),
        }
        out = [_leb128(len(INSERTED)), _leb128(len(self))]
        for name, kind in INSERTED:
            for text in (name, kind):
                out += (_leb128(len(text)), text.encode())
            out += data[name] if name in data else (self.coded[name].native(),)
        return b"".join(out)

    def registrations(self) -> RegistrationColumns:
        """The registrations as they were read (for the rows ClickHouse refuses, and tests)."""
        capital = [
            None if none else value
            for value, none in zip(self.capital.tolist(), self.no_capital.tolist(), strict=True)
        ]
        registered = [
            (_EPOCH + timedelta(microseconds=us)).astimezone(SHANGHAI).isoformat()
            for us in self.registered_us.tolist()
        ]
        return RegistrationColumns(
            registration_id=self.ids.values(),
            registered_at=registered,
            registered_capital=capital,
            **{name: codes.decoded() for name, codes in self.coded.items()},
        )


def id_hashes(ids: Sequence[str]) -> np.ndarray:
    """Each registration id's xxHash64 of its UTF-8 bytes (as int64): the same in every
    process. (xxhash 4 hashes bytes only; 3 took a text and encoded it.)"""
    hashed = map(xxhash.xxh64_intdigest, map(str.encode, ids))
    return np.fromiter(hashed, np.uint64, len(ids)).view(np.int64)


def beijing_us(texts: Sequence[str]) -> np.ndarray:
    """Unix microseconds of ``YYYY-MM-DDTHH:MM:SS[.f]+08:00`` texts, parsed in bulk by numpy.

    The common case — every text whole seconds, 25 characters — is parsed from one buffer of
    them all, cut to fixed-width ``S19`` values (half the CPU of slicing each text in Python).
    """
    n = len(texts)
    joined = "".join(texts)
    if len(joined) == _PLAIN_TIME_CHARS * n and joined.isascii():
        chars = np.frombuffer(joined.encode("ascii"), np.uint8).reshape(n, _PLAIN_TIME_CHARS)
        if (chars[:, 19:] == _BEIJING_SUFFIX).all():
            local = np.ascontiguousarray(chars[:, :19]).view("S19").ravel().astype("datetime64[s]")
            return local.astype(np.int64) * 1_000_000 - BEIJING_OFFSET_US
    local = np.array([t[:-6] for t in texts], dtype="datetime64[us]")
    return local.astype(np.int64) - BEIJING_OFFSET_US


def beijing_ms(texts: Sequence[str]) -> np.ndarray:
    """Unix milliseconds of Beijing times (a fraction of a millisecond dropped, as
    ``DateTime64(3)`` keeps them)."""
    return np.floor_divide(beijing_us(texts), 1000)


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
