"""Chinese names and aliases of zones, indicators and units: worked examples, then properties."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parkpulse.schemas.catalogue import load_catalogue
from parkpulse.schemas.errors import RejectedInput
from parkpulse.schemas.names import (
    UnknownName,
    fold,
    lookup,
    names_of,
    plan_id,
    resolve,
    unit_code,
)
from parkpulse.schemas.targets import validate_target
from parkpulse.schemas.validation import validate_observation

CATALOGUE = load_catalogue()
NOW = datetime(2021, 11, 15, 10, 0, tzinfo=UTC)
ZONE_NAMES = sorted(
    (name, ident) for name, ident in names_of(CATALOGUE).exact["zone"].items() if name != ident
)
INDICATOR_NAMES = sorted(
    (name, ident) for name, ident in names_of(CATALOGUE).exact["indicator"].items() if name != ident
)


@pytest.mark.parametrize(
    ("text", "ident"),
    [
        ("济南高新技术产业开发区", "jinan-hitech"),
        ("济南高新区", "jinan-hitech"),
        ("濟南高新區", "jinan-hitech"),  # seed 000 is in Traditional characters
        (" 济南 高新区 ", "jinan-hitech"),
        ("烟台高新区", "yantai-hitech"),
        ("厦门火炬高新区", "xiamen-torch-hitech"),
        ("厦门高新区", "xiamen-torch-hitech"),
        ("天津滨海高新区", "tianjin-binhai-hitech"),
        ("Jinan High-tech Industrial Development Zone", "jinan-hitech"),
        ("jinan-hitech", "jinan-hitech"),
    ],
)
def test_zone_names(text: str, ident: str) -> None:
    assert resolve("zone", text, CATALOGUE) == ident


def test_every_zone_has_its_city_short_form() -> None:
    for zone in CATALOGUE.zones.values():
        short = zone.name_zh.replace("高新技术产业开发区", "高新区").replace(
            "高技术产业开发区", "高新区"
        )
        assert short.endswith("高新区"), zone
        assert lookup("zone", short, CATALOGUE) == zone.id


@pytest.mark.parametrize(
    ("text", "ident"),
    [
        ("地区生产总值", "gdp"),
        ("进出口总额", "import_export_total"),
        ("外贸进出口总额", "import_export_total"),
        ("進出口總額", "import_export_total"),
        ("实际使用外资", "foreign_capital_used"),
        ("实际利用外资", "foreign_capital_used"),
        ("上市企业数（含新三板）", "listed_companies"),
        ("上市企业数", "listed_companies"),
        ("国家级研发机构数量", "national_rd_institutions"),
        ("“十强”产业固定资产投资额占高新区固定资产投资总额的比重", "top10_industry_fai_share"),
        ("PM2.5平均浓度", "pm25"),
        ("新增市场主体", "new_market_entities"),
    ],
)
def test_indicator_names(text: str, ident: str) -> None:
    assert resolve("indicator", text, CATALOGUE) == ident


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("亿元", "CNY_100M"),
        ("億元", "CNY_100M"),
        ("万元", "CNY_10K"),
        ("亿美元", "USD_100M"),
        ("万美元", "USD_10K"),
        ("户", "COUNT"),
        ("家", "COUNT"),
        ("个", "COUNT"),
        ("人", "PERSON"),
        ("万人", "PERSON_10K"),
        ("%", "PCT"),
        ("％", "PCT"),
        ("微克/立方米", "UG_PER_M3"),
        ("μg/m³", "UG_PER_M3"),
        ("cny_100m", "CNY_100M"),
    ],
)
def test_unit_names(text: str, code: str) -> None:
    assert unit_code(text) == code


def test_ids_stay_case_sensitive() -> None:
    assert lookup("zone", "Jinan-Hitech", CATALOGUE) is None


def test_an_unknown_name_suggests_the_nearest() -> None:
    with pytest.raises(UnknownName) as info:
        resolve("zone", "济南高薪区", CATALOGUE)
    assert info.value.reason == "unknown_zone"
    assert info.value.suggestions[0] == "jinan-hitech"
    assert "nearest: jinan-hitech (济南高新技术产业开发区)" in info.value.detail
    with pytest.raises(UnknownName) as info:
        resolve("indicator", "进出口总量", CATALOGUE)
    assert info.value.reason == "unknown_indicator"
    assert info.value.suggestions[0] == "import_export_total"
    with pytest.raises(UnknownName) as info:
        resolve("zone", "jinan-hitek", CATALOGUE)
    assert info.value.suggestions[0] == "jinan-hitech"


def test_nothing_is_suggested_for_noise() -> None:
    with pytest.raises(UnknownName) as info:
        resolve("zone", "x" * 500, CATALOGUE)
    assert info.value.suggestions == [] and "nearest" not in info.value.detail


def _feed_row(zone: str, indicator: str, **more: Any) -> dict[str, Any]:
    return {
        "ZONE": zone,
        "INDICATOR": indicator,
        "TIME_PERIOD": "2021-10",
        "BASIS": "YTD",
        "OBS_VALUE": "1054000",
        "UNIT_MEASURE": "万元",
        "YOY_PCT": "",
        **more,
    }


def test_a_feed_row_in_chinese_is_the_row_in_ids() -> None:
    named = validate_observation(_feed_row("济宁高新区", "进出口额"), CATALOGUE, now=NOW)
    by_id = validate_observation(
        _feed_row("jining-hitech", "import_export_total"), CATALOGUE, now=NOW
    )
    assert named == by_id
    assert (named.zone, named.indicator, named.value, named.unit) == (
        "jining-hitech",
        "import_export_total",
        105.4,
        "CNY_100M",
    )


def test_ten_thousand_dollars_convert_to_hundred_millions() -> None:
    row = _feed_row("济宁高新区", "利用外资", OBS_VALUE="27000", UNIT_MEASURE="万美元")
    obs = validate_observation(row, CATALOGUE, now=NOW)
    assert (obs.indicator, obs.value, obs.unit) == ("foreign_capital_used", 2.7, "USD_100M")


def test_an_unknown_name_in_a_feed_is_a_dead_letter_with_suggestions() -> None:
    with pytest.raises(RejectedInput) as info:
        validate_observation(_feed_row("济宁高薪区", "进出口额"), CATALOGUE, now=NOW)
    assert info.value.reason == "unknown_zone"
    assert info.value.detail.startswith("ZONE '济宁高薪区' is not a known zone; nearest: jining")


TARGET_ROW = {
    "plan": "14th-fyp",
    "zone": "济南高新区",
    "indicator": "一般公共预算收入",
    "kind": "level",
    "base_year": "2020",
    "base_value": "130.2",
    "target_year": "2025",
    "target_value": "200",
    "annual_growth_pct": "9.0",
    "binding": "预期性",
    "unit": "亿元",
}


def test_a_target_row_takes_names() -> None:
    target = validate_target(TARGET_ROW, CATALOGUE)
    assert (target.zone, target.indicator, target.unit) == (
        "jinan-hitech",
        "budget_revenue",
        "CNY_100M",
    )


# -- properties ---------------------------------------------------------------------------

_NOISE = st.sampled_from([" ", "\u3000", "\u00a0", "“", "”", ""])


def _widen(text: str) -> str:
    """ASCII as its full-width form (what a Chinese input method often types)."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


