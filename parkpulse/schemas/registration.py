"""Registration events: validation with reason codes (the wire form is in schemas.wire).

A registration is one newly registered market entity. On the wire (``parkpulse.registrations``,
key zone) a message is a batch envelope of a few hundred registrations of one zone — Faust costs
~90 µs per Kafka message, so one message per entity would cap a worker near 11k events/s —
or a single bare registration object::

    {"batch_id": "<sha256 of the ids>", "sent_at": "…", "registrations": [{…}, {…}, …]}
    {"zone": "jinan-hitech", "registration_id": "91370100MA3C4XYZ1K", "registered_at": "…",
     "entity_type": "enterprise", "industry_code": "I65", "registered_capital": 500}

This is the hot path of the heaviest stream, so it reads lower-case names directly and only
falls back to case-insensitive names when a record spells them otherwise.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from operator import attrgetter, itemgetter
from typing import Any, overload

import orjson

from parkpulse.schemas.catalogue import Catalogue, convert_unit
from parkpulse.schemas.errors import RejectedInput
from parkpulse.schemas.fields import MAX_FIELD_CHARS, show
from parkpulse.schemas.names import UNIT_ALIASES
from parkpulse.schemas.periods import SHANGHAI
from parkpulse.schemas.records import ENTITY_TYPES, Registration

__all__ = [
    "CAPITAL_UNIT",
    "Envelope",
    "RegistrationColumns",
    "plain_records",
    "read_envelope",
    "validate_records",
    "validate_registration",
]

# Registrations are dated in Beijing time (UTC+8, no daylight saving): a naive timestamp is read
# as Beijing time and the month a registration counts in is its Beijing-time month.
CAPITAL_UNIT = "CNY_10K"  # 万元, how registers state registered capital
MIN_YEAR, MAX_YEAR = 1949, 2100
# A registration stamped a little after the worker's clock is clock skew, not the future.
CLOCK_SKEW = timedelta(minutes=10)

# A unified social credit code is 18 characters of 0-9A-Z; older registers use other ids.
_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z_\-]{0,63}")
# GB/T 4754-2017: a section letter A–T, then optionally a division (2 digits), group (3), class (4).
_INDUSTRY = re.compile(r"[A-T](?:[0-9]{2,4})?")
_ENTITY_ALIASES = {
    "企业": "enterprise",
    "個體工商戶": "individual_business",
    "个体工商户": "individual_business",
    "农民专业合作社": "farmers_cooperative",
    "農民專業合作社": "farmers_cooperative",
}
_FIELDS = ("zone", "registration_id", "registered_at", "entity_type", "industry_code")
_REQUIRED = frozenset(_FIELDS)
_PLAIN_NAMES = frozenset((*_FIELDS, "registered_capital"))  # no unit, no record's own sent_at
# Whole-second Beijing times, one after the other (the registered_at column joined).
_PLAIN_TIME = r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\+08:00"
# Days up to the 28th are real dates in every month; a later one is looked at on its own.
_PLAIN_DAY = r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])"
_PLAIN_TIMES = re.compile(rf"(?:{_PLAIN_DAY}{_PLAIN_TIME})*")
_PLAIN_LATE_TIMES = re.compile(rf"(?:[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}{_PLAIN_TIME})*")
_PLAIN_VALUES = itemgetter(*_FIELDS, "registered_capital")
_NUMBERS = frozenset((float, int, type(None)))
_ENTITY_SET = frozenset(ENTITY_TYPES)
_EXACT_INT = 2**53  # an int below this is exactly the float it converts to


def _lower_names(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The record with lower-case names; a name given twice with different values is malformed."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if not isinstance(key, str):
            continue
        name = key.strip().lower()
        if name in out and out[name] != value:
            raise RejectedInput("malformed", f"{key.strip()} is given twice with different values")
        out[name] = value
    return out


def _text(doc: Mapping[str, Any], name: str) -> str:
    value = doc.get(name)
    if value is None:
        raise RejectedInput("malformed", f"{name} is missing")
    if value.__class__ is not str:
        if isinstance(value, int) and not isinstance(value, bool) and name == "registration_id":
            return str(value)
        raise RejectedInput(
            "malformed", f"{name} must be text, not {type(value).__name__} {show(value)}"
        )
    if len(value) > MAX_FIELD_CHARS:
        raise RejectedInput("malformed", f"{name} is {len(value)} characters long")
    value = value.strip()
    if not value:
        raise RejectedInput("malformed", f"{name} is missing")
    return value


def _timestamp(text: str) -> datetime | None:
    """An ISO 8601 date-time, naive read as Beijing time; None when it is not one."""
    if not text.isascii():
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=SHANGHAI)


def _registered_at(doc: Mapping[str, Any], now: datetime) -> tuple[str, str]:
    """(registered_at in Beijing time, its month), or the reason it is refused."""
    text = _text(doc, "registered_at")
    when = _timestamp(text)
    if when is None:
        raise RejectedInput(
            "bad_period",
            f"registered_at {show(text)} is not an ISO 8601 date-time "
            "(e.g. 2021-04-15T09:30:00+08:00)",
        )
    local = when.astimezone(SHANGHAI)
    if not MIN_YEAR <= local.year <= MAX_YEAR:
        raise RejectedInput(
            "bad_period", f"registered_at {show(text)}: year outside {MIN_YEAR}..{MAX_YEAR}"
        )
    if when > now + CLOCK_SKEW:
        raise RejectedInput(
            "future_period", f"registered_at {show(text)} is after now ({now.isoformat()})"
        )
    return local.isoformat(), f"{local.year:04d}-{local.month:02d}"


def _entity_type(doc: Mapping[str, Any]) -> str:
    text = _text(doc, "entity_type")
    if text in ENTITY_TYPES:
        return text
    folded = _ENTITY_ALIASES.get(text) or text.lower()
    if folded not in ENTITY_TYPES:
        raise RejectedInput(
            "malformed", f"entity_type {show(text)} is not one of {', '.join(ENTITY_TYPES)}"
        )
    return folded


def _capital(doc: Mapping[str, Any]) -> float | None:
    value = doc.get("registered_capital")
    if value is None or value == "":
        return None
    if value.__class__ is str:
        try:
            number = float(value.replace(",", "")) if len(value) <= 64 else math.nan
        except ValueError:
            raise RejectedInput(
                "bad_value", f"registered_capital {show(value)} is not a number"
            ) from None
    elif isinstance(value, float):
        number = value
    elif isinstance(value, int) and not isinstance(value, bool):
        number = float(value) if value.bit_length() < 1024 else math.inf
    else:
        raise RejectedInput(
            "malformed",
            f"registered_capital must be a number, not {type(value).__name__} {show(value)}",
        )
    unit = doc.get("unit")
    if unit is not None and unit != CAPITAL_UNIT:
        if unit.__class__ is not str:
            raise RejectedInput("malformed", f"unit must be text, not {show(unit)}")
        code = UNIT_ALIASES.get(unit.strip(), unit.strip().upper())
        converted = convert_unit(number, code, CAPITAL_UNIT)
        if converted is None:
            raise RejectedInput(
                "unit_mismatch",
                f"unit {show(unit)} does not convert to {CAPITAL_UNIT} for registered_capital",
            )
        number = converted
    if not math.isfinite(number) or number < 0:
        raise RejectedInput(
            "bad_value",
            f"registered_capital {show(value)} must be a finite amount of at least 0 "
            f"{CAPITAL_UNIT}",
        )
    return number


def _industries(catalogue: Catalogue) -> set[str]:
    """The valid industry codes met so far (a few hundred in practice), per catalogue."""
    seen = catalogue.derived.get("industries")
    if seen is None:
        seen = catalogue.derived["industries"] = set()
    return seen


def _industry(code: str, seen: set[str]) -> str:
    """A GB/T 4754 code (upper-cased when written in lower case), remembered when valid."""
    if not _INDUSTRY.fullmatch(code):
        code = code.upper()
        if not _INDUSTRY.fullmatch(code):
            raise RejectedInput(
                "bad_value",
                f"industry_code {show(code)} is not a GB/T 4754 code (A–T, then up to 4 "
                "digits, e.g. I65)",
            )
    if len(seen) < 100_000:
        seen.add(code)
    return code


@lru_cache(maxsize=8)  # one ``now`` per batch, asked once per envelope
def _latest(now: datetime) -> str:
    """``now + CLOCK_SKEW`` as Beijing-time text: the latest a plain registered_at may be."""
    return (now + CLOCK_SKEW).astimezone(SHANGHAI).isoformat()[:19]


def _is_plain_time(text: Any, latest: str) -> bool:
    """Whether ``text`` is a whole-second Beijing time that _registered_at keeps as it is."""
    if not (
        text.__class__ is str
        and len(text) == 25
        and text[10] == "T"
        and text[19:] == "+08:00"
        and "1949" <= text[:4] <= "2100"
        and text[:19] <= latest
    ):
        return False
    try:
        datetime.fromisoformat(text)  # a real date and time (no 30 February)
    except ValueError:
        return False
    return True


def validate_registration(
    raw: Any,
    catalogue: Catalogue,
    *,
    now: datetime,
    batch_id: str = "",
    sent_at: str = "",
) -> Registration:
    """A registration event as a Registration; raises RejectedInput with a reason code.

    A ``registered_at`` after ``now`` (beyond a few minutes of clock skew) is a
    ``future_period``. ``batch_id`` and ``sent_at`` come from the envelope; a record's own
    ``sent_at`` wins, and one that cannot be read is ignored (it only serves latency).
    """
    seen = _industries(catalogue)
    return _registration(raw, catalogue, now, _latest(now), seen, batch_id, sent_at)


def _named_fields(raw: Any) -> tuple[Mapping[str, Any], tuple[Any, ...]]:
    """The record as a mapping (its names lower-cased when spelled otherwise) and its zone,
    registration_id, registered_at, entity_type and industry_code as written (None: missing)."""
    if type(raw) is not dict:
        if not isinstance(raw, Mapping):
            raise RejectedInput(
                "malformed",
                f"a registration must be a mapping of field names, not {type(raw).__name__}",
            )
        raw = dict(raw)
    values = tuple(raw.get(name) for name in _FIELDS)
    if None in values and not raw.keys() >= _REQUIRED:  # names spelled otherwise (or missing)
        doc = _lower_names(raw)
        return doc, tuple(doc.get(name) for name in _FIELDS)
    return raw, values


def _plain_or_checked_capital(doc: Mapping[str, Any]) -> float | None:
    """registered_capital taken as it is when plain (a non-negative amount in the default
    unit, or none), else through ``_capital``'s full check."""
    capital = doc.get("registered_capital")
    if capital is None or (
        capital.__class__ is float and 0 <= capital < math.inf and "unit" not in doc
    ):
        return capital  # as _capital reads it
    if capital.__class__ is int and 0 <= capital < _EXACT_INT and "unit" not in doc:
        return float(capital)
    return _capital(doc)


