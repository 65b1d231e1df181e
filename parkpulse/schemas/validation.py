"""Validation of feed rows and plan targets, with the reason codes dead letters carry.

A raw record comes from a CSV row (upper-case SDMX-CSV names, every value a string) or a JSON
Lines object (lower-case names, numbers as numbers); names are matched case-insensitively.
What passes is a record in the indicator's own unit; what fails raises RejectedInput whose
``detail`` names the field and the offending value, for the statistics clerk who has to fix it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from operator import itemgetter
from typing import Any, NamedTuple

from parkpulse.schemas.catalogue import UNITS, Catalogue, Indicator, convert_unit
from parkpulse.schemas.errors import REASONS, RejectedInput
from parkpulse.schemas.names import UNIT_ALIASES, UnknownName, resolve, unit_code
from parkpulse.schemas.periods import split_period
from parkpulse.schemas.records import (
    ACTIONS,
    BASES,
    OBS_STATUSES,
    SOURCES,
    TARGET_KINDS,
    Observation,
    PlanTarget,
)

__all__ = [
    "MAX_FIELD_CHARS",
    "REASONS",
    "UNIT_ALIASES",
    "validate_observation",
    "validate_target",
]

MAX_FIELD_CHARS = 64 * 1024  # a longer field is not data, it is an accident (or an attack)
MAX_NUMBER_CHARS = 64  # "huge strings" of digits are rejected before float() sees them
MIN_YEAR, MAX_YEAR = 1949, 2100
MAX_REVISION = 2**63 - 1  # ClickHouse Int64
SHOW_CHARS = 80  # how much of a bad value a detail message quotes

# Indicators whose values may be below zero (a trade balance, a net profit). None of the
# catalogue's are: counts, money flows, people, shares and concentrations cannot be negative.
SIGNED_INDICATORS: frozenset[str] = frozenset()
# Units whose values are whole numbers (you cannot register 41.5 enterprises).
WHOLE_UNITS = frozenset({"COUNT", "PERSON"})

# observations.csv and Observation.to_dict() name three feed fields differently; a file in
# that shape must not lose its values (a row with a YoY would pass as a growth-only figure).
OBSERVATION_ALIASES = {"period": "time_period", "value": "obs_value", "unit": "unit_measure"}

# SDMX-CSV 2.1 writes M (merge) where 2.0 wrote I or A: a figure is inserted, or replaces the
# one it keys by its REVISION, exactly as I does here.
FEED_ACTIONS = (*ACTIONS, "M")


def _merge_action(action: str) -> str:
    return "I" if action == "M" else action


_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_GROUPED = re.compile(r"[+-]?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?")  # 1,802,000.5
_INTEGER = re.compile(r"[+]?[0-9]{1,19}")
_BOOLEANS = {
    "true": True,
    "false": False,
    "1": True,
    "0": False,
    "yes": True,
    "no": False,
    "y": True,
    "n": False,
    "约束性": True,
    "約束性": True,
    "预期性": False,
    "預期性": False,
}

# Which period forms each basis takes; LEVEL (a stock at period end) takes any of them.
_PERIOD_FORMS = {
    "YTD": ("month",),
    "MONTH": ("month",),
    "QUARTER": ("quarter",),
    "YEAR": ("year",),
    "LEVEL": ("month", "quarter", "year"),
}
_FORM_SYNTAX = {"month": "YYYY-MM", "quarter": "YYYY-Qn", "year": "YYYY"}


def show(value: Any) -> str:
    """A value as a detail message quotes it: repr-like, cut to about 80 characters."""
    try:
        text = repr(value)
    except ValueError:  # an int too long to print (sys.get_int_max_str_digits)
        return f"<a {value.bit_length()}-bit number>"
    if len(text) > SHOW_CHARS:
        length = f" ({len(value)} chars)" if isinstance(value, str | bytes) else ""
        text = text[: SHOW_CHARS - 1] + "…" + length
    return text


class _Names:
    """How a record spelled its field names, for the detail messages that quote them."""

    def __init__(self, spelled: dict[str, str], upper: bool) -> None:
        self.spelled = spelled  # lower-case name -> the name as the input wrote it
        self.upper = upper  # most names upper-case: name absent fields the same way

    def name(self, field: str) -> str:
        """The field's name as the input spelled it (or in the input's style when absent)."""
        spelled = self.spelled.get(field)
        if spelled is not None:
            return spelled
        return field.upper() if self.upper else field


class _Fields(_Names):
    """A raw record with case-insensitive names that remembers how each name was spelled."""

    def __init__(self, raw: Any, kind: str, aliases: Mapping[str, str]) -> None:
        if type(raw) is not dict and not isinstance(raw, Mapping):
            raise RejectedInput(
                "malformed", f"a {kind} must be a mapping of field names, not {type(raw).__name__}"
            )
        self.values: dict[str, Any] = {}  # lower-case name -> value (stripped; None when empty)
        spelled_as: dict[str, str] = {}
        upper = 0
        for key, value in raw.items():
            spelling = _SPELLINGS.get(key) if isinstance(key, str) else None
            if spelling is None:
                if not isinstance(key, str):
                    continue
                spelling = _spelling(key)
            spelled, name, is_upper = spelling
            name = aliases.get(name, name)
            upper += is_upper
            if isinstance(value, str):
                if len(value) > MAX_FIELD_CHARS:
                    raise RejectedInput(
                        "malformed",
                        f"{_label(spelled)} is {len(value)} characters long "
                        f"(at most {MAX_FIELD_CHARS} allowed)",
                    )
                value = value.strip() or None
            if name in self.values and self.values[name] != value:
                raise RejectedInput(
                    "malformed",
                    f"{_label(spelled_as[name])} is given twice ({_label(spelled)} too) "
                    "with different values",
                )
            self.values[name] = value
            spelled_as[name] = spelled
        super().__init__(spelled_as, upper * 2 > len(self.values))

    def raw(self, field: str) -> Any:
        return self.values.get(field)

    def text(self, field: str, *, required: bool = False, ints: bool = False) -> str | None:
        return _text(self, field, self.values.get(field), required=required, ints=ints)

    def choice(self, field: str, choices: tuple[str, ...], default: str | None = None) -> str:
        return _choice(self, field, self.values.get(field), choices, default)

    def number(self, field: str) -> Decimal | None:
        return _number(self, field, self.values.get(field))

    def integer(self, field: str, *, default: int | None = None) -> int:
        return _integer(self, field, self.values.get(field), default=default)


# The readers of one field's value, as a record gives it (stripped, None when empty: _clean).
# _Fields reads targets with them; _ObservationReader reads a feed row's fields with them when
# what the field holds is not one it has met before.


def _clean(value: Any) -> Any:
    """A value as _Fields keeps it: text stripped, None when empty (a huge text is refused)."""
    if isinstance(value, str):
        if len(value) > MAX_FIELD_CHARS:  # _Fields(raw) says which field; see _ObservationReader
            raise RejectedInput("malformed", f"a field is {len(value)} characters long")
        return value.strip() or None
    return value


def _require(names: _Names, fields: tuple[str, ...], values: tuple[Any, ...]) -> None:
    """Reject the record for the first of ``fields`` whose (cleaned) value is missing."""
    for field, value in zip(fields, values, strict=True):
        if _clean(value) is None:
            raise RejectedInput("malformed", f"{names.name(field)} is missing")


def _text(
    names: _Names, field: str, value: Any, *, required: bool = False, ints: bool = False
) -> str | None:
    """A text field, stripped; None when empty. ``ints`` lets JSON give 2021 for "2021"."""
    if value.__class__ is str:
        return value
    if value is None:
        if required:
            raise RejectedInput("malformed", f"{names.name(field)} is missing")
        return None
    if ints and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise RejectedInput(
            "malformed",
            f"{names.name(field)} must be text, not {type(value).__name__} {show(value)}",
        )
    return value


def _choice(
    names: _Names, field: str, value: Any, choices: tuple[str, ...], default: str | None = None
) -> str:
    text = _text(names, field, value, required=default is None)
    if text is None:
        assert default is not None
        return default
    if text.upper() in choices:
        return text.upper()
    if text.lower() in choices:
        return text.lower()
    raise RejectedInput(
        "malformed", f"{names.name(field)} {show(text)} is not one of {', '.join(choices)}"
    )


def _number(names: _Names, field: str, value: Any) -> Decimal | None:
    """A finite number (exact, as written), None when empty."""
    name = names.name(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise RejectedInput(
            "malformed", f"{name} must be a number, not {type(value).__name__} {show(value)}"
        )
    if isinstance(value, str):
        if len(value) > MAX_NUMBER_CHARS:
            raise RejectedInput("bad_value", f"{name} {show(value)} is too long for a number")
        if "," in value and _GROUPED.fullmatch(value):
            value = value.replace(",", "")
        if not _NUMBER.fullmatch(value):
            finite = value.lower().lstrip("+-") not in {"nan", "inf", "infinity"}
            what = "a number" if finite else "a finite number"
            raise RejectedInput("bad_value", f"{name} {show(value)} is not {what}")
    elif isinstance(value, int) and value.bit_length() > 1100:  # beyond any float
        raise RejectedInput("bad_value", f"{name} {show(value)} is not a finite number")
    try:
        number = Decimal(repr(value) if isinstance(value, float) else value)
        finite = math.isfinite(float(number))
    except (ArithmeticError, ValueError):  # e.g. an exponent beyond what Decimal holds
        finite = False
    if not finite:
        raise RejectedInput("bad_value", f"{name} {show(value)} is not a finite number")
    return number


def _integer(names: _Names, field: str, value: Any, *, default: int | None = None) -> int:
    name = names.name(field)
    if value is None:
        if default is None:
            raise RejectedInput("malformed", f"{name} is missing")
        return default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RejectedInput("malformed", f"{name} {show(value)} is not a whole number")
    return value


_SPELLINGS: dict[str, tuple[str, str, bool]] = {}  # field name -> (stripped, lower, upper?)


def _label(spelled: str) -> str:
    """A field name as a detail message gives it (quoted only when odd)."""
    return spelled if spelled.isprintable() and 0 < len(spelled) <= SHOW_CHARS else show(spelled)


def _spelling(key: str) -> tuple[str, str, bool]:
    spelled = key.strip()
    spelling = (spelled, spelled.lower(), spelled.isupper())
    if len(key) <= 64 and len(_SPELLINGS) < 4096:  # the same dozen names, row after row
        _SPELLINGS[key] = spelling
    return spelling


def _unit(names: _Names, field: str, value: Any) -> tuple[str, str]:
    """(unit code, how it was written); unknown units are a unit_mismatch."""
    written = _text(names, field, value)
    if written is None:
        raise RejectedInput("malformed", f"{names.name(field)} is missing")
    code = unit_code(written)
    if code is None:
        raise RejectedInput(
            "unit_mismatch",
            f"{names.name(field)} {show(written)} is not a known unit ({', '.join(UNITS)})",
        )
    return code, written


def _factor(names: _Names, field: str, unit: str, written: str, indicator: Indicator) -> Decimal:
    factor = convert_unit(1.0, unit, indicator.unit)
    if factor is None:
        raise RejectedInput(
            "unit_mismatch",
            f"{names.name(field)} {show(written)} does not convert to {indicator.unit} "
            f"for {indicator.id}",
        )
    return Decimal(repr(factor))


def _convert(number: Decimal | None, factor: Decimal) -> float | None:
    if number is None:
        return None
    # Decimal keeps 1,802,000 万元 at exactly 180.2 亿元 (floats give 180.20000000000002).
    return float(number) if factor == 1 else float(number * factor)


def _check_amount(names: _Names, field: str, value: float | None, indicator: Indicator) -> None:
    """Range checks for a value in the indicator's unit."""
    if value is None:
        return
    name = names.name(field)
    unit = indicator.unit
    if not math.isfinite(value):
        raise RejectedInput(
            "bad_value", f"{name} is too large: {show(value)} {unit} is not a finite number"
        )
    if value < 0 and indicator.id not in SIGNED_INDICATORS:
        raise RejectedInput(
            "bad_value",
            f"{name} {_num(value)} {unit} is negative; {indicator.id} cannot be below zero",
        )
    if unit == "PCT" and indicator.kind == "ratio" and value > 100:
        raise RejectedInput(
            "bad_value", f"{name} {_num(value)} PCT is above 100 for the share {indicator.id}"
        )
    if unit in WHOLE_UNITS and not value.is_integer():
        raise RejectedInput(
            "bad_value",
            f"{name} {_num(value)} {unit} is not a whole number; {indicator.id} counts whole units",
        )


