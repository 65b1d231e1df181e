"""Reading one field of a raw record: the checks and the detail messages every validator shares.

A raw record comes from a CSV row (upper-case names, every value a string) or a JSON object
(lower-case names, numbers as numbers); names are matched case-insensitively (``Fields``) and a
detail message quotes a name the way the input spelled it (``Names``). Each reader takes a value
as ``Fields`` keeps it (stripped, None when empty: ``clean``) and returns it checked, or raises
RejectedInput naming the field and the offending value, for the clerk who has to fix it.
Observations (schemas.validation) and plan targets (schemas.targets) are read with these.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from parkpulse.schemas.catalogue import UNITS, Catalogue, Indicator, convert_unit
from parkpulse.schemas.errors import RejectedInput
from parkpulse.schemas.names import UnknownName, resolve, unit_code, unit_suggestions

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

_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_GROUPED = re.compile(r"[+-]?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?")  # 1,802,000.5
_INTEGER = re.compile(r"[+]?[0-9]{1,19}")


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


class Names:
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


class Fields(Names):
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
        return read_text(self, field, self.values.get(field), required=required, ints=ints)

    def choice(self, field: str, choices: tuple[str, ...], default: str | None = None) -> str:
        return read_choice(self, field, self.values.get(field), choices, default)

    def number(self, field: str) -> Decimal | None:
        return read_number(self, field, self.values.get(field))

    def integer(self, field: str, *, default: int | None = None) -> int:
        return read_integer(self, field, self.values.get(field), default=default)


# The readers of one field's value, as a record gives it (stripped, None when empty: clean).
# Fields reads targets with them; ObservationReader reads a feed row's fields with them when
# what the field holds is not one it has met before.


def clean(value: Any) -> Any:
    """A value as Fields keeps it: text stripped, None when empty (a huge text is refused)."""
    if isinstance(value, str):
        if len(value) > MAX_FIELD_CHARS:  # Fields(raw) says which field; see ObservationReader
            raise RejectedInput("malformed", f"a field is {len(value)} characters long")
        return value.strip() or None
    return value


def require(names: Names, fields: tuple[str, ...], values: tuple[Any, ...]) -> None:
    """Reject the record for the first of ``fields`` whose (cleaned) value is missing."""
    for field, value in zip(fields, values, strict=True):
        if clean(value) is None:
            raise RejectedInput("malformed", f"{names.name(field)} is missing")


def read_text(
    names: Names, field: str, value: Any, *, required: bool = False, ints: bool = False
) -> str | None:
    """A text field, stripped; None when empty. ``ints`` lets JSON give 2021 for "2021"."""
    if value.__class__ is str:
        return value
    if value is None:
        if required:
            raise RejectedInput("malformed", f"{names.name(field)} is missing")
        return None
    if ints and isinstance(value, int) and not isinstance(value, bool):
        try:
            return str(value)
        except ValueError:  # past Python's 4,300 digits: no period or name is that long
            raise RejectedInput(
                "malformed", f"{names.name(field)} is a number too long to read"
            ) from None
    if not isinstance(value, str):
        raise RejectedInput(
            "malformed",
            f"{names.name(field)} must be text, not {type(value).__name__} {show(value)}",
        )
    return value


def read_choice(
    names: Names, field: str, value: Any, choices: tuple[str, ...], default: str | None = None
) -> str:
    text = read_text(names, field, value, required=default is None)
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


def read_number(names: Names, field: str, value: Any) -> Decimal | None:
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


def read_integer(names: Names, field: str, value: Any, *, default: int | None = None) -> int:
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


def read_unit(names: Names, field: str, value: Any) -> tuple[str, str]:
    """(unit code, how it was written); unknown units are a unit_mismatch."""
    written = read_text(names, field, value)
    if written is None:
        raise RejectedInput("malformed", f"{names.name(field)} is missing")
    code = unit_code(written)
    if code is None:
        nearest = unit_suggestions(written)
        raise RejectedInput(
            "unit_mismatch",
            f"{names.name(field)} {show(written)} is not a known unit ({', '.join(UNITS)})"
            + ("; nearest: " + ", ".join(nearest) if nearest else ""),
        )
    return code, written


def unit_factor(names: Names, field: str, unit: str, written: str, indicator: Indicator) -> Decimal:
    factor = convert_unit(1.0, unit, indicator.unit)
    if factor is None:
        raise RejectedInput(
            "unit_mismatch",
            f"{names.name(field)} {show(written)} does not convert to {indicator.unit} "
            f"for {indicator.id}",
        )
    return Decimal(repr(factor))


def convert(number: Decimal | None, factor: Decimal) -> float | None:
    if number is None:
        return None
    # Decimal keeps 1,802,000 万元 at exactly 180.2 亿元 (floats give 180.20000000000002).
    return float(number) if factor == 1 else float(number * factor)


def check_amount(names: Names, field: str, value: float | None, indicator: Indicator) -> None:
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


def check_growth(names: Names, field: str, value: float | None) -> None:
    if value is not None and value < -100:
        raise RejectedInput(
            "bad_value", f"{names.name(field)} {_num(value)} is below -100 (a fall of over 100 %)"
        )


def _num(value: float) -> str:
    return show(int(value)) if value.is_integer() and abs(value) < 1e15 else show(value)


def lookup_ids(
    names: Names, zone: Any, indicator: Any, catalogue: Catalogue
) -> tuple[str, Indicator]:
    """(zone id, indicator) of a record's ZONE and INDICATOR (ids or names, see schemas.names)."""
    zone = read_text(names, "zone", zone, required=True)
    indicator = read_text(names, "indicator", indicator, required=True)
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


def read_revision(names: Names, value: Any) -> int:
    revision = read_integer(names, "revision", value, default=0)
    if not 0 <= revision <= MAX_REVISION:
        raise RejectedInput(
            "malformed", f"{names.name('revision')} {show(revision)} is not 0 or a positive number"
        )
    return revision
