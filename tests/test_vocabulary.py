"""One vocabulary for people, in zh and en; the wire keeps English codes."""

from __future__ import annotations

import pytest

from parkpulse.config import Settings
from parkpulse.schemas.catalogue import UNITS, load_catalogue
from parkpulse.schemas.records import STATUSES, TARGET_KINDS
from parkpulse.scoreboard import select_status, status_json, status_table
from parkpulse.vocabulary import (
    KIND_LABELS,
    LANGS,
    STATUS_LABELS,
    TEXT,
    UNIT_LABELS,
    indicator_name,
    lang_of,
    status_label,
    zone_name,
)


def test_the_documented_status_words() -> None:
    assert [status_label(s, "zh") for s in STATUSES] == [
        "已完成",
        "正常",
        "预警",
        "落后",
        "无数据",
        "不评估",
    ]


@pytest.mark.parametrize("lang", LANGS)
def test_every_code_has_a_word_in_every_language(lang: str) -> None:
    assert set(STATUS_LABELS[lang]) == set(STATUSES)  # type: ignore[index]
    assert set(UNIT_LABELS[lang]) == set(UNITS)  # type: ignore[index]
    assert set(KIND_LABELS[lang]) == set(TARGET_KINDS)  # type: ignore[index]
    assert set(TEXT[lang]) == set(TEXT["zh"])  # type: ignore[index]


def test_units_in_chinese() -> None:
    assert UNIT_LABELS["zh"]["CNY_100M"] == "亿元"
    assert UNIT_LABELS["zh"]["USD_100M"] == "亿美元"
    assert UNIT_LABELS["zh"]["PERSON_10K"] == "万人"


def test_language_setting() -> None:
    assert Settings.from_env({}).lang == "zh"
    assert Settings.from_env({"PARKPULSE_LANG": "EN"}).lang == "en"
    assert Settings.from_env({"PARKPULSE_LANG": "en"}).to_env()["PARKPULSE_LANG"] == "en"
    with pytest.raises(ValueError, match="PARKPULSE_LANG"):
        lang_of("fr")


def test_names_come_from_the_catalogue() -> None:
    catalogue = load_catalogue()
    assert zone_name("jinan-hitech", catalogue, "zh") == "济南高新技术产业开发区"
    assert indicator_name("budget_revenue", catalogue, "zh") == "一般公共预算收入"
    assert indicator_name("budget_revenue", catalogue, "en") == "General public budget revenue"
    assert zone_name("nowhere", catalogue, "zh") == "nowhere"


ROWS = [
    {"zone": "jinan-hitech", "indicator": "gdp", "plan": "p", "status": "behind",
     "attainment": 0.9, "binding": False},
    {"zone": "jinan-hitech", "indicator": "pm25", "plan": "p", "status": "at_risk",
     "attainment": 0.97, "binding": True},
    {"zone": "jinan-hitech", "indicator": "retail_sales", "plan": "p", "status": "on_track",
     "attainment": 1.2, "binding": True},
    {"zone": "jinan-hitech", "indicator": "rd_intensity", "plan": "p", "status": "behind",
     "attainment": None, "binding": True},
]  # fmt: skip


def test_select_by_status_binding_and_attainment() -> None:
    behind = select_status(ROWS, ["behind", "at_risk"], sort="attainment")
    assert [r["indicator"] for r in behind] == ["gdp", "pm25", "rd_intensity"]
    binding = select_status(ROWS, None, binding=True, sort="attainment")
    assert [r["indicator"] for r in binding] == ["pm25", "retail_sales", "rd_intensity"]
    assert select_status(ROWS) == ROWS


def test_tables_speak_the_language_and_json_keeps_codes() -> None:
    from rich.console import Console

    catalogue = load_catalogue()
    console = Console(width=250, record=True)
    console.print(status_table(ROWS, lang="zh", catalogue=catalogue))
    out = console.export_text()
    assert "落后" in out and "地区生产总值" in out and "济南高新技术产业开发区" in out
    assert "behind" not in out
    console = Console(width=250, record=True)
    console.print(status_table(ROWS, lang="en", catalogue=catalogue))
    assert "behind" in console.export_text() and "落后" not in console.export_text()
    assert {r["status"] for r in status_json(ROWS)} == {"behind", "at_risk", "on_track"}


def test_the_readme_says_attainment_gap_and_required_growth_for_each_target_kind() -> None:
    """README "In plain words, per target kind": every kind the engine evaluates, each with
    attainment, gap and required growth (or why it has none)."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("In plain words, per target kind") :]
    section = section[: section.index("\n\n")]
    items = {
        line[2 : line.index("**", 2)]: line
        for line in ("\n" + section).split("\n- ")[1:]
        if line.startswith("**")
    }
    items = {k: " ".join(v.split()) for k, v in items.items()}
    evaluated = set(TARGET_KINDS) - {"qualitative"}
    assert {k.split(",")[0] for k in items} == evaluated
    for kind, words in items.items():
        assert "*attainment*" in words.lower() and "*gap*" in words.lower(), kind
        assert "*required growth*" in words.lower(), kind
    assert "1.078/1.15 = 93.7 %" in items["growth"] and "−7.2 pp" in items["growth"]