def _check_growth(names: _Names, field: str, value: float | None) -> None:
    if value is not None and value < -100:
        raise RejectedInput(
            "bad_value", f"{names.name(field)} {_num(value)} is below -100 (a fall of over 100 %)"
        )


def _num(value: float) -> str:
    return show(int(value)) if value.is_integer() and abs(value) < 1e15 else show(value)


def _lookup(
    names: _Names, zone: Any, indicator: Any, catalogue: Catalogue
) -> tuple[str, Indicator]:
    """(zone id, indicator) of a record's ZONE and INDICATOR (ids or names, see schemas.names)."""
    zone = _text(names, "zone", zone, required=True)
    indicator = _text(names, "indicator", indicator, required=True)
    assert zone is not None and indicator is not None
    try:
        if zone not in catalogue.zones:
            zone = resolve("zone", zone, catalogue)
        if indicator not in catalogue.indicators:
            indicator = resolve("indicator", indicator, catalogue)
    except UnknownName as exc:
        field = "zone" if exc.kind == "zone" else "indicator"
        raise RejectedInput(exc.reason, f"{names.name(field)} {exc.detail}") from None
    return zone, catalogue.indicators[indicator]


def _period(names: _Names, value: Any, basis: str) -> tuple[str, int, int]:
    """(period, year, first month) of a TIME_PERIOD, checked against the basis."""
    text = _text(names, "time_period", value, required=True, ints=True)
    assert text is not None
    return _read_period(text, basis, names.name("time_period"))


