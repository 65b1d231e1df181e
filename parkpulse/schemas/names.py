"""Names people write for zones, indicators and units, resolved to the catalogue's ids.

A bureau writes 济南高新区 or 济南高新技术产业开发区, 外贸进出口总额, 亿美元; the catalogue says
``jinan-hitech``, ``import_export_total``, ``USD_100M``. Every place that accepts an id accepts a
name or alias too, through :func:`lookup` (None when unknown) or :func:`resolve` (raises
:class:`UnknownName`, a RejectedInput whose detail suggests the nearest known names).

A name is tried as written first (one dict lookup, what a feed's hot path pays), then
in a folded form: NFKC (full-width （）％ and digits become ASCII), a few Traditional
characters as Simplified (seed 000 writes 濟南高新區 and 億元), no spaces or quotation
marks, lower case for units only. The names of a zone or indicator are its id,
``name_zh``, ``name_en``, the aliases of ``aliases.csv`` and derived short forms:
高新技术产业开发区 → 高新区 (the city + 高新区 form), a name without its
parenthesised qualifier, …数 ↔ …数量. The first id to claim a folded name keeps it,
so an alias never shadows an id or an official name.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from parkpulse.schemas.catalogue import UNITS, Catalogue
from parkpulse.schemas.errors import RejectedInput

__all__ = [
    "KINDS",
    "UNIT_ALIASES",
    "Names",
    "UnknownName",
    "fold",
    "lookup",
    "names_of",
    "plan_id",
    "resolve",
    "suggest",
    "unit_code",
    "unit_suggestions",
    "zone_in",
]

KINDS = ("zone", "indicator", "unit")
REASON_OF_KIND = {"zone": "unknown_zone", "indicator": "unknown_indicator", "unit": "unit_mismatch"}
SUGGESTIONS = 3
MAX_SUGGEST_CHARS = 64
SIMILARITY = 0.4  # difflib ratio below which a name is not suggested

# What clerks write instead of the unit codes (Simplified; Traditional folds to these).
UNIT_ALIASES = {
    "亿元": "CNY_100M",
    "亿元人民币": "CNY_100M",
    "万元": "CNY_10K",
    "万元人民币": "CNY_10K",
    "亿美元": "USD_100M",
    "万美元": "USD_10K",
    "个": "COUNT",
    "家": "COUNT",
    "户": "COUNT",
    "项": "COUNT",
    "件": "COUNT",
    "所": "COUNT",
    "%": "PCT",
    "百分比": "PCT",
    "人": "PERSON",
    "名": "PERSON",
    "万人": "PERSON_10K",
    "万元/亩": "CNY_10K_PER_MU",
    "μg/m3": "UG_PER_M3",
    "微克/立方米": "UG_PER_M3",
    "微克每立方米": "UG_PER_M3",
}

# Traditional → Simplified for the characters of zone, indicator and unit names (not a general
# converter: enough for 濟南高新區 進出口總額 億元 and their kin).
_TRADITIONAL = (
    "濟济區区進进額额總总億亿產产業业開开發发術术門门銷销園园員员數数資资標标營营實实際际費费"
    "環环醫医療疗學学義义務务參参險险計计萬万體体規规劃划稅税長长與与場场設设機机構构職职碩硕"
    "層层華华東东廈厦錫锡寧宁濱滨臺台幣币戶户個个項项畝亩積积線线網网絡络經经創创專专級级國国"
    "態态農农動动氣气質质優优蓋盖對对貿贸齊齐嶺岭陽阳蘇苏無无錫锡達达莊庄並并"
)
_TRAD = str.maketrans(_TRADITIONAL[0::2], _TRADITIONAL[1::2])
_DROP = str.maketrans("", "", "\"'“”‘’「」『』《》〈〉·・")
_SHORT_FORMS = (
    ("高新技术产业开发区", "高新区"),
    ("高技术产业开发区", "高新区"),
    ("高新技术产业园区", "高新区"),
    ("高新技术开发区", "高新区"),
)
_QUALIFIER = re.compile(r"\([^()]*\)$")


def fold(text: str, kind: str = "zone") -> str:
    """The form two spellings of one name share (width, script, spaces, quotes; the case of
    units only: ids are case-sensitive, ``Jinan-Hitech`` is not ``jinan-hitech``)."""
    folded = unicodedata.normalize("NFKC", text).translate(_TRAD).translate(_DROP)
    folded = unicodedata.normalize("NFKC", "".join(folded.split()))  # spaces gone: compose again
    return folded.lower() if kind == "unit" else folded


class UnknownName(RejectedInput):
    """A name that matches no zone, indicator or unit; ``suggestions`` are the nearest ids."""

    def __init__(self, kind: str, text: str, suggestions: list[str], labels: list[str]) -> None:
        what = {"zone": "a known zone", "indicator": "in the indicator catalogue"}
        known = what.get(kind, f"a known unit ({', '.join(UNITS)})")
        detail = f"{_quote(text)} is not {known}"
        if labels:
            detail += "; nearest: " + ", ".join(labels)
        super().__init__(REASON_OF_KIND[kind], detail)
        self.kind = kind
        self.text = text
        self.suggestions = suggestions


@dataclass(slots=True, eq=False)  # hashed by identity: the suggestion cache keys on it
class Names:
    """Every accepted name of each kind: as written and folded, to its id."""

    exact: dict[str, dict[str, str]] = field(default_factory=lambda: {k: {} for k in KINDS})
    folded: dict[str, dict[str, str]] = field(default_factory=lambda: {k: {} for k in KINDS})
    labels: dict[str, dict[str, str]] = field(default_factory=lambda: {k: {} for k in KINDS})

    def add(self, kind: str, ident: str, names: Iterable[str]) -> None:
        """Claim ``names`` for ``ident`` where no earlier id holds them."""
        for name in names:
            name = name.strip()
            if not name:
                continue
            self.exact[kind].setdefault(name, ident)
            self.folded[kind].setdefault(fold(name, kind), ident)

    def lookup(self, kind: str, text: str) -> str | None:
        """The id ``text`` names, or None."""
        found = self.exact[kind].get(text)
        if found is None and len(text) <= 256:
            found = self.folded[kind].get(fold(text, kind))
        return found

    def suggest(self, kind: str, text: str, n: int = SUGGESTIONS) -> list[str]:
        """The ids whose names are nearest ``text`` (best first, at most ``n``)."""
        if len(text) > MAX_SUGGEST_CHARS:
            return []  # not a name someone mistyped
        return list(_suggest(self, kind, fold(text, kind), n))


@lru_cache(maxsize=4096)
def _suggest(names: Names, kind: str, folded: str, n: int) -> tuple[str, ...]:
    candidates = names.folded[kind]
    out: list[str] = []
    for match in difflib.get_close_matches(folded, list(candidates), n=n * 4, cutoff=SIMILARITY):
        ident = candidates[match]
        if ident not in out:
            out.append(ident)
        if len(out) == n:
            break
    return tuple(out)


def _derived(name: str) -> list[str]:
    """The short forms people write for an official name."""
    out = []
    for long, short in _SHORT_FORMS:
        if long in name:
            out.append(name.replace(long, short))
    bare = _QUALIFIER.sub("", unicodedata.normalize("NFKC", name))
    if bare and bare != name:
        out.append(bare)
    for base in (name, bare):
        if base.endswith("数量"):
            out.append(base[:-1])
        elif base.endswith("数"):
            out.append(base + "量")
    return out


_INDEX: dict[int, tuple[Catalogue, Names]] = {}
_UNIT_NAMES = Names()
for _code in UNITS:
    _UNIT_NAMES.add("unit", _code, (_code,))
for _alias, _code in UNIT_ALIASES.items():
    _UNIT_NAMES.add("unit", _code, (_alias,))


def unit_code(text: str) -> str | None:
    """The unit code ``text`` names (``CNY_100M`` for 亿元, 億元, cny_100m …), or None."""
    return _UNIT_NAMES.lookup("unit", text)


# Five-year plans by the names planners write (十四五, “十四五”规划, 十四五时期 → 14th-fyp).
PLAN_NAMES = {"十三五": "13th-fyp", "十四五": "14th-fyp", "十五五": "15th-fyp"}
_PLAN_SUFFIXES = ("规划纲要", "规划", "时期", "期间", "计划")


def plan_id(text: str) -> str:
    """The plan id ``text`` names: a five-year plan's Chinese name is its id; anything else is
    a plan id as written (plan ids are the planners' own)."""
    folded = fold(text)
    for suffix in _PLAN_SUFFIXES:
        folded = folded.removesuffix(suffix)
    return PLAN_NAMES.get(folded, text)


def unit_suggestions(text: str, n: int = SUGGESTIONS) -> list[str]:
    """The units nearest an unknown ``text``, one name each, as a clerk writes them: ``亿元
    (CNY_100M)`` for 亿, ``万美元 (USD_10K)`` for 千美元 (best first, at most ``n``)."""
    if len(text) > MAX_SUGGEST_CHARS:
        return []
    return list(_unit_suggestions(fold(text, "unit"), n))


@lru_cache(maxsize=4096)  # a file's mistyped unit repeats on every row (~0.8 ms each)
def _unit_suggestions(folded: str, n: int) -> tuple[str, ...]:
    candidates = _UNIT_NAMES.folded["unit"]
    out: list[str] = []
    seen: set[str] = set()
    for match in difflib.get_close_matches(folded, list(candidates), n=n * 4, cutoff=SIMILARITY):
        code = candidates[match]
        if code not in seen:
            seen.add(code)
            out.append(code if match == code.lower() else f"{match} ({code})")
        if len(out) == n:
            break
    return tuple(out)


def names_of(catalogue: Catalogue) -> Names:
    """The name index of a catalogue (built once per catalogue)."""
    held = _INDEX.get(id(catalogue))
    if held is not None and held[0] is catalogue:
        return held[1]
    names = Names()
    for zone in catalogue.zones.values():
        names.add("zone", zone.id, (zone.id, zone.name_zh, zone.name_en))
    for ind in catalogue.indicators.values():
        names.add("indicator", ind.id, (ind.id, ind.name_zh, ind.name_en))
    for kind, ident, alias in catalogue.aliases:
        if kind in ("zone", "indicator") and ident in getattr(catalogue, kind + "s"):
            names.add(kind, ident, (alias,))
    for zone in catalogue.zones.values():
        names.add("zone", zone.id, _derived(zone.name_zh))
    for ind in catalogue.indicators.values():
        names.add("indicator", ind.id, _derived(ind.name_zh))
    names.exact["unit"] = _UNIT_NAMES.exact["unit"]
    names.folded["unit"] = _UNIT_NAMES.folded["unit"]
    zh = {z.id: z.name_zh for z in catalogue.zones.values()}
    zh.update({i.id: i.name_zh for i in catalogue.indicators.values()})
    for kind in ("zone", "indicator"):
        for ident in set(names.folded[kind].values()):
            names.labels[kind][ident] = f"{ident} ({zh[ident]})" if zh.get(ident) else ident
    if len(_INDEX) > 16:
        _INDEX.clear()
    _INDEX[id(catalogue)] = (catalogue, names)
    return names


def zone_in(text: str, catalogue: Catalogue) -> str | None:
    """The one zone whose name (4 characters or more) a title contains, else None: compared
    folded, so 濟南高新區2021年… names jinan-hitech as 济南高新区2021年… does."""
    folded = fold(text)
    names = names_of(catalogue).folded["zone"]
    found = {ident for name, ident in names.items() if len(name) >= 4 and name in folded}
    return found.pop() if len(found) == 1 else None


def lookup(kind: str, text: str, catalogue: Catalogue) -> str | None:
    """The id of the zone, indicator or unit ``text`` names, or None when none."""
    return names_of(catalogue).lookup(kind, text)


def suggest(kind: str, text: str, catalogue: Catalogue, n: int = SUGGESTIONS) -> list[str]:
    """The ids nearest an unknown ``text`` (best first)."""
    return names_of(catalogue).suggest(kind, text, n)


def resolve_option(kind: str, text: str | None, catalogue: Catalogue) -> str | RejectedInput | None:
    """What a ``--zone``-style option names: its id, the reject that says why it names nothing
    (every row it would apply to carries it), or None when the option was not given."""
    if text is None:
        return None
    try:
        return resolve(kind, text, catalogue)
    except UnknownName as exc:
        return RejectedInput(exc.reason, f"--{kind} {exc.detail}")


def resolve(kind: str, text: str, catalogue: Catalogue) -> str:
    """The id ``text`` names; raises UnknownName (with the nearest ids) when none."""
    names = names_of(catalogue)
    found = names.lookup(kind, text)
    if found is not None:
        return found
    ids = names.suggest(kind, text)
    labels = [names.labels[kind].get(i, i) for i in ids]
    raise UnknownName(kind, text, ids, labels)


def _quote(text: str) -> str:
    """As validation.show quotes a value: repr, cut to 80 characters with the length."""
    shown = repr(text)
    if len(shown) > 80:
        shown = shown[:79] + f"… ({len(text)} chars)"
    return shown
