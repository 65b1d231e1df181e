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
from parkpulse.schemas.names import UNIT_ALIASES, UnknownName, names_of, resolve, unit_code
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
    "STRUCTURE",
    "STRUCTURE_ID",
    "UNIT_ALIASES",
    "observation_to_wire",
    "target_to_wire",
    "validate_observation",
    "validate_target",
]

STRUCTURE = "dataflow"
STRUCTURE_ID = "PARKPULSE:ZONE_MONTHLY(1.0)"

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
_PERIOD = re.compile(r"(?P<year>[0-9]{4})(?:-(?P<month>[0-9]{2})|-Q(?P<quarter>[0-9]))?")
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


class _Fields:
    """A raw record with case-insensitive names that remembers how each name was spelled."""

    def __init__(self, raw: Any, kind: str, aliases: Mapping[str, str]) -> None:
        if type(raw) is not dict and not isinstance(raw, Mapping):
            raise RejectedInput(
                "malformed", f"a {kind} must be a mapping of field names, not {type(raw).__name__}"
            )
        self.values: dict[str, Any] = {}  # lower-case name -> value (stripped; None when empty)
        self.spelled: dict[str, str] = {}  # lower-case name -> the name as the input wrote it
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
                    f"{_label(self.spelled[name])} is given twice ({_label(spelled)} too) "
                    "with different values",
                )
            self.values[name] = value
            self.spelled[name] = spelled
        self.upper = upper * 2 > len(self.values)

    def name(self, field: str) -> str:
        """The field's name as the input spelled it (or in the input's style when absent)."""
        spelled = self.spelled.get(field)
        if spelled is not None:
            return spelled
        return field.upper() if self.upper else field

    def raw(self, field: str) -> Any:
        return self.values.get(field)

    def require(self, *names: str) -> None:
        """Reject the record for the first of ``names`` that is missing or empty."""
        for field in names:
            if self.values.get(field) is None:
                raise RejectedInput("malformed", f"{self.name(field)} is missing")

    def text(self, field: str, *, required: bool = False, ints: bool = False) -> str | None:
        """A text field, stripped; None when empty. ``ints`` lets JSON give 2021 for "2021"."""
        value = self.values.get(field)
        if value.__class__ is str:
            return value
        if value is None:
            if required:
                raise RejectedInput("malformed", f"{self.name(field)} is missing")
            return None
        if ints and isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise RejectedInput(
                "malformed",
                f"{self.name(field)} must be text, not {type(value).__name__} {show(value)}",
            )
        return value

    def choice(self, field: str, choices: tuple[str, ...], default: str | None = None) -> str:
        value = self.text(field, required=default is None)
        if value is None:
            assert default is not None
            return default
        if value.upper() in choices:
            return value.upper()
        if value.lower() in choices:
            return value.lower()
        raise RejectedInput(
            "malformed", f"{self.name(field)} {show(value)} is not one of {', '.join(choices)}"
        )

    def number(self, field: str) -> Decimal | None:
        """A finite number (exact, as written), None when empty."""
        value = self.raw(field)
        name = self.name(field)
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

    def integer(self, field: str, *, default: int | None = None) -> int:
        value = self.raw(field)
        name = self.name(field)
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


def _unit(fields: _Fields, field: str) -> tuple[str, str]:
    """(unit code, how it was written); unknown units are a unit_mismatch."""
    written = fields.text(field)
    if written is None:
        raise RejectedInput("malformed", f"{fields.name(field)} is missing")
    code = unit_code(written)
    if code is None:
        raise RejectedInput(
            "unit_mismatch",
            f"{fields.name(field)} {show(written)} is not a known unit ({', '.join(UNITS)})",
        )
    return code, written


def _factor(fields: _Fields, field: str, unit: str, written: str, indicator: Indicator) -> Decimal:
    factor = convert_unit(1.0, unit, indicator.unit)
    if factor is None:
        raise RejectedInput(
            "unit_mismatch",
            f"{fields.name(field)} {show(written)} does not convert to {indicator.unit} "
            f"for {indicator.id}",
        )
    return Decimal(repr(factor))