def _read_period(text: str, basis: str, name: str) -> tuple[str, int, int]:
    period = text.upper()
    forms = _PERIOD_FORMS[basis]
    split = split_period(period)
    if split is None or split[1] not in forms:
        syntax = " or ".join(_FORM_SYNTAX[f] for f in forms)
        raise RejectedInput(
            "bad_period", f"{name} {show(text)} does not fit BASIS {basis}, which needs {syntax}"
        )
    year, form, number = split
    if form == "month" and not 1 <= (number or 0) <= 12:
        raise RejectedInput("bad_period", f"{name} {show(text)}: month {period[5:]} is not 01..12")
    if form == "quarter" and not 1 <= (number or 0) <= 4:
        raise RejectedInput("bad_period", f"{name} {show(text)}: quarter {number} is not 1..4")
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise RejectedInput(
            "bad_period", f"{name} {show(text)}: year {year} is outside {MIN_YEAR}..{MAX_YEAR}"
        )
    first = (number or 0) if form == "month" else 3 * (number or 0) - 2 if form == "quarter" else 1
    return period, year, first


def _published_at(names: _Names, value: Any) -> str:
    text = _text(names, "published_at", value)
    if text is None:
        return ""
    if not _is_datetime(text):
        raise RejectedInput(
            "malformed",
            f"{names.name('published_at')} {show(text)} is not an ISO 8601 date-time "
            "(e.g. 2021-04-15T09:00:00+08:00)",
        )
    return text