@given(st.sampled_from(ZONE_NAMES + INDICATOR_NAMES), _NOISE, _NOISE, st.booleans())
def test_spacing_width_and_quotes_do_not_change_what_a_name_means(
    pair: tuple[str, str], before: str, after: str, wide: bool
) -> None:
    name, ident = pair
    kind = "zone" if ident in CATALOGUE.zones else "indicator"
    written = before + (_widen(name) if wide else name) + after
    assert lookup(kind, written, CATALOGUE) == ident


@given(st.sampled_from(ZONE_NAMES), st.sampled_from(INDICATOR_NAMES))
def test_a_row_by_names_validates_as_the_row_by_ids(
    zone: tuple[str, str], indicator: tuple[str, str]
) -> None:
    unit = CATALOGUE.indicators[indicator[1]].unit
    row = {**_feed_row(zone[0], indicator[0]), "OBS_VALUE": "12", "UNIT_MEASURE": unit}
    ids = {**row, "ZONE": zone[1], "INDICATOR": indicator[1]}
    assert validate_observation(row, CATALOGUE, now=NOW) == validate_observation(
        ids, CATALOGUE, now=NOW
    )


@given(st.text(max_size=20))
def test_fold_is_idempotent(text: str) -> None:
    assert fold(fold(text)) == fold(text)


def test_extra_aliases_from_a_reference_dir(tmp_path: Any) -> None:
    (tmp_path / "aliases.csv").write_text(
        "kind,id,alias\nzone,jinan-hitech,泉城高新区\n", encoding="utf-8"
    )
    catalogue = load_catalogue(tmp_path)
    assert lookup("zone", "泉城高新区", catalogue) == "jinan-hitech"
    assert lookup("zone", "泉城高新区", CATALOGUE) is None


@pytest.mark.parametrize("action", ["M", "m"])
def test_sdmx_csv_21_merge_is_an_insert(action: str) -> None:
    row = _feed_row("jining-hitech", "import_export_total", ACTION=action)
    inserted = validate_observation({**row, "ACTION": "I"}, CATALOGUE, now=NOW)
    assert validate_observation(row, CATALOGUE, now=NOW) == inserted
    odd = {**row, "ACTION": action, "X" * 70: "1"}  # a long name: the general path reads it
    assert validate_observation(odd, CATALOGUE, now=NOW) == inserted
    assert validate_observation({**row, "ACTION": "I"}, CATALOGUE, now=NOW).action == "I"


@pytest.mark.parametrize(
    ("written", "nearest"),
    [("亿", "亿元 (CNY_100M)"), ("千美元", "万美元 (USD_10K)"), ("人次", "人 (PERSON)")],
)
def test_an_unknown_unit_suggests_the_nearest_as_clerks_write_them(
    written: str, nearest: str
) -> None:
    row = _feed_row("济宁高新区", "进出口额", UNIT_MEASURE=written)
    with pytest.raises(RejectedInput) as info:
        validate_observation(row, CATALOGUE, now=NOW)
    assert info.value.reason == "unit_mismatch"
    assert info.value.detail.startswith(f"UNIT_MEASURE {written!r} is not a known unit")
    assert nearest in info.value.detail.split("; nearest: ")[1]


@pytest.mark.parametrize(
    ("written", "plan"),
    [
        ("十四五", "14th-fyp"),
        ("“十四五”规划", "14th-fyp"),
        ("十四五时期", "14th-fyp"),
        ("十三五", "13th-fyp"),
        ("14th-fyp", "14th-fyp"),
        ("it-bureau", "it-bureau"),  # a planner's own id stays as written
        ("十四五中期评估", "十四五中期评估"),
    ],
)
def test_a_five_year_plan_by_its_chinese_name(written: str, plan: str) -> None:
    assert plan_id(written) == plan
    assert validate_target({**TARGET_ROW, "plan": written}, CATALOGUE).plan == plan