def _convert(number: Decimal | None, factor: Decimal) -> float | None:
    if number is None:
        return None
    # Decimal keeps 1,802,000 万元 at exactly 180.2 亿元 (floats give 180.20000000000002).
    return float(number) if factor == 1 else float(number * factor)


def _check_amount(fields: _Fields, field: str, value: float | None, indicator: Indicator) -> None:
    """Range checks for a value in the indicator's unit."""
    if value is None:
        return
    name = fields.name(field)
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


def _check_growth(fields: _Fields, field: str, value: float | None) -> None:
    if value is not None and value < -100:
        raise RejectedInput(
            "bad_value", f"{fields.name(field)} {_num(value)} is below -100 (a fall of over 100 %)"
        )


def _num(value: float) -> str:
    return show(int(value)) if value.is_integer() and abs(value) < 1e15 else show(value)


def _lookup(fields: _Fields, catalogue: Catalogue) -> tuple[str, Indicator]:
    zone = fields.text("zone", required=True)
    indicator = fields.text("indicator", required=True)
    assert zone is not None and indicator is not None
    try:
        if zone not in catalogue.zones:
            zone = resolve("zone", zone, catalogue)
        if indicator not in catalogue.indicators:
            indicator = resolve("indicator", indicator, catalogue)
    except UnknownName as exc:
        field = "zone" if exc.kind == "zone" else "indicator"
        raise RejectedInput(exc.reason, f"{fields.name(field)} {exc.detail}") from None
    return zone, catalogue.indicators[indicator]


def _period(fields: _Fields, basis: str) -> tuple[str, int, int]:
    """(period, year, first month) checked against the basis."""
    text = fields.text("time_period", required=True, ints=True)
    assert text is not None
    return _read_period(text, basis, fields.name("time_period"))


def _read_period(text: str, basis: str, name: str) -> tuple[str, int, int]:
    period = text.upper()
    forms = _PERIOD_FORMS[basis]
    match = _PERIOD.fullmatch(period)
    month, quarter = (match["month"], match["quarter"]) if match else (None, None)
    form = "month" if month else "quarter" if quarter else "year"
    if match is None or form not in forms:
        syntax = " or ".join(_FORM_SYNTAX[f] for f in forms)
        raise RejectedInput(
            "bad_period", f"{name} {show(text)} does not fit BASIS {basis}, which needs {syntax}"
        )
    if month and not 1 <= int(month) <= 12:
        raise RejectedInput("bad_period", f"{name} {show(text)}: month {month} is not 01..12")
    if quarter and not 1 <= int(quarter) <= 4:
        raise RejectedInput("bad_period", f"{name} {show(text)}: quarter {quarter} is not 1..4")
    year = int(match["year"])
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise RejectedInput(
            "bad_period", f"{name} {show(text)}: year {year} is outside {MIN_YEAR}..{MAX_YEAR}"
        )
    first = int(month) if month else 3 * int(quarter) - 2 if quarter else 1
    return period, year, first