def _is_datetime(text: str) -> bool:
    if not text.isascii():
        return False
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _revision(names: _Names, value: Any) -> int:
    revision = _integer(names, "revision", value, default=0)
    if not 0 <= revision <= MAX_REVISION:
        raise RejectedInput(
            "malformed", f"{names.name('revision')} {show(revision)} is not 0 or a positive number"
        )
    return revision


def validate_observation(
    raw: Mapping[str, Any], catalogue: Catalogue, *, now: datetime
) -> Observation:
    """A feed row (CSV or JSON Lines names) as an Observation in the indicator's unit.

    Raises RejectedInput with a reason code; a period starting after ``now``'s month is a
    ``future_period``.
    """
    reader = catalogue.derived.get("observations")
    if reader is None:
        reader = catalogue.derived["observations"] = _ObservationReader(catalogue)
    return reader.read(raw, now)


# --- reading observations --------------------------------------------------------------------
# A backfill validates some 650,000 rows that all look alike: the same dozen names, a few hundred
# periods and publication dates, one unit per indicator. So each field is read by looking up what
# it holds among the values it held before; only a value not met before runs that field's checks
# (the readers above), which give the clerk's message or teach the lookup. The lookups belong to
# one catalogue, hold only what passed, keyed by short texts, and are emptied when full: hostile
# input costs time, not memory.

