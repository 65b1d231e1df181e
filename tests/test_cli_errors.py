"""Every CLI error is one clear line and a non-zero exit: usage errors, a --plan no stored target
has (with the nearest), ``suspect --zone`` and ``explain`` by name or with the nearest id.

The unit part fakes the stack's answers (``cli.query``); the integration part asks the session
``stack`` (Tansu + Faust worker + chdb) as a user would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from parkpulse import cli
from tests.conftest import RunningStack

ROW = {"zone": "jinan-hitech", "indicator": "gdp", "plan": "14th-fyp", "status": "behind"}
SUSPECT = {"zone": "jinan-hitech", "indicator": "gdp", "period": "2021-06", "reason": "jump"}


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if not line.startswith("{")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["status", "--format", "yaml"], "parkpulse status: argument --format: invalid choice"),
        (["deadletter", "--limit", "0"], "parkpulse deadletter: argument --limit: must be 1.."),
        (["nosuchverb"], "parkpulse: argument verb: invalid choice: 'nosuchverb'"),
        ([], "parkpulse: the following arguments are required: verb"),
        (["explain", "jinan-hitech"], "parkpulse explain: the following arguments are required"),
    ],
)
def test_a_usage_error_is_one_line_and_exit_2(
    argv: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith(words) and line.endswith("--help)"), line


def fake(monkeypatch: pytest.MonkeyPatch, answers: dict[str, Any]) -> list[tuple[str, dict]]:
    asked: list[tuple[str, dict]] = []

    def query(settings: Any, path: str, params: dict, method: Any) -> Any:
        asked.append((path, dict(params)))
        return answers[path](params) if callable(answers[path]) else answers[path]

    monkeypatch.setattr(cli, "query", query)
    return asked


def test_a_plan_no_stored_target_has_fails_with_the_nearest(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake(
        monkeypatch, {"/api/status": lambda p: [ROW] if p.get("plan") in (None, "14th-fyp") else []}
    )
    code = cli.main(["status", "--data-dir", str(tmp_path), "--plan", "14th-fypp"])
    assert code == 1
    line = one_line(capsys.readouterr().err)
    assert (
        line
        == "parkpulse: --plan '14th-fypp' is not a plan of any stored target; nearest: 14th-fyp"
    )
    # A stored plan with nothing for the other filters is an empty answer, not an error.
    fake(monkeypatch, {"/api/status": lambda p: [] if p.get("zone") else [ROW]})
    assert cli.main(["status", "--data-dir", str(tmp_path), "--plan", "14th-fyp",
                     "--zone", "烟台高新区", "--format", "json"]) == 0  # fmt: skip


def test_suspect_takes_a_zone_name_and_refuses_an_unknown_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    asked = fake(
        monkeypatch, {"/api/suspect": lambda p: [SUSPECT] if p["zone"] == "jinan-hitech" else []}
    )
    assert (
        cli.main(
            ["suspect", "--data-dir", str(tmp_path), "--zone", "济南高新区", "--format", "json"]
        )
        == 0
    )
    assert asked[-1] == ("/api/suspect", {"zone": "jinan-hitech"})
    capsys.readouterr()
    assert cli.main(["suspect", "--data-dir", str(tmp_path), "--zone", "jinan-hitek"]) == 1
    line = one_line(capsys.readouterr().err)
    assert line.startswith(
        "parkpulse: --zone 'jinan-hitek' is not a known zone; nearest: jinan-hitech"
    )


def test_explain_takes_names_and_suggests_the_nearest_id(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    asked = fake(monkeypatch, {"/api/explain": None})
    cli.main(["explain", "--data-dir", str(tmp_path), "济南高新区", "地区生产总值"])
    assert asked[-1][1]["zone"] == "jinan-hitech" and asked[-1][1]["indicator"] == "gdp"
    capsys.readouterr()
    assert cli.main(["explain", "--data-dir", str(tmp_path), "jinan-hitek", "gdp"]) == 1
    line = one_line(capsys.readouterr().err)
    assert line.startswith(
        "parkpulse explain: unknown zone: 'jinan-hitek' is not a known zone; nearest: jinan-hitech"
    )
    assert cli.main(["explain", "--data-dir", str(tmp_path), "jinan-hitech", "gdpp"]) == 1
    assert "nearest: gdp" in one_line(capsys.readouterr().err)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["status", "--plan", "no-such-plan-anywhere"], "is not a plan of any stored target"),
        (["suspect", "--zone", "济南高薪区"], "nearest: jinan-hitech"),
        (["suspect", "--zone", "a b&c"], "--zone 'a b&c' is not a known zone"),
        (["explain", "jinan-hitek", "gdp"], "nearest: jinan-hitech"),
        (["status", "--format", "yaml"], "invalid choice: 'yaml'"),
    ],
)
def test_the_stack_answers_each_error_in_one_line(
    stack: RunningStack, argv: list[str], words: str
) -> None:
    done = stack.cli(*argv)
    assert done.returncode != 0 and done.stdout == "", (done.stdout, done.stderr)
    assert words in one_line(done.stderr)