def _published_at(fields: _Fields) -> str:
    text = fields.text("published_at")
    if text is None:
        return ""
    if not _is_datetime(text):
        raise RejectedInput(
            "malformed",
            f"{fields.name('published_at')} {show(text)} is not an ISO 8601 date-time "
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


def _revision(fields: _Fields) -> int:
    revision = fields.integer("revision", default=0)
    if not 0 <= revision <= MAX_REVISION:
        raise RejectedInput(
            "malformed", f"{fields.name('revision')} {show(revision)} is not 0 or a positive number"
        )
    return revision


def validate_observation(
    raw: Mapping[str, Any], catalogue: Catalogue, *, now: datetime
) -> Observation:
    """A feed row (CSV or JSON Lines names) as an Observation in the indicator's unit.

    Raises RejectedInput with a reason code; a period starting after ``now``'s month is a
    ``future_period``.
    """
    if type(raw) is dict:
        obs = _fast(raw, catalogue, now)
        if obs is not None:
            return obs
    return _validate_observation_general(raw, catalogue, now=now)


def _validate_observation_general(
    raw: Mapping[str, Any], catalogue: Catalogue, *, now: datetime
) -> Observation:
    """validate_observation for any input: every check, and the message of the first that fails."""
    fields = _Fields(raw, "feed row", OBSERVATION_ALIASES)
    fields.require("zone", "indicator", "time_period", "basis")
    action = _merge_action(fields.choice("action", FEED_ACTIONS, default="I"))
    source = fields.choice("source", SOURCES, default="bureau")
    basis = fields.choice("basis", BASES)
    obs_status = fields.choice("obs_status", OBS_STATUSES, default="A")
    revision = _revision(fields)
    published_at = _published_at(fields)
    zone, indicator = _lookup(fields, catalogue)
    period, year, month = _period(fields, basis)
    if (year, month) > (now.year, now.month):
        raise RejectedInput(
            "future_period",
            f"{fields.name('time_period')} {show(period)} starts after the current month "
            f"{now.year:04d}-{now.month:02d}",
        )
    value = yoy_pct = None
    if action != "D":  # a tombstone carries its key and revision; value fields are ignored
        value, yoy_pct = _figure(fields, indicator)
    return Observation(
        zone=zone,
        indicator=indicator.id,
        period=period,
        basis=basis,
        value=value,
        unit=indicator.unit,
        yoy_pct=yoy_pct,
        obs_status=obs_status,
        revision=revision,
        action=action,
        published_at=published_at,
        source=source,
    )


def _figure(fields: _Fields, indicator: Indicator) -> tuple[float | None, float | None]:
    """(value in the indicator's unit, yoy_pct) of a row that is not a delete."""
    number = fields.number("obs_value")
    yoy = fields.number("yoy_pct")
    if number is None and yoy is None:
        raise RejectedInput(
            "bad_value",
            f"{fields.name('obs_value')} and {fields.name('yoy_pct')} are both empty: a figure "
            "needs a value or a year-on-year growth (ACTION D deletes one)",
        )
    value = None
    # A growth-only figure needs no unit; one given must still be the indicator's.
    if number is not None or fields.raw("unit_measure") is not None:
        unit, written = _unit(fields, "unit_measure")
        value = _convert(number, _factor(fields, "unit_measure", unit, written, indicator))
    _check_amount(fields, "obs_value", value, indicator)
    yoy_pct = _convert(yoy, Decimal(1))
    _check_growth(fields, "yoy_pct", yoy_pct)
    return value, yoy_pct


# --- the fast path -------------------------------------------------------------------------
# A backfill validates some 650,000 rows that all look alike: the same dozen names, a few hundred
# periods and publication dates, one unit per indicator. _fast() reads such a row with what
# earlier rows taught it and returns None at the first thing it cannot vouch for; the general
# path then decides, so results and messages are the general path's. Its caches hold only what
# passed and are emptied when full: hostile input costs time on the general path, not memory.

_CACHE_SIZE = 4096  # entries per cache; a row has a few dozen names and texts at most
_LAYOUT_CACHE_SIZE = 256  # key layouts: a feed has one or two
_SHORT = 64  # longer names and texts are never cached, nor rows with more names
_FAST_FIELDS = (
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
_MAYBE_TEXT = frozenset((str, type(None)))
_PLAIN_NUMBER_CHARS = "0123456789.+-"  # no exponent, grouping, spaces, underscores, nan or inf
_EXACT_INT = 2**53  # an int up to this is exactly the float it converts to
_UNUSUAL = math.nan  # what _plain_number gives for a figure it leaves to the general path


class _Layout(NamedTuple):
    """Where a row with these keys keeps its fields, by position in its values + (None,)."""

    fields: Callable[[tuple[Any, ...]], tuple[Any, ...]]  # the _FAST_FIELDS; -1 when absent
    others: tuple[int, ...]  # the other keys: not read, but the general path checks their length


# The key tuple of a row -> its layout, or None when two keys name one field.
_LAYOUTS: dict[tuple[str, ...], _Layout | None] = {}
_PERIODS: dict[tuple[str, str], tuple[str, int]] = {}  # (text, basis) -> (period, year*12+month)
_PUBLISHED: set[str] = set()  # ISO 8601 date-times met so far
# (unit as written, indicator unit) -> the factor, or 1 when the unit is the indicator's own
_FACTORS: dict[tuple[str, str], Decimal | int] = {}


def _spellings(choices: tuple[str, ...], default: str | None) -> dict[str | None, str]:
    """The plain spellings of a choice and what _Fields.choice reads them as."""
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


def _fast(raw: dict[Any, Any], catalogue: Catalogue, now: datetime) -> Observation | None:
    """The observation of a plain row, or None to leave the row to the general path."""
    keys = tuple(raw)
    layout = _LAYOUTS.get(keys) or _layout(keys)
    if layout is None:
        return None
    values = (*raw.values(), None)
    zone, name, text, basis, number, unit, yoy, status, revision, published, action, source = (
        layout.fields(values)
    )
    for at in layout.others:
        other = values[at]
        if other.__class__ is str:
            if len(other) > MAX_FIELD_CHARS:
                return None
        elif isinstance(other, str):
            return None
    if (
        zone.__class__ is not str
        or name.__class__ is not str
        or text.__class__ is not str
        or basis.__class__ is not str
        or action.__class__ not in _MAYBE_TEXT
        or status.__class__ not in _MAYBE_TEXT
        or source.__class__ not in _MAYBE_TEXT
    ):
        return None
    action = _ACTION_SPELLINGS.get(action)
    basis = _BASIS_SPELLINGS.get(basis)
    obs_status = _STATUS_SPELLINGS.get(status)
    source = _SOURCE_SPELLINGS.get(source)
    indicator = catalogue.indicators.get(name)
    if indicator is None or zone not in catalogue.zones:  # a name as written: one dict lookup
        names = names_of(catalogue)
        zone = names.exact["zone"].get(zone, zone)
        indicator = indicator or catalogue.indicators.get(names.exact["indicator"].get(name, ""))
    if (
        action is None
        or basis is None
        or obs_status is None
        or source is None
        or indicator is None
        or zone not in catalogue.zones
        # the general path strips before it looks up (and refuses an empty or huge id)
        or not (zone and name and zone.strip() == zone and name.strip() == name)
        or len(zone) > MAX_FIELD_CHARS
        or len(name) > MAX_FIELD_CHARS
    ):
        return None
    period = _PERIODS.get((text, basis)) or _learn_period(text, basis)
    if period is None or period[1] > now.year * 12 + now.month:
        return None
    if revision.__class__ is str:
        if not revision:
            revision = 0
        elif revision.isdigit() and revision.isascii() and len(revision) <= 19:
            revision = int(revision)
    elif revision is None:
        revision = 0
    if revision.__class__ is not int or not 0 <= revision <= MAX_REVISION:
        return None
    if published is None:
        published = ""
    elif published.__class__ is not str or (
        published and published not in _PUBLISHED and not _learn_published(published)
    ):
        return None
    value = yoy_pct = None
    if action == "D":  # value fields are not read, but still checked for length
        for unread in (number, unit, yoy):
            if isinstance(unread, str) and (
                unread.__class__ is not str or len(unread) > MAX_FIELD_CHARS
            ):
                return None
    else:
        value = _plain_number(number)
        yoy_pct = _plain_number(yoy)
        if (
            value != value  # NaN: not plain
            or yoy_pct != yoy_pct
            or (value is None and yoy_pct is None)
            or (yoy_pct is not None and yoy_pct < -100)
        ):
            return None
        factor: Decimal | int | None = None
        if unit.__class__ is str and unit:
            factor = _FACTORS.get((unit, indicator.unit)) or _learn_factor(unit, indicator.unit)
        elif value is None and (unit is None or unit.__class__ is str):
            factor = 1  # a growth-only figure needs no unit
        if factor is None:
            return None
        if value is not None:
            if factor != 1:
                exact = Decimal(repr(number) if number.__class__ is float else number)
                value = float(exact * factor)
            if (
                not 0 <= value < math.inf
                or (indicator.unit in WHOLE_UNITS and not value.is_integer())
                or (indicator.unit == "PCT" and indicator.kind == "ratio" and value > 100)
            ):
                return None
    return Observation(
        zone,
        indicator.id,
        period[0],
        basis,
        value,
        indicator.unit,
        yoy_pct,
        obs_status,
        revision,
        action,
        published,
        source,
    )


def _layout(keys: tuple[Any, ...]) -> _Layout | None:
    """The layout of rows with these keys (remembered when the names are short)."""
    if len(keys) > _SHORT or not all(key.__class__ is str and len(key) <= _SHORT for key in keys):
        return None
    where: dict[str, int] = {}
    layout = None
    for at, key in enumerate(keys):
        name = key.strip().lower()
        name = OBSERVATION_ALIASES.get(name, name)
        if name in where:
            break  # the general path compares the two values
        where[name] = at
    else:
        fields = itemgetter(*(where.pop(field, -1) for field in _FAST_FIELDS))
        layout = _Layout(fields, tuple(where.values()))
    if len(_LAYOUTS) >= _LAYOUT_CACHE_SIZE:
        _LAYOUTS.clear()
    _LAYOUTS[keys] = layout
    return layout


def _learn_period(text: str, basis: str) -> tuple[str, int] | None:
    """(period, year * 12 + first month) when BASIS takes ``text``, remembered; else None."""
    if len(text) > _SHORT:
        return None
    try:
        period, year, month = _read_period(text, basis, "")
    except RejectedInput:
        return None
    if len(_PERIODS) >= _CACHE_SIZE:
        _PERIODS.clear()
    _PERIODS[(text, basis)] = known = (period, year * 12 + month)
    return known


def _learn_published(text: str) -> bool:
    """Whether ``text`` is a published_at the general path keeps as it is (remembered)."""
    if len(text) > _SHORT or text.strip() != text or not _is_datetime(text):
        return False
    if len(_PUBLISHED) >= _CACHE_SIZE:
        _PUBLISHED.clear()
    _PUBLISHED.add(text)
    return True


def _learn_factor(written: str, unit: str) -> Decimal | int | None:
    """The factor from a unit as written to ``unit`` (remembered), None when there is none."""
    if len(written) > _SHORT or written.strip() != written:
        return None
    code = unit_code(written)
    factor = convert_unit(1.0, code, unit) if code is not None else None
    if factor is None:
        return None
    exact = Decimal(repr(factor))  # as _factor gives it
    if len(_FACTORS) >= _CACHE_SIZE:
        _FACTORS.clear()
    _FACTORS[(written, unit)] = known = 1 if exact == 1 else exact
    return known


def _plain_number(value: Any) -> float | None:
    """A figure as _Fields.number and _convert read it, when it is plain; NaN when it is not."""
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


def observation_to_wire(obs: Observation) -> dict[str, Any]:
    """The JSON Lines form (lower-case names) that validate_observation reads back as ``obs``."""
    return {
        "structure": STRUCTURE,
        "structure_id": STRUCTURE_ID,
        "action": obs.action,
        "zone": obs.zone,
        "indicator": obs.indicator,
        "time_period": obs.period,
        "basis": obs.basis,
        "obs_value": obs.value,
        "unit_measure": obs.unit,
        "yoy_pct": obs.yoy_pct,
        "obs_status": obs.obs_status,
        "revision": obs.revision,
        "published_at": obs.published_at,
        "source": obs.source,
    }


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
    revision = _revision(fields)
    source = fields.text("source") or ""
    zone, indicator = _lookup(fields, catalogue)
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
    unit, written = _unit(fields, "unit")
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


def target_to_wire(target: PlanTarget) -> dict[str, Any]:
    """The JSON form (plan_targets.csv names + revision, action) validate_target reads back."""
    return {
        "plan": target.plan,
        "zone": target.zone,
        "indicator": target.indicator,
        "kind": target.kind,
        "base_year": target.base_year,
        "base_value": target.base_value,
        "target_year": target.target_year,
        "target_value": target.target_value,
        "annual_growth_pct": target.annual_growth_pct,
        "binding": target.binding,
        "unit": target.unit,
        "source": target.source,
        "revision": target.revision,
        "action": target.action,
    }
