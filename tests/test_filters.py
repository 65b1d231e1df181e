"""CLI filters by name: ids for names, one clear line and a non-zero exit for no match."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from parkpulse import cli
from parkpulse.filters import resolve_filters, unmatched
from parkpulse.schemas.catalogue import load_catalogue

CATALOGUE = load_catalogue()
ROW = {
    "zone": "jinan-hitech",
    "indicator": "gdp",
    "plan": "14th-fyp",
    "period": "2021-06",
    "kind": "growth",
    "status": "behind",
}


def test_names_become_ids_and_the_plan_stays() -> None:
    given = {"zone": "济南高新技术产业开发区", "indicator": "外贸进出口总额", "plan": "14th-fyp"}
    assert resolve_filters(given, CATALOGUE) == {
        "zone": "jinan-hitech",
        "indicator": "import_export_total",
        "plan": "14th-fyp",
    }


def test_unknown_values_are_kept_and_explained() -> None:
    params = resolve_filters({"zone": "济南高薪区", "indicator": None}, CATALOGUE)
    assert params["zone"] == "济南高薪区"
    problem = unmatched(params, CATALOGUE)
    assert problem is not None and "nearest: jinan-hitech" in str(problem)
    assert unmatched({"zone": "jinan-hitech", "indicator": "gdp"}, CATALOGUE) is None


def _run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, answer: Any, *argv: str) -> list[dict]:
    asked: list[dict] = []

    def fake_query(settings: Any, path: str, params: dict, method: str) -> Any:
        asked.append(params)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(cli, "query", fake_query)
    code = cli.main(["status", "--data-dir", str(tmp_path), *argv])
    asked.append({"exit": code})
    return asked


def test_status_by_chinese_name_asks_for_the_id(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    asked = _run(monkeypatch, tmp_path, [ROW], "--zone", "济南高新区", "--format", "json")
    assert asked[0]["zone"] == "jinan-hitech" and asked[-1] == {"exit": 0}
    assert '"jinan-hitech"' in capsys.readouterr().out


def test_a_refused_name_is_one_line_with_the_nearest(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    refused = cli.QueryRefused("invalid zone: must match ^[A-Za-z0-9]…")
    asked = _run(monkeypatch, tmp_path, refused, "--zone", "济南高薪技术产业开发区")
    assert asked[-1] == {"exit": 1}
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("parkpulse: --zone '济南高薪技术产业开发区' is not a known zone;")
    assert "jinan-hitech" in err


@pytest.mark.parametrize("value", ["a b", "R&D", "x&zone=jinan-hitech"])
def test_odd_values_fail_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    value: str,
) -> None:
    asked = _run(monkeypatch, tmp_path, cli.QueryRefused("invalid zone"), "--zone", value)
    assert asked[-1] == {"exit": 1}
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"parkpulse: --zone {value!r} is not")


def test_an_id_like_unknown_zone_with_no_rows_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    asked = _run(monkeypatch, tmp_path, [], "--zone", "jinan-hitek")
    assert asked[0]["zone"] == "jinan-hitek" and asked[-1] == {"exit": 1}
    assert "nearest: jinan-hitech" in capsys.readouterr().err


def test_an_id_like_zone_the_stack_holds_is_shown(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A zone of a --reference-dir this command was not given: the stack knows it."""
    row = {**ROW, "zone": "sim-001-hitech"}
    asked = _run(monkeypatch, tmp_path, [row], "--zone", "sim-001-hitech", "--format", "json")
    assert asked[-1] == {"exit": 0}


def test_a_known_zone_without_rows_is_an_empty_answer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    asked = _run(monkeypatch, tmp_path, [], "--zone", "烟台高新区", "--format", "json")
    assert asked[-1] == {"exit": 0}


def _ask(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, answer: Any, *argv: str
) -> tuple[list[tuple[str, dict]], int]:
    """Run a CLI verb against a fake stack: what it asked (path, params) and its exit code."""
    asked: list[tuple[str, dict]] = []

    def fake_query(settings: Any, path: str, params: dict, method: Any) -> Any:
        asked.append((path, params))
        return answer

    monkeypatch.setattr(cli, "query", fake_query)
    code = cli.main([argv[0], "--data-dir", str(tmp_path), *argv[1:]])
    return asked, code


def test_suspect_by_chinese_name_asks_for_the_id(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    asked, code = _ask(monkeypatch, tmp_path, [], "suspect", "--zone", "烟台高新区")
    assert asked == [("/api/suspect", {"zone": "yantai-hitech"})] and code == 0


def test_suspect_with_an_unknown_name_is_one_line_with_the_nearest(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, code = _ask(monkeypatch, tmp_path, [], "suspect", "--zone", "烟台高薪区")
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("parkpulse: --zone '烟台高薪区' is not a known zone; nearest: yantai")


def test_explain_by_chinese_names_asks_for_the_ids(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    asked, code = _ask(monkeypatch, tmp_path, None, "explain", "济南高新区", "外贸进出口总额")
    assert asked == [
        (
            "/api/explain",
            {"zone": "jinan-hitech", "indicator": "import_export_total", "plan": None,
             "period": None},
        )
    ]  # fmt: skip
    asked, _ = _ask(monkeypatch, tmp_path, None, "explain", "济南高新区", "进出口总额", "十四五")
    assert asked[0][1]["plan"] == "14th-fyp"
    assert code == 1  # the fake stack holds no row


@pytest.mark.parametrize(
    ("zone", "indicator", "said"),
    [
        (
            "济南高薪区",
            "进出口总额",
            "unknown zone: '济南高薪区' is not a known zone; nearest: jinan-hitech",
        ),
        (
            "济南高新区",
            "进出口总量",
            "unknown indicator: '进出口总量' is not in the indicator catalogue; nearest:"
            " import_export_total",
        ),
    ],
)
def test_explain_with_an_unknown_name_is_one_line_with_the_nearest(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    zone: str,
    indicator: str,
    said: str,
) -> None:
    asked, code = _ask(monkeypatch, tmp_path, None, "explain", zone, indicator)
    err = capsys.readouterr().err
    assert asked == [] and code == 1
    assert err.count("\n") == 1 and err.startswith(f"parkpulse explain: {said}")


def test_report_by_chinese_name_asks_for_the_id(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ("report", "--month", "2021-06", "--zone", "烟台高新区")
    asked, code = _ask(monkeypatch, tmp_path, [], *argv)
    assert asked == [("/api/status/history", {"zone": "yantai-hitech"})]
    assert code == 1 and "yantai-hitech" in capsys.readouterr().err  # no rows on the fake stack
    _, code = _ask(
        monkeypatch, tmp_path, [], "report", "--month", "2021-06", "--zone", "烟台高薪区"
    )
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("parkpulse: --zone '烟台高薪区' is not a known zone;")


def test_status_plan_by_its_chinese_name(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    asked = _run(monkeypatch, tmp_path, [ROW], "--plan", "十四五", "--format", "json")
    assert asked[0]["plan"] == "14th-fyp" and asked[-1] == {"exit": 0}
