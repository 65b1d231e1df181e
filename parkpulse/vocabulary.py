"""The words people read, in Chinese (default) or English: statuses, units, target kinds, headers.

One place for every label the CLI tables, the board, the reports and the alert texts show. The
wire stays English: JSON keys and status codes are never translated, only what a person reads.

Status vocabulary (README, "The planners' board"): achieved 已完成, on_track 正常, at_risk 预警,
behind 落后, no_data 无数据, not_evaluated 不评估.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from parkpulse.schemas.catalogue import Catalogue

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")
DEFAULT_LANG: Lang = "zh"

STATUS_LABELS: dict[Lang, dict[str, str]] = {
    "zh": {
        "achieved": "已完成",
        "on_track": "正常",
        "at_risk": "预警",
        "behind": "落后",
        "no_data": "无数据",
        "not_evaluated": "不评估",
    },
    "en": {
        "achieved": "achieved",
        "on_track": "on track",
        "at_risk": "at risk",
        "behind": "behind",
        "no_data": "no data",
        "not_evaluated": "not evaluated",
    },
}

# Colours shared by the board, the report and the CLI (rich styles beside them).
STATUS_COLOUR = {
    "achieved": "#1a7f37",
    "on_track": "#2da44e",
    "at_risk": "#bf8700",
    "behind": "#cf222e",
    "no_data": "#8c959f",
    "not_evaluated": "#8c959f",
}

UNIT_LABELS: dict[Lang, dict[str, str]] = {
    "zh": {
        "CNY_100M": "亿元",
        "CNY_10K": "万元",
        "USD_100M": "亿美元",
        "USD_10K": "万美元",
        "COUNT": "个",
        "PCT": "%",
        "PERSON": "人",
        "PERSON_10K": "万人",
        "CNY_10K_PER_MU": "万元/亩",
        "UG_PER_M3": "微克/立方米",
    },
    "en": {
        "CNY_100M": "CNY 100M",
        "CNY_10K": "CNY 10k",
        "USD_100M": "USD 100M",
        "USD_10K": "USD 10k",
        "COUNT": "count",
        "PCT": "%",
        "PERSON": "persons",
        "PERSON_10K": "10k persons",
        "CNY_10K_PER_MU": "CNY 10k/mu",
        "UG_PER_M3": "µg/m³",
    },
}

KIND_LABELS: dict[Lang, dict[str, str]] = {
    "zh": {
        "level": "总量目标",
        "growth": "增速目标",
        "share": "比重目标",
        "cumulative": "累计目标",
        "qualitative": "定性目标",
    },
    "en": {
        "level": "level",
        "growth": "growth",
        "share": "share",
        "cumulative": "cumulative",
        "qualitative": "qualitative",
    },
}

# Column headers and the other words of tables and pages, by a stable key.
TEXT: dict[Lang, dict[str, str]] = {
    "zh": {
        "zone": "园区",
        "indicator": "指标",
        "plan": "规划",
        "period": "期间",
        "status": "状态",
        "attainment": "完成度",
        "actual": "实际",
        "expected": "序时进度",
        "annual_target": "年度目标",
        "gap_pp": "差距(百分点)",
        "required_growth": "剩余月份需增长%",
        "out_of_reach": "年度目标难以实现",
        "binding": "约束性",
        "expected_kind": "预期性",
        "unit": "单位",
        "kind": "目标类型",
        "worst_binding": "最差约束性指标",
        "median_attainment": "完成度中位数",
        "share_on_track": "正常及以上占比",
        "scoreboard": "parkpulse 实时看板",
        "status_title": "parkpulse 指标状态",
        "scorecard_title": "园区汇总",
        "deadletter_title": "拒收记录",
        "suspect_title": "存疑数据",
        "suspect_mark": "存疑",
        "suspect_ytd_fell": "累计值较前期回落",
        "suspect_jump": "较上期突变",
        "value": "数值",
        "previous": "前值",
        "previous_period": "前值期别",
        "received": "收到时间",
        "topic": "主题",
        "origin": "来源",
        "line": "行",
        "reason": "原因",
        "detail": "详情",
        "board_title": "高新区指标看板",
        "overview": "总览",
        "projected_year_end": "年末预计",
        "best_rest_growth": "历年剩余月份最高增长%",
        "this_month": "本月数据",
        "plan_path": "规划路径(序时进度)",
        "no_data_text": "无数据",
        "report_title": "parkpulse 月报",
        "yes": "是",
        "no": "否",
        "seasonal_share": "季节系数",
        "start_of_year_target": "上年目标",
        "required_growth_pct": "剩余月份需增长%",
        "best_rest_growth_pct": "历年剩余月份最高增长%",
        "projected": "年末预计",
        "inputs": "输入",
        "explain_title": "计算过程",
        "step": "项目",
        "formula": "公式",
        "numbers": "代入数值",
        "result": "结果",
        "explain_link": "计算过程",
        "status_growth_note": (
            "增速目标：实际与序时进度为累计同比增速(%)，状态看差距(百分点)；"
            "完成度 = (1 + 实际增速) ÷ (1 + 目标增速)。"
            "每个数的计算过程：parkpulse explain 园区 指标"
        ),
        "gap_note": (
            "完成度 = 实际 ÷ 序时进度（越低越好的指标：序时进度 ÷ 实际）；"
            "差距 = (完成度 − 1) × 100。"
            "增速目标：差距 = 实际增速 − 目标增速（百分点），状态按差距判断；"
            "其完成度 = (1 + 实际增速) ÷ (1 + 目标增速)，"
            "例如 7.8% 对 15% 为 93.7%，差距 −7.2 个百分点。"
        ),
        "no_row": "没有这一行状态",
        # The monthly brief (parkpulse/brief_page.py); {placeholders} are filled by str.format.
        "brief_title": "{month} 月度简报",
        "brief_compared": "与 {previous} 相比",
        "brief_summary": (
            "截至 {month}，评估 {evaluated} 项指标：已完成及正常 {good} 项（{share}），"
            "预警 {at_risk} 项，落后 {behind} 项。与上月相比，新落后或预警 {fell} 项，"
            "恢复正常 {recovered} 项；{reach} 项年度目标难以实现。"
        ),
        "fell_behind": "本月新落后或预警",
        "recovered": "本月恢复正常",
        "improved": "有所好转，仍未达序时进度",
        "still_lagging": "仍未达序时进度",
        "steady": "保持正常",
        "brief_none": "无",
        "brief_moved": "由{previous}转为{status}",
        "brief_stayed": "仍为{status}",
        "brief_new": "本月首次评估为{status}",
        "brief_attainment": "完成度 {value}（{change}个百分点）",
        "brief_attainment_new": "完成度 {value}",
        "brief_gap": "增速 {actual}%，目标 {target}%，差距 {value} 个百分点（{change}）",
        "brief_actual": "实际 {actual}，序时进度 {expected} {unit}",
        "brief_required": "剩余月份需增长 {value}%",
        "brief_reach": "需增长 {required}%，历年剩余月份最高仅 {best}%",
        "previous_status": "上月状态",
        "attainment_change": "完成度变化(百分点)",
        "gap_change": "差距变化(百分点)",
        "brief_of_month": "数据期",
    },
    "en": {
        "zone": "zone",
        "indicator": "indicator",
        "plan": "plan",
        "period": "period",
        "status": "status",
        "attainment": "attainment",
        "actual": "actual",
        "expected": "expected",
        "annual_target": "annual target",
        "gap_pp": "gap pp",
        "required_growth": "needs growth %",
        "out_of_reach": "out of reach",
        "binding": "binding",
        "expected_kind": "indicative",
        "unit": "unit",
        "kind": "target kind",
        "worst_binding": "worst binding",
        "median_attainment": "median attainment",
        "share_on_track": "share on track",
        "scoreboard": "parkpulse scoreboard",
        "status_title": "parkpulse status",
        "scorecard_title": "zone scorecards",
        "deadletter_title": "dead letters",
        "suspect_title": "suspect figures",
        "suspect_mark": "suspect",
        "suspect_ytd_fell": "YTD fell",
        "suspect_jump": "jump",
        "value": "value",
        "previous": "previous",
        "previous_period": "previous period",
        "received": "received",
        "topic": "topic",
        "origin": "origin",
        "line": "line",
        "reason": "reason",
        "detail": "detail",
        "board_title": "high-tech zones against their plans",
        "overview": "overview",
        "projected_year_end": "projected year end",
        "best_rest_growth": "best rest-of-year growth on record %",
        "this_month": "this month",
        "plan_path": "plan path (expected)",
        "no_data_text": "no data",
        "report_title": "parkpulse monthly brief",
        "yes": "yes",
        "no": "no",
        "seasonal_share": "seasonal share",
        "start_of_year_target": "start-of-year target",
        "required_growth_pct": "required growth %",
        "best_rest_growth_pct": "best rest-of-year growth %",
        "projected": "projected year end",
        "inputs": "inputs",
        "explain_title": "how the numbers are made",
        "step": "step",
        "formula": "formula",
        "numbers": "numbers",
        "result": "result",
        "explain_link": "explain",
        "status_growth_note": (
            "Growth targets: actual and expected are YTD year-on-year growth (%), the status "
            "follows the gap (pp); attainment = (1 + actual) ÷ (1 + target). "
            "How each number is made: parkpulse explain ZONE INDICATOR"
        ),
        "gap_note": (
            "attainment = actual ÷ expected (lower is better: expected ÷ actual); "
            "gap = (attainment − 1) × 100. Growth targets: gap = actual growth − target growth "
            "in percentage points, and the status follows the gap; their attainment is "
            "(1 + actual) ÷ (1 + target), e.g. 7.8 % against 15 % is 93.7 %, a gap of −7.2 pp."
        ),
        "no_row": "no such status row",
        "brief_title": "monthly brief {month}",
        "brief_compared": "compared with {previous}",
        "brief_summary": (
            "As of {month}, {evaluated} indicators evaluated: {good} achieved or on track "
            "({share}), {at_risk} at risk, {behind} behind. Since last month {fell} fell behind "
            "or at risk, {recovered} recovered; {reach} year targets are out of reach."
        ),
        "fell_behind": "fell behind this month",
        "recovered": "recovered this month",
        "improved": "improved, still short of the plan path",
        "still_lagging": "still short of the plan path",
        "steady": "on track",
        "brief_none": "none",
        "brief_moved": "{previous} → {status}",
        "brief_stayed": "still {status}",
        "brief_new": "first evaluated as {status}",
        "brief_attainment": "attainment {value} ({change} pp)",
        "brief_attainment_new": "attainment {value}",
        "brief_gap": "growth {actual}% against {target}%, gap {value} pp ({change})",
        "brief_actual": "actual {actual}, expected {expected} {unit}",
        "brief_required": "needs {value}% growth for the rest of the year",
        "brief_reach": "needs {required}% growth, best rest of year on record {best}%",
        "previous_status": "last month",
        "attainment_change": "attainment change pp",
        "gap_change": "gap change pp",
        "brief_of_month": "figure of",
    },
}


def lang_of(value: str | None) -> Lang:
    """``value`` as a language code; None means the default (zh). Raises ValueError otherwise."""
    if value is None or value == "":
        return DEFAULT_LANG
    code = value.strip().lower()
    if code not in LANGS:
        raise ValueError(f"PARKPULSE_LANG must be one of {', '.join(LANGS)}, got {value!r}")
    return code  # type: ignore[return-value]


def status_label(status: str, lang: Lang) -> str:
    """The word for a status code (an unknown code is shown as it is)."""
    return STATUS_LABELS[lang].get(status, status)


def suspect_label(reason: str, lang: Lang) -> str:
    """Why a figure looks implausible (streams/plausibility.REASONS), in words; else as given."""
    return TEXT[lang].get(f"suspect_{reason}", reason)


def unit_label(unit: str, lang: Lang) -> str:
    return UNIT_LABELS[lang].get(unit, unit)


def kind_label(kind: str, lang: Lang) -> str:
    return KIND_LABELS[lang].get(kind, kind)


def text(key: str, lang: Lang) -> str:
    """A header or phrase by key; every key exists in both languages (tests check)."""
    return TEXT[lang][key]


def zone_name(zone: str, catalogue: Catalogue | None, lang: Lang) -> str:
    """The zone's Chinese (zh) or English (en) name from the catalogue, else its id."""
    found = catalogue.zones.get(zone) if catalogue else None
    if found is None:
        return zone
    return found.name_zh if lang == "zh" else found.name_en


def indicator_name(indicator: str, catalogue: Catalogue | None, lang: Lang) -> str:
    """The indicator's name in ``lang`` from the catalogue, else its id."""
    found = catalogue.indicators.get(indicator) if catalogue else None
    if found is None:
        return indicator
    return found.name_zh if lang == "zh" else found.name_en


def indicator_unit(indicator: str, catalogue: Catalogue | None, lang: Lang) -> str:
    found = catalogue.indicators.get(indicator) if catalogue else None
    return unit_label(found.unit, lang) if found else ""


def labels(lang: Lang) -> Mapping[str, Mapping[str, str]]:
    """Every label of ``lang`` (statuses, units, kinds, text): what the API serves as labels."""
    return {
        "status": STATUS_LABELS[lang],
        "unit": UNIT_LABELS[lang],
        "kind": KIND_LABELS[lang],
        "text": TEXT[lang],
    }