_CACHE_SIZE = 4096  # entries per lookup; a row has a few dozen names and texts at most
_LAYOUT_CACHE_SIZE = 256  # key layouts: a feed has one or two
_SHORT = 64  # longer names and texts are never remembered, nor rows with more names
_FIELDS = (
    "zone",
    "indicator",
    "time_period",
    "basis",
    "obs_value",
    "unit_measure",
    "yoy_pct",
    "obs_status",
    "revision",
    "published_at",
    "action",
    "source",
)
_REQUIRED = _FIELDS[:4]
_MAYBE_TEXT = frozenset((str, type(None)))
_PLAIN_NUMBER_CHARS = "0123456789.+-"  # no exponent, grouping, spaces, underscores, nan or inf
_EXACT_INT = 2**53  # an int up to this is exactly the float it converts to
_UNUSUAL = math.nan  # what _plain_number gives for a figure _figure must read in full


class _Layout(NamedTuple):
    """Where a row with these keys keeps its fields, by position in its values + (None,)."""

    fields: Callable[[tuple[Any, ...]], tuple[Any, ...]]  # the _FIELDS; -1 when absent
    others: tuple[int, ...]  # the other keys: not read, but their length is checked
    names: _Names  # how the row spells its names


def _spellings(choices: tuple[str, ...], default: str | None) -> dict[str | None, str]:
    """The plain spellings of a choice and what _choice reads them as."""
    out: dict[str | None, str] = {}
    for choice in choices:
        for spelled in (choice, choice.lower(), choice.upper()):
            out[spelled] = spelled.upper() if spelled.upper() in choices else spelled.lower()
    if default is not None:
        out[None] = out[""] = default
    return out


_ACTION_SPELLINGS = {
    **_spellings(ACTIONS, "I"),
    **{spelled: "I" for spelled in ("M", "m")},  # SDMX-CSV 2.1 merge: an insert here
}
_SOURCE_SPELLINGS = _spellings(SOURCES, "bureau")
_BASIS_SPELLINGS = _spellings(BASES, None)
_STATUS_SPELLINGS = _spellings(OBS_STATUSES, "A")


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= _CACHE_SIZE:
        cache.clear()
    cache[key] = value


