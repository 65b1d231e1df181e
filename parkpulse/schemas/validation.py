"""Validation of feed rows (observations), with the reason codes dead letters carry.

A raw record comes from a CSV row (upper-case SDMX-CSV names, every value a string) or a JSON
Lines object (lower-case names, numbers as numbers); names are matched case-insensitively.
What passes is a record in the indicator's own unit; what fails raises RejectedInput whose
``detail`` names the field and the offending value, for the statistics clerk who has to fix it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from operator import itemgetter
from typing import Any, NamedTuple

from parkpulse.schemas.catalogue import Catalogue, Indicator, convert_unit
from parkpulse.schemas.errors import RejectedInput
from parkpulse.schemas.fields import (
    MAX_FIELD_CHARS,
    MAX_NUMBER_CHARS,
    MAX_REVISION,
    MAX_YEAR,
    MIN_YEAR,
    WHOLE_UNITS,
    Fields,
    Names,
    check_amount,
    check_growth,
    clean,
    convert,
    lookup_ids,
    read_choice,
    read_number,
    read_revision,
    read_text,
    read_unit,
    require,
    show,
    unit_factor,
)
from parkpulse.schemas.names import unit_code
from parkpulse.schemas.periods import split_period
from parkpulse.schemas.records import (
    ACTIONS,
    BASES,
    OBS_STATUSES,
    SOURCES,
    Observation,
)

__all__ = [
    "ACTION_SPELLINGS",
    "BASIS_SPELLINGS",
    "OBSERVATION_ALIASES",
    "OBSERVATION_FIELDS",
    "REMEMBERED_CHARS",
    "SOURCE_SPELLINGS",
    "STATUS_SPELLINGS",
    "Layout",
    "ObservationReader",
    "observation_reader",
    "validate_observation",
]

# observations.csv and Observation.to_dict() name three feed fields differently; a file in
# that shape must not lose its values (a row with a YoY would pass as a growth-only figure).
OBSERVATION_ALIASES = {"period": "time_period", "value": "obs_value", "unit": "unit_measure"}

# SDMX-CSV 2.1 writes M (merge) where 2.0 wrote I or A: a figure is inserted, or replaces the
# one it keys by its REVISION, exactly as I does here.
FEED_ACTIONS = (*ACTIONS, "M")


def _merge_action(action: str) -> str:
    return "I" if action == "M" else action


# Which period forms each basis takes; LEVEL (a stock at period end) takes any of them.
_PERIOD_FORMS = {
    "YTD": ("month",),
    "MONTH": ("month",),
    "QUARTER": ("quarter",),
    "YEAR": ("year",),
    "LEVEL": ("month", "quarter", "year"),
}
_FORM_SYNTAX = {"month": "YYYY-MM", "quarter": "YYYY-Qn", "year": "YYYY"}


def _period(names: Names, value: Any, basis: str) -> tuple[str, int, int]:
    """(period, year, first month) of a TIME_PERIOD, checked against the basis."""
    text = read_text(names, "time_period", value, required=True, ints=True)
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


def _published_at(names: Names, value: Any) -> str:
    text = read_text(names, "published_at", value)
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


def validate_observation(
    raw: Mapping[str, Any], catalogue: Catalogue, *, now: datetime
) -> Observation:
    """A feed row (CSV or JSON Lines names) as an Observation in the indicator's unit.

    Raises RejectedInput with a reason code; a period starting after ``now``'s month is a
    ``future_period``.
    """
    return observation_reader(catalogue).read(raw, now)


def observation_reader(catalogue: Catalogue) -> ObservationReader:
    """The catalogue's one reader of observations (the producer's columnar reader and the
    worker share it, and the values it has met)."""
    reader = catalogue.derived.get("observations")
    if reader is None:
        reader = catalogue.derived["observations"] = ObservationReader(catalogue)
    return reader


# --- reading observations --------------------------------------------------------------------
# A backfill validates some 650,000 rows that all look alike: the same dozen names, a few hundred
# periods and publication dates, one unit per indicator. So each field is read by looking up what
# it holds among the values it held before; only a value not met before runs that field's checks
# (the readers above), which give the clerk's message or teach the lookup. The lookups belong to
# one catalogue, hold only what passed, keyed by short texts, and are emptied when full: hostile
# input costs time, not memory.

_CACHE_SIZE = 4096  # entries per lookup; a row has a few dozen names and texts at most
_LAYOUT_CACHE_SIZE = 256  # key layouts: a feed has one or two
REMEMBERED_CHARS = 64  # longer names and texts are never remembered, nor rows with more names
OBSERVATION_FIELDS = (  # what a feed row holds that the reader reads; others: their length only
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
_REQUIRED = OBSERVATION_FIELDS[:4]
_MAYBE_TEXT = frozenset((str, type(None)))
_PLAIN_NUMBER_CHARS = "0123456789.+-"  # no exponent, grouping, spaces, underscores, nan or inf
_EXACT_INT = 2**53  # an int up to this is exactly the float it converts to
_UNUSUAL = math.nan  # what _plain_number gives for a figure _figure must read in full


class Layout(NamedTuple):
    """Where a row with these keys keeps its fields, by position in its values + (None,)."""

    fields: Callable[[tuple[Any, ...]], tuple[Any, ...]]  # the OBSERVATION_FIELDS; -1 when absent
    others: tuple[int, ...]  # the other keys: not read, but their length is checked
    names: Names  # how the row spells its names


def _spellings(choices: tuple[str, ...], default: str | None) -> dict[str | None, str]:
    """The plain spellings of a choice and what read_choice reads them as."""
    out: dict[str | None, str] = {}
    for choice in choices:
        for spelled in (choice, choice.lower(), choice.upper()):
            out[spelled] = spelled.upper() if spelled.upper() in choices else spelled.lower()
    if default is not None:
        out[None] = out[""] = default
    return out


# The plain spellings of each choice field and what the validator reads them as (None and "":
# the default); any other spelling goes through read_choice, which says what is wrong.
ACTION_SPELLINGS = {
    **_spellings(ACTIONS, "I"),
    **{spelled: "I" for spelled in ("M", "m")},  # SDMX-CSV 2.1 merge: an insert here
}
SOURCE_SPELLINGS = _spellings(SOURCES, "bureau")
BASIS_SPELLINGS = _spellings(BASES, None)
STATUS_SPELLINGS = _spellings(OBS_STATUSES, "A")


def plain_choice(spellings: dict[str | None, str], value: Any) -> str | None:
    """What a choice field reads as when spelled plainly (None: read_choice says)."""
    return spellings.get(value) if value.__class__ in _MAYBE_TEXT else None


def plain_revision(value: Any) -> int | None:
    """REVISION as read when it is a plain whole number in range (None: read_revision says)."""
    if value.__class__ is str and value.isdigit() and value.isascii() and len(value) < 19:
        return int(value)
    if value.__class__ is int and 0 <= value <= MAX_REVISION:
        return value
    return None


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= _CACHE_SIZE:
        cache.clear()
    cache[key] = value


class ObservationReader:
    """validate_observation for one catalogue, with the values its rows held so far.

    Its field readers (``layout``, ``published_at``, ``period``, ``factor``, ``plain_figure``)
    and the values it met (``zones``, ``indicators``, ``periods``, ``published``) are public:
    the producer's columnar reader (producers/columnar.py) runs the same checks once per
    distinct value, and the worker reads a column envelope's figures with them
    (schemas/figure_columns.py)."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self.layouts: dict[tuple[str, ...], Layout | None] = {}  # None: two keys name one field
        self.zones: dict[str, str] = {}  # ZONE as written -> zone id
        self.indicators: dict[str, Indicator] = {}  # INDICATOR as written -> indicator
        self.periods: dict[tuple[str, str], tuple[str, int]] = {}  # -> (period, year*12+month)
        self.period_texts: dict[str, str] = {}  # a period as kept -> the one string of it
        self.published: dict[str, str] = {}  # PUBLISHED_AT as written -> as kept
        # (unit as written, indicator unit) -> the factor, or 1 when the unit is the indicator's
        self.factors: dict[tuple[str, str], Decimal | int] = {}

    def read(self, raw: Any, now: datetime) -> Observation:
        layout = None
        if type(raw) is dict:
            keys = tuple(raw)
            layout = self.layouts.get(keys) or self.layout(keys)
        if layout is None:  # not a dict, odd names, or a field named twice
            fields = Fields(raw, "feed row", OBSERVATION_ALIASES)
            return self._observation(tuple(map(fields.values.get, OBSERVATION_FIELDS)), fields, now)
        values = (*raw.values(), None)
        try:
            for at in layout.others:  # not read, but a huge one is refused
                other = values[at]
                if isinstance(other, str) and len(other) > MAX_FIELD_CHARS:
                    clean(other)
            return self._observation(layout.fields(values), layout.names, now)
        except RejectedInput:
            Fields(raw, "feed row", OBSERVATION_ALIASES)  # a fault of the whole row comes first
            raise

    def _observation(self, values: tuple[Any, ...], names: Names, now: datetime) -> Observation:
        """The checks in the order their messages take precedence; values as the row has them."""
        zone, name, text, basis, number, unit, yoy, status, revision, published, action, source = (
            values
        )
        zone_id = self.zones.get(zone) if zone.__class__ is str else None
        indicator = self.indicators.get(name) if name.__class__ is str else None
        basis_code = BASIS_SPELLINGS.get(basis) if basis.__class__ is str else None
        known = self.periods.get((text, basis_code)) if text.__class__ is str else None
        if zone_id is None or indicator is None or known is None:  # (basis None: known None)
            require(names, _REQUIRED, (zone, name, text, basis))
        merged = plain_choice(ACTION_SPELLINGS, action)
        if merged is None:
            merged = _merge_action(read_choice(names, "action", clean(action), FEED_ACTIONS, "I"))
        origin = plain_choice(SOURCE_SPELLINGS, source)
        if origin is None:
            origin = read_choice(names, "source", clean(source), SOURCES, "bureau")
        if basis_code is None:
            basis_code = read_choice(names, "basis", clean(basis), BASES)
        obs_status = plain_choice(STATUS_SPELLINGS, status)
        if obs_status is None:
            obs_status = read_choice(names, "obs_status", clean(status), OBS_STATUSES, "A")
        plain_rev = plain_revision(revision)
        revision = read_revision(names, clean(revision)) if plain_rev is None else plain_rev
        published_at = self.plain_published(published)
        if published_at is None:
            published_at = self.published_at(names, published)
        if zone_id is None or indicator is None:
            zone_id, indicator = self._lookup(names, zone, name)
        if known is None:
            known = self.period(names, text, basis_code)
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
                clean(unread)  # ...but a huge one is still refused
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

    def layout(self, keys: tuple[Any, ...]) -> Layout | None:
        """The layout of rows with these keys (remembered when the names are short); None when
        two keys name one field (the general path compares them)."""
        if len(keys) > REMEMBERED_CHARS or not all(
            k.__class__ is str and len(k) <= REMEMBERED_CHARS for k in keys
        ):
            return None
        where: dict[str, int] = {}
        spelled: dict[str, str] = {}
        layout = None
        for at, key in enumerate(keys):
            name = key.strip().lower()
            name = OBSERVATION_ALIASES.get(name, name)
            if name in where:
                break  # Fields compares the two values
            where[name] = at
            spelled[name] = key.strip()
        else:
            fields = itemgetter(*(where.pop(field, -1) for field in OBSERVATION_FIELDS))
            upper = sum(name.isupper() for name in spelled.values()) * 2 > len(keys)
            layout = Layout(fields, tuple(where.values()), Names(spelled, upper))
        if len(self.layouts) >= _LAYOUT_CACHE_SIZE:
            self.layouts.clear()
        self.layouts[keys] = layout
        return layout

    def plain_published(self, written: Any) -> str | None:
        """PUBLISHED_AT as kept when none is given or it is one met before; None otherwise."""
        if written is None or written == "":
            return ""
        return self.published.get(written) if written.__class__ is str else None

    def published_at(self, names: Names, written: Any) -> str:
        """PUBLISHED_AT as kept ("" when none); raises RejectedInput when it is no date-time."""
        if written is None or written == "":
            return ""
        published_at = _published_at(names, clean(written))
        if written.__class__ is str and len(written) <= REMEMBERED_CHARS:
            _remember(self.published, written, published_at)
        return published_at

    def _lookup(self, names: Names, zone: Any, name: Any) -> tuple[str, Indicator]:
        zone_id, indicator = lookup_ids(names, clean(zone), clean(name), self.catalogue)
        if zone.__class__ is str and len(zone) <= REMEMBERED_CHARS:
            _remember(self.zones, zone, zone_id)
        if name.__class__ is str and len(name) <= REMEMBERED_CHARS:
            _remember(self.indicators, name, indicator)
        return zone_id, indicator

    def period(self, names: Names, text: Any, basis: str) -> tuple[str, int]:
        """(period, year * 12 + first month) of a TIME_PERIOD under ``basis`` (a basis code);
        raises RejectedInput when it does not fit."""
        period, year, month = _period(names, clean(text), basis)
        # One string per period whatever its basis: the roll-up keeps figures as read, sharing
        # their texts (streams/rollup.py), and a copy per basis would be made again there.
        period = self.period_texts.setdefault(period, period)
        if len(self.period_texts) >= _CACHE_SIZE:
            self.period_texts.clear()
        known = (period, year * 12 + month)
        if text.__class__ is str and len(text) <= REMEMBERED_CHARS:
            _remember(self.periods, (text, basis), known)
        return known

    def _figure(
        self, names: Names, number: Any, unit: Any, yoy: Any, indicator: Indicator
    ) -> tuple[float | None, float | None]:
        """(value in the indicator's unit, yoy_pct) of a row that is not a delete."""
        plain = self.plain_figure(number, unit, yoy, indicator)
        if plain is not None:
            return plain
        return _figure(names, clean(number), clean(unit), clean(yoy), indicator)

    def plain_figure(
        self, number: Any, unit: Any, yoy: Any, indicator: Indicator
    ) -> tuple[float | None, float | None] | None:
        """``_figure`` of a figure written plainly (plain decimals, a unit it converts, values in
        range); None when it needs every check."""
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
                factor = self.factors.get((unit, indicator.unit)) or self.factor(unit, indicator)
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
        return None

    def factor(self, written: str, indicator: Indicator) -> Decimal | int | None:
        """The factor from a unit as written to the indicator's (remembered), None if none."""
        if len(written) > REMEMBERED_CHARS or written.strip() != written:
            return None
        code = unit_code(written)
        factor = convert_unit(1.0, code, indicator.unit) if code is not None else None
        if factor is None:
            return None
        exact = Decimal(repr(factor))  # as unit_factor gives it
        _remember(self.factors, (written, indicator.unit), 1 if exact == 1 else exact)
        return 1 if exact == 1 else exact


def _figure(
    names: Names, number_value: Any, unit_value: Any, yoy_value: Any, indicator: Indicator
) -> tuple[float | None, float | None]:
    """(value in the indicator's unit, yoy_pct) of a row that is not a delete: every check."""
    number = read_number(names, "obs_value", number_value)
    yoy = read_number(names, "yoy_pct", yoy_value)
    if number is None and yoy is None:
        raise RejectedInput(
            "bad_value",
            f"{names.name('obs_value')} and {names.name('yoy_pct')} are both empty: a figure "
            "needs a value or a year-on-year growth (ACTION D deletes one)",
        )
    value = None
    # A growth-only figure needs no unit; one given must still be the indicator's.
    if number is not None or unit_value is not None:
        unit, written = read_unit(names, "unit_measure", unit_value)
        value = convert(number, unit_factor(names, "unit_measure", unit, written, indicator))
    check_amount(names, "obs_value", value, indicator)
    yoy_pct = convert(yoy, Decimal(1))
    check_growth(names, "yoy_pct", yoy_pct)
    return value, yoy_pct


def _plain_number(value: Any) -> float | None:
    """A figure as read_number and convert read it, when it is plain; NaN when it is not."""
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