def _registration(
    raw: Any,
    catalogue: Catalogue,
    now: datetime,
    latest: str,
    seen: set[str],
    batch_id: str,
    sent_at: str,
) -> Registration:
    """validate_registration, the checks in the order their messages take precedence.

    The hot path of the heaviest stream: a field whose value is plain (lower-case names, Beijing
    time, a known zone and industry) is taken as it is; any other value gets that field's full
    check, which gives its message or the same value.
    """
    doc, (zone, rid, registered_at, kind, industry) = _named_fields(raw)
    if zone.__class__ is not str or zone not in catalogue.zones:
        zone = _text(doc, "zone")
    plain_id = rid.__class__ is str and rid.isalnum() and rid.isascii() and len(rid) <= 64
    if not plain_id:
        rid = _text(doc, "registration_id")
    if _is_plain_time(registered_at, latest):
        month = registered_at[:7]
    else:
        registered_at, month = _registered_at(doc, now)
    if kind.__class__ is not str or kind not in _ENTITY_SET:
        kind = _entity_type(doc)
    known = industry.__class__ is str and industry in seen
    if not known:
        industry = _text(doc, "industry_code")
    capital = _plain_or_checked_capital(doc)
    if zone not in catalogue.zones:
        raise RejectedInput("unknown_zone", f"zone {show(zone)} is not a known zone")
    if not plain_id and not _ID.fullmatch(rid):
        raise RejectedInput(
            "malformed",
            f"registration_id {show(rid)} must be 1–64 letters, digits, '-' or '_'",
        )
    if not known:
        industry = _industry(industry, seen)
    own_sent = doc.get("sent_at")
    if own_sent.__class__ is str and _timestamp(own_sent) is not None:
        sent_at = own_sent
    return Registration(zone, rid, registered_at, kind, industry, capital, month, batch_id, sent_at)