class _ObservationReader:
    """validate_observation for one catalogue, with the values its rows held so far."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self.layouts: dict[tuple[str, ...], _Layout | None] = {}  # None: two keys name one field
        self.zones: dict[str, str] = {}  # ZONE as written -> zone id
        self.indicators: dict[str, Indicator] = {}  # INDICATOR as written -> indicator
        self.periods: dict[tuple[str, str], tuple[str, int]] = {}  # -> (period, year*12+month)
        self.published: dict[str, str] = {}  # PUBLISHED_AT as written -> as kept
        # (unit as written, indicator unit) -> the factor, or 1 when the unit is the indicator's
        self.factors: dict[tuple[str, str], Decimal | int] = {}

    def read(self, raw: Any, now: datetime) -> Observation:
        layout = None
        if type(raw) is dict:
            keys = tuple(raw)
            layout = self.layouts.get(keys) or self._layout(keys)
        if layout is None:  # not a dict, odd names, or a field named twice
            fields = _Fields(raw, "feed row", OBSERVATION_ALIASES)
            return self._observation(tuple(map(fields.values.get, _FIELDS)), fields, now)
        values = (*raw.values(), None)
        try:
            for at in layout.others:  # not read, but a huge one is refused
                other = values[at]
                if isinstance(other, str) and len(other) > MAX_FIELD_CHARS:
                    _clean(other)
            return self._observation(layout.fields(values), layout.names, now)
        except RejectedInput:
            _Fields(raw, "feed row", OBSERVATION_ALIASES)  # a fault of the whole row comes first
            raise

    def _observation(self, values: tuple[Any, ...], names: _Names, now: datetime) -> Observation:
        """The checks in the order their messages take precedence; values as the row has them."""
        zone, name, text, basis, number, unit, yoy, status, revision, published, action, source = (
            values
        )
        zone_id = self.zones.get(zone) if zone.__class__ is str else None
        indicator = self.indicators.get(name) if name.__class__ is str else None
        basis_code = _BASIS_SPELLINGS.get(basis) if basis.__class__ is str else None
        known = self.periods.get((text, basis_code)) if text.__class__ is str else None
        if zone_id is None or indicator is None or known is None:  # (basis None: known None)
            _require(names, _REQUIRED, (zone, name, text, basis))
        merged = _ACTION_SPELLINGS.get(action) if action.__class__ in _MAYBE_TEXT else None
        if merged is None:
            merged = _merge_action(_choice(names, "action", _clean(action), FEED_ACTIONS, "I"))
        origin = _SOURCE_SPELLINGS.get(source) if source.__class__ in _MAYBE_TEXT else None
        if origin is None:
            origin = _choice(names, "source", _clean(source), SOURCES, "bureau")
        if basis_code is None:
            basis_code = _choice(names, "basis", _clean(basis), BASES)
        obs_status = _STATUS_SPELLINGS.get(status) if status.__class__ in _MAYBE_TEXT else None
        if obs_status is None:
            obs_status = _choice(names, "obs_status", _clean(status), OBS_STATUSES, "A")
        if revision.__class__ is str and revision.isdigit() and revision.isascii():
            revision = int(revision) if len(revision) < 19 else _revision(names, revision)
        elif revision is None or revision.__class__ is not int or not 0 <= revision <= MAX_REVISION:
            revision = _revision(names, _clean(revision))
        published_at = self.published.get(published) if published.__class__ is str else None
        if published_at is None:
            published_at = self._published_at(names, published)
        if zone_id is None or indicator is None:
            zone_id, indicator = self._lookup(names, zone, name)
        if known is None:
            known = self._period(names, text, basis_code)
        period, month = known
        if month > now.year * 12 + now.month:
            raise RejectedInput(
                "future_period",
                f"{names.name('time_period')} {show(period)} starts after the current month "
                f"{now.year:04d}-{now.month:02d}",
            )
        value = yoy_pct = None
        if merged == "D":  # a tombstone carries its key and revision; value fields are ignored
            for unread in (number, unit, yoy):
                _clean(unread)  # ...but a huge one is still refused
        else:
            value, yoy_pct = self._figure(names, number, unit, yoy, indicator)
        return Observation(
            zone_id,
            indicator.id,
            period,
            basis_code,
            value,
            indicator.unit,
            yoy_pct,
            obs_status,
            revision,
            merged,
            published_at,
            origin,
        )

    def _layout(self, keys: tuple[Any, ...]) -> _Layout | None:
        """The layout of rows with these keys (remembered when the names are short)."""
        if len(keys) > _SHORT or not all(k.__class__ is str and len(k) <= _SHORT for k in keys):
            return None
        where: dict[str, int] = {}
        spelled: dict[str, str] = {}
        layout = None
        for at, key in enumerate(keys):
            name = key.strip().lower()
            name = OBSERVATION_ALIASES.get(name, name)
            if name in where:
                break  # _Fields compares the two values
            where[name] = at
            spelled[name] = key.strip()
        else:
            fields = itemgetter(*(where.pop(field, -1) for field in _FIELDS))
            upper = sum(name.isupper() for name in spelled.values()) * 2 > len(keys)
            layout = _Layout(fields, tuple(where.values()), _Names(spelled, upper))
        if len(self.layouts) >= _LAYOUT_CACHE_SIZE:
            self.layouts.clear()
        self.layouts[keys] = layout
        return layout

    def _published_at(self, names: _Names, written: Any) -> str:
        if written is None or written == "":
            return ""
        published_at = _published_at(names, _clean(written))
        if written.__class__ is str and len(written) <= _SHORT:
            _remember(self.published, written, published_at)
        return published_at

    def _lookup(self, names: _Names, zone: Any, name: Any) -> tuple[str, Indicator]:
        zone_id, indicator = _lookup(names, _clean(zone), _clean(name), self.catalogue)
        if zone.__class__ is str and len(zone) <= _SHORT:
            _remember(self.zones, zone, zone_id)
        if name.__class__ is str and len(name) <= _SHORT:
            _remember(self.indicators, name, indicator)
        return zone_id, indicator

    def _period(self, names: _Names, text: Any, basis: str) -> tuple[str, int]:
        period, year, month = _period(names, _clean(text), basis)
        known = (period, year * 12 + month)
        if text.__class__ is str and len(text) <= _SHORT:
            _remember(self.periods, (text, basis), known)
        return known

    def _figure(
        self, names: _Names, number: Any, unit: Any, yoy: Any, indicator: Indicator
    ) -> tuple[float | None, float | None]:
        """(value in the indicator's unit, yoy_pct) of a row that is not a delete."""
        value = _plain_number(number)
        yoy_pct = _plain_number(yoy)
        if (
            value == value  # NaN: not plain
            and yoy_pct == yoy_pct
            and (value is not None or yoy_pct is not None)
            and (yoy_pct is None or yoy_pct >= -100)
        ):
            factor: Decimal | int | None = None
            if unit.__class__ is str and unit:
                factor = self.factors.get((unit, indicator.unit)) or self._factor(unit, indicator)
            elif value is None and (unit is None or unit.__class__ is str):
                factor = 1  # a growth-only figure needs no unit
            if factor is not None:
                if value is not None and factor != 1:
                    exact = Decimal(repr(number) if number.__class__ is float else number)
                    value = float(exact * factor)
                if value is None or (
                    0 <= value < math.inf
                    and not (indicator.unit in WHOLE_UNITS and not value.is_integer())
                    and not (indicator.unit == "PCT" and indicator.kind == "ratio" and value > 100)
                ):
                    return value, yoy_pct
        return _figure(names, _clean(number), _clean(unit), _clean(yoy), indicator)

    def _factor(self, written: str, indicator: Indicator) -> Decimal | int | None:
        """The factor from a unit as written to the indicator's (remembered), None if none."""
        if len(written) > _SHORT or written.strip() != written:
            return None
        code = unit_code(written)
        factor = convert_unit(1.0, code, indicator.unit) if code is not None else None
        if factor is None:
            return None
        exact = Decimal(repr(factor))  # as _factor gives it
        _remember(self.factors, (written, indicator.unit), 1 if exact == 1 else exact)
        return 1 if exact == 1 else exact


def _figure(
    names: _Names, number_value: Any, unit_value: Any, yoy_value: Any, indicator: Indicator
) -> tuple[float | None, float | None]:
    """(value in the indicator's unit, yoy_pct) of a row that is not a delete: every check."""
    number = _number(names, "obs_value", number_value)
    yoy = _number(names, "yoy_pct", yoy_value)
    if number is None and yoy is None:
        raise RejectedInput(
            "bad_value",
            f"{names.name('obs_value')} and {names.name('yoy_pct')} are both empty: a figure "
            "needs a value or a year-on-year growth (ACTION D deletes one)",
        )
    value = None
    # A growth-only figure needs no unit; one given must still be the indicator's.
    if number is not None or unit_value is not None:
        unit, written = _unit(names, "unit_measure", unit_value)
        value = _convert(number, _factor(names, "unit_measure", unit, written, indicator))
    _check_amount(names, "obs_value", value, indicator)
    yoy_pct = _convert(yoy, Decimal(1))
    _check_growth(names, "yoy_pct", yoy_pct)
    return value, yoy_pct


def _plain_number(value: Any) -> float | None:
    """A figure as _number and _convert read it, when it is plain; NaN when it is not."""
    if value.__class__ is float:
        return value if value - value == 0 else _UNUSUAL  # finite
    if value.__class__ is str:
        if not value:
            return None
        if len(value) > MAX_NUMBER_CHARS or value.strip(_PLAIN_NUMBER_CHARS):
            return _UNUSUAL
        try:
            return float(value)  # a plain decimal: the float of its Decimal
        except ValueError:  # "1.2.3", "+-1"
            return _UNUSUAL
    if value is None:
        return None
    if value.__class__ is int and -_EXACT_INT <= value <= _EXACT_INT:
        return float(value)
    return _UNUSUAL


def _year(fields: _Fields, field: str) -> int:
    year = fields.integer(field)
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise RejectedInput(
            "bad_value", f"{fields.name(field)} {year} is outside {MIN_YEAR}..{MAX_YEAR}"
        )
    return year


def _binding(fields: _Fields) -> bool:
    value = fields.raw("binding")
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _BOOLEANS:
        return _BOOLEANS[value.lower()]
    raise RejectedInput("malformed", f"{fields.name('binding')} {show(value)} is not true or false")


def validate_target(raw: Mapping[str, Any], catalogue: Catalogue) -> PlanTarget:
    """A plan_targets.csv row (or its JSON form) as a PlanTarget in the indicator's unit.

    A withdrawal (``action`` D) needs only plan, zone, indicator and revision.
    """
    fields = _Fields(raw, "plan target", {})
    action = fields.choice("action", ACTIONS, default="I")
    plan = fields.text("plan", required=True)
    assert plan is not None
    if "|" in plan or not plan.isprintable() or len(plan) > 100:
        raise RejectedInput(
            "malformed",
            f"{fields.name('plan')} {show(plan)} must be printable, without '|', "
            "at most 100 characters",
        )
    revision = _revision(fields, fields.raw("revision"))
    source = fields.text("source") or ""
    zone, indicator = _lookup(fields, fields.raw("zone"), fields.raw("indicator"), catalogue)
    if action == "D":
        return PlanTarget(
            plan=plan,
            zone=zone,
            indicator=indicator.id,
            kind="qualitative",
            base_year=0,
            base_value=None,
            target_year=0,
            target_value=None,
            annual_growth_pct=None,
            binding=False,
            unit=indicator.unit,
            source=source,
            revision=revision,
            action=action,
        )
    kind = fields.choice("kind", TARGET_KINDS)
    base_year = _year(fields, "base_year")
    target_year = _year(fields, "target_year")
    binding = _binding(fields)
    base = fields.number("base_value")
    target = fields.number("target_value")
    growth = _convert(fields.number("annual_growth_pct"), Decimal(1))
    _check_growth(fields, "annual_growth_pct", growth)
    unit, written = _unit(fields, "unit", fields.raw("unit"))
    if kind == "growth":
        if unit != "PCT":
            raise RejectedInput(
                "unit_mismatch",
                f"{fields.name('unit')} {show(written)}: a growth target is a rate in PCT",
            )
        base_value, target_value = _convert(base, Decimal(1)), _convert(target, Decimal(1))
        _check_growth(fields, "base_value", base_value)
        _check_growth(fields, "target_value", target_value)
    else:
        factor = _factor(fields, "unit", unit, written, indicator)
        base_value, target_value = _convert(base, factor), _convert(target, factor)
        _check_amount(fields, "base_value", base_value, indicator)
        _check_amount(fields, "target_value", target_value, indicator)
        unit = indicator.unit
    if target_year <= base_year:
        raise RejectedInput(
            "bad_value",
            f"{fields.name('target_year')} {target_year} is not after "
            f"{fields.name('base_year')} {base_year}",
        )
    needs = _target_needs(kind, base_value, target_value, growth)
    if needs:
        raise RejectedInput("bad_value", f"a {kind} target needs {needs} ({plan}, {indicator.id})")
    return PlanTarget(
        plan=plan,
        zone=zone,
        indicator=indicator.id,
        kind=kind,
        base_year=base_year,
        base_value=base_value,
        target_year=target_year,
        target_value=target_value,
        annual_growth_pct=growth,
        binding=binding,
        unit=unit,
        source=source,
        revision=revision,
        action=action,
    )


def _target_needs(
    kind: str, base: float | None, target: float | None, growth: float | None
) -> str | None:
    """What a target of this kind lacks to be evaluated (the engine's inputs), or None."""
    if kind == "growth" and growth is None:
        return "annual_growth_pct"
    if kind == "level" and target is None and (base is None or growth is None):
        return "target_value, or base_value and annual_growth_pct"
    if kind == "share" and (base is None or target is None):
        return "base_value and target_value"
    if kind == "cumulative" and target is None:
        return "target_value"
    return None