def validate_records(
    records: list[Any],
    catalogue: Catalogue,
    *,
    now: datetime,
    batch_id: str = "",
    sent_at: str = "",
) -> tuple[list[Registration], list[tuple[int, Any, RejectedInput]]]:
    """Every record of an envelope: the valid ones, and (1-based line, raw, error) for the rest."""
    valid: list[Registration] = []
    rejected: list[tuple[int, Any, RejectedInput]] = []
    add = valid.append
    latest = _latest(now)
    seen = _industries(catalogue)
    for line, raw in enumerate(records, start=1):
        try:
            add(_registration(raw, catalogue, now, latest, seen, batch_id, sent_at))
        except RejectedInput as exc:
            rejected.append((line, raw, exc.detached()))
    return valid, rejected


_ROW_FIELDS = (
    "zone",
    "registration_id",
    "registered_at",
    "entity_type",
    "industry_code",
    "registered_capital",
    "month",
    "batch_id",
    "sent_at",
)
_ROW_VALUES = attrgetter(*_ROW_FIELDS)


@dataclass(eq=False)
class RegistrationColumns(Sequence[Registration]):
    """Registrations held column by column, as a batch travels from decoding to ClickHouse.

    Lists of texts and numbers are all the collector sees of a batch (one Registration object
    per record made it scan every one); read as a sequence, it gives Registrations.
    """

    zone: list[str] = field(default_factory=list)
    registration_id: list[str] = field(default_factory=list)
    registered_at: list[str] = field(default_factory=list)
    entity_type: list[str] = field(default_factory=list)
    industry_code: list[str] = field(default_factory=list)
    registered_capital: list[float | None] = field(default_factory=list)
    month: list[str] = field(default_factory=list)
    batch_id: list[str] = field(default_factory=list)
    sent_at: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, registrations: Iterable[Registration]) -> RegistrationColumns:
        """The columns of ``registrations`` (returned as they are when already columns)."""
        if isinstance(registrations, RegistrationColumns):
            return registrations
        out = cls()
        out.add_rows(registrations)
        return out

    def columns(self) -> tuple[list[Any], ...]:
        return tuple(getattr(self, name) for name in _ROW_FIELDS)

    def add_rows(self, registrations: Iterable[Registration]) -> None:
        rows = [_ROW_VALUES(r) for r in registrations]
        if rows:
            for column, values in zip(self.columns(), zip(*rows, strict=True), strict=True):
                column += values

    def extend(self, other: RegistrationColumns) -> None:
        for column, values in zip(self.columns(), other.columns(), strict=True):
            column += values

    def take(self, indices: Sequence[int]) -> RegistrationColumns:
        """The rows at ``indices``, in that order."""
        if not indices:
            return RegistrationColumns()
        pick = itemgetter(*indices)
        if len(indices) == 1:
            return RegistrationColumns(*([pick(column)] for column in self.columns()))
        return RegistrationColumns(*(list(pick(column)) for column in self.columns()))

    def __len__(self) -> int:
        return len(self.registration_id)

    @overload
    def __getitem__(self, index: int) -> Registration: ...
    @overload
    def __getitem__(self, index: slice) -> list[Registration]: ...
    def __getitem__(self, index: int | slice) -> Registration | list[Registration]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return Registration(*(column[index] for column in self.columns()))


def plain_records(
    records: list[Any],
    catalogue: Catalogue,
    *,
    now: datetime,
    batch_id: str = "",
    sent_at: str = "",
    key: str | None = None,
) -> RegistrationColumns | None:
    """An envelope's records as columns of Registrations when every one is plain, else None.

    The common case, checked a field at a time over the whole envelope (a few C calls per field
    instead of a dozen Python steps per record): dicts of the lower-case names only, a known
    zone (the message key, when given), plain ids, whole-second Beijing times no later than
    ``now`` allows, known entity types, GB/T 4754 industry codes as written, capital a plain
    amount or none. Exactly the records ``_registration`` takes as they are, so the result is
    what ``validate_records`` gives them; any other record (or a stray under another zone's key)
    makes this None, and the caller reads the envelope record by record, each reject with its
    own reason and line.
    """
    if not records:
        return RegistrationColumns()
    try:
        # Six names each, and _PLAIN_VALUES finds all six: no other name (cheaper than a union
        # of every record's names). KeyError for a record without capital: it is read on its
        # own (as none).
        if set(map(type, records)) != {dict} or set(map(len, records)) != {len(_PLAIN_NAMES)}:
            return None
        zones, ids, times, kinds, industries, capitals = zip(
            *map(_PLAIN_VALUES, records), strict=True
        )
        zone_set = set(zones)
        if key is not None and zone_set != {key}:
            return None
        if not all(z.__class__ is str for z in zone_set) or not zone_set <= catalogue.zones.keys():
            return None
        joined = "".join(ids)  # TypeError unless every id is text
        lengths = set(map(len, ids))
        if not (joined.isascii() and joined.isalnum() and min(lengths) > 0 < max(lengths) <= 64):
            return None
        if not _plain_times(times, _latest(now)):
            return None
        if not set(kinds) <= _ENTITY_SET or not _known_industries(set(industries), catalogue):
            return None
        capitals = _plain_capitals(capitals)
    except (TypeError, KeyError):  # a value that is not text or not hashable; a name missing
        return None
    if capitals is None:
        return None
    n = len(ids)
    # One zone (the message's key): one object for every row, which the reader process's
    # block codes at once (schemas/registration_block.py).
    one_zone = [next(iter(zone_set))] * n if len(zone_set) == 1 else list(zones)
    return RegistrationColumns(
        one_zone,
        list(ids),
        list(times),
        list(kinds),
        list(industries),
        list(capitals),
        [t[:7] for t in times],
        [batch_id] * n,
        [sent_at] * n,
    )


def _plain_times(times: Sequence[Any], latest: str) -> bool:
    """Whether every value is a whole-second Beijing time ``_is_plain_time`` takes as it is."""
    joined = "".join(times)  # TypeError unless every value is text
    if set(map(len, times)) != {25}:
        return False
    if not (min(times)[:4] >= "1949" and max(times)[:4] <= "2100" and max(times)[:19] <= latest):
        return False
    if _PLAIN_TIMES.fullmatch(joined):
        return True
    if not _PLAIN_LATE_TIMES.fullmatch(joined):
        return False
    try:
        for day in {t[:10] for t in times}:  # a real date (no 30 February)
            date.fromisoformat(day)
    except ValueError:
        return False
    return True


def _known_industries(codes: set[Any], catalogue: Catalogue) -> bool:
    """Whether every code is a GB/T 4754 code as written (remembered, as ``_industry`` does)."""
    seen = _industries(catalogue)
    for code in codes - seen:
        if code.__class__ is not str or not _INDUSTRY.fullmatch(code):
            return False
        if len(seen) < 100_000:
            seen.add(code)
    return True


def _plain_capitals(capitals: Sequence[Any]) -> Sequence[float | None] | None:
    """The capital column as ``_registration`` reads plain amounts (an int as its float), or
    None when a value needs the full check (text, a unit, negative, NaN, infinite, huge)."""
    classes = set(map(type, capitals))
    if not classes <= _NUMBERS:
        return None
    if int not in classes:  # floats and nones: the amounts other than 0 checked in C
        amounts = list(filter(None, capitals))
        # A NaN or an infinity makes the sum not finite (so does an overflow: read one by one)
        if amounts and not (min(amounts) >= 0 and math.isfinite(sum(amounts))):
            return None
        return capitals
    if float in classes and not all(0 <= c < math.inf for c in capitals if c.__class__ is float):
        return None
    if not all(0 <= c < _EXACT_INT for c in capitals if c.__class__ is int):
        return None
    return [float(c) if c.__class__ is int else c for c in capitals]


@dataclass(frozen=True, slots=True)
class Envelope:
    """A registrations message: its raw records and the batch they were sent in."""

    batch_id: str  # "" for a bare registration
    sent_at: str  # ISO 8601, "" when absent or unreadable
    records: list[Any]  # raw records, each validated on its own
    bare: bool = False


def read_envelope(value: bytes) -> Envelope:
    """A registrations message (envelope or bare record); raises RejectedInput("malformed")."""
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise RejectedInput("malformed", f"not JSON: {exc}") from None
    if type(doc) is not dict:
        raise RejectedInput("malformed", f"expected a JSON object, got {type(doc).__name__}")
    records = doc.get("registrations")
    sent = doc.get("sent_at")
    sent_at = sent if sent.__class__ is str and _timestamp(sent) is not None else ""
    if records is None:
        return Envelope("", sent_at, [doc], bare=True)
    if type(records) is not list:
        raise RejectedInput(
            "malformed", f"registrations must be a list, not {type(records).__name__}"
        )
    batch_id = doc.get("batch_id")
    if batch_id.__class__ is not str or not batch_id or len(batch_id) > 128:
        raise RejectedInput("malformed", f"batch_id {show(batch_id)} must be 1–128 characters")
    return Envelope(batch_id, sent_at, records)
