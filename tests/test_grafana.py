"""Grafana provisioning and dashboards as code: every query on every board actually runs.

ClickHouse panel and variable queries are rendered the way Grafana and the ClickHouse plugin would
render them (template variables resolved by running the variable queries in order, plugin macros
expanded as in grafana/clickhouse-datasource ``pkg/macros``) and executed against an embedded chdb
loaded with ``parkpulse/sinks/schema.sql`` and a few realistic rows. PromQL expressions are checked
by ``promtool check rules`` and against the metric names ``PipelineMetrics`` exports.

chdb allows one data path per process, and other test modules open their own: the chdb here runs
in a child process so that no test module can lock out another. Every query runs twice: on the
hand-made sample rows (``dashboard_chdb``, whose exact results are checked) and on the demo data
that ``parkpulse run`` wrote (``demo_chdb``, from the session's ``demo_run``).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from parkpulse.board.pages import rank_zones
from parkpulse.schemas.records import STATUSES
from parkpulse.vocabulary import STATUS_LABELS, UNIT_LABELS
from tests.conftest import exported_metric_names

ROOT = Path(__file__).resolve().parents[1]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
SCHEMA = ROOT / "parkpulse" / "sinks" / "schema.sql"
PROMTOOL = "/usr/bin/promtool"
CLICKHOUSE_TYPE = "grafana-clickhouse-datasource"
PROMETHEUS_TYPE = "prometheus"

# The dashboard time range the macros expand with (seconds, as the plugin does).
TIME_FROM = datetime(2020, 1, 1, tzinfo=UTC)
TIME_TO = datetime(2026, 12, 31, tzinfo=UTC)
INTERVAL_S = 3600
# Which option a single-value variable takes (Grafana's default is the first one).
PREFERRED = {"zone": "jinan-hitech", "indicator": "import_export_total", "plan": "14th-fyp"}
# Grafana's built-in PromQL interval variables and the values used to check expressions.
PROMQL_BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}

# Rows every board query must find (see the file for the worked numbers).
SAMPLE_ROWS = GRAFANA / "tests" / "sample_rows.sql"


# A child process that owns the chdb data path and answers one JSON request per line.
RUNNER = r"""
import json, sys
import clickhouse_connect
client = clickhouse_connect.get_client(interface="chdb", path=sys.argv[1])
for line in sys.stdin:
    request = json.loads(line)
    try:
        if request.get("command"):
            client.command(request["sql"])
            reply = {"ok": True}
        else:
            result = client.query(request["sql"])
            reply = {
                "ok": True,
                "columns": list(result.column_names),
                "types": [t.name for t in result.column_types],
                "rows": [[str(v) for v in row] for row in result.result_rows[:1000]],
            }
    except Exception as exc:
        reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
"""


class ChdbError(AssertionError):
    pass


@dataclass
class QueryResult:
    columns: list[str]
    types: list[str]
    rows: list[list[str]]


class ChdbProcess:
    """clickhouse-connect's chdb interface, in a child process that holds the data path."""

    def __init__(self, path: Path) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-c", RUNNER, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )

    def _call(self, sql: str, command: bool) -> dict[str, Any]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps({"sql": sql, "command": command}) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise ChdbError(f"chdb runner exited with {self._proc.wait()}")
        reply = json.loads(line)
        if not reply["ok"]:
            raise ChdbError(f"{reply['error']}\n--- query ---\n{sql}")
        return reply

    def command(self, sql: str) -> None:
        self._call(sql, command=True)

    def query(self, sql: str) -> QueryResult:
        reply = self._call(sql, command=False)
        return QueryResult(reply["columns"], reply["types"], reply["rows"])

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def sql_statements(text: str) -> list[str]:
    """Statements of a SQL script: ``--`` comment lines dropped, split on ``;``."""
    lines = [ln for ln in text.splitlines() if not ln.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


@pytest.fixture(scope="session")
def dashboard_chdb(tmp_path_factory) -> Iterator[ChdbProcess]:
    """chdb with the parkpulse schema and the hand-made sample rows."""
    chdb = ChdbProcess(tmp_path_factory.mktemp("grafana-chdb"))
    try:
        for statement in sql_statements(SCHEMA.read_text(encoding="utf-8")):
            chdb.command(statement)
        for statement in sql_statements(SAMPLE_ROWS.read_text(encoding="utf-8")):
            chdb.command(statement)
        yield chdb
    finally:
        chdb.close()


@pytest.fixture(scope="module")
def demo_chdb(demo_run) -> Iterator[ChdbProcess]:
    """The embedded ClickHouse that `parkpulse run` filled with the demo feed (now stopped),
    held for this module only: `parkpulse report` on the same data path (test_brief_report)
    needs it free, whichever order the two modules run in."""
    chdb = ChdbProcess(demo_run.data_dir / "clickhouse")
    try:
        yield chdb
    finally:
        chdb.close()


# -- loading the boards -------------------------------------------------------------------


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def all_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # collapsed rows


def panel_datasource(panel: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
    return target.get("datasource") or panel.get("datasource") or {}


def provisioned_datasources() -> dict[str, dict[str, Any]]:
    docs = [
        yaml.safe_load(p.read_text(encoding="utf-8"))
        for p in sorted((GRAFANA / "provisioning" / "datasources").glob("*.y*ml"))
    ]
    return {ds["uid"]: ds for doc in docs for ds in doc["datasources"]}


@dataclass(frozen=True)
class BoardQuery:
    board: str
    panel: str
    ref: str
    kind: str  # "clickhouse" | "prometheus"
    query_type: str  # "table" | "timeSeries" | "variable"
    text: str

    @property
    def id(self) -> str:
        return f"{self.board}:{self.panel}:{self.ref}"


def board_queries(path: Path) -> list[BoardQuery]:
    board = load(path)
    name = path.stem
    out = []
    for var in board.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        ds_type = var["datasource"]["type"]
        query = var["query"]
        text = query if isinstance(query, str) else query.get("query") or query.get("rawSql")
        kind = "clickhouse" if ds_type == CLICKHOUSE_TYPE else "prometheus"
        out.append(BoardQuery(name, f"${var['name']}", "var", kind, "variable", text))
    for panel in all_panels(board):
        for target in panel.get("targets", []):
            ds_type = panel_datasource(panel, target).get("type")
            if ds_type == CLICKHOUSE_TYPE:
                text = target["rawSql"]
                qtype = target.get("queryType", "table")
                out.append(
                    BoardQuery(name, panel["title"], target["refId"], "clickhouse", qtype, text)
                )
            elif ds_type == PROMETHEUS_TYPE:
                text = target["expr"]
                out.append(
                    BoardQuery(name, panel["title"], target["refId"], "prometheus", "", text)
                )
    return out


ALL_QUERIES = [q for path in DASHBOARDS for q in board_queries(path)]
CLICKHOUSE_QUERIES = [q for q in ALL_QUERIES if q.kind == "clickhouse"]
PROMQL_QUERIES = [q for q in ALL_QUERIES if q.kind == "prometheus"]


# -- rendering as Grafana and the ClickHouse plugin do ------------------------------------------

VAR_PATTERN = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(\w+)|\[\[(\w+)\]\]")


def sql_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def interpolate(text: str, values: dict[str, list[str]], multi: set[str]) -> str:
    """Grafana's template-variable substitution (the formats the boards use)."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3) or match.group(4)
        fmt = match.group(2)
        if name.startswith("__"):
            return match.group(0)  # a macro or a built-in: not ours
        if name not in values:
            raise AssertionError(f"unknown template variable ${name} in:\n{text}")
        vals = values[name]
        if fmt == "singlequote":
            return ",".join(sql_quote(v) for v in vals)
        if fmt == "csv":
            return ",".join(vals)
        if fmt == "regex":
            return "(" + "|".join(re.escape(v) for v in vals) + ")"
        if fmt is not None:
            raise AssertionError(f"format :{fmt} not handled by this test")
        if name in multi:
            raise AssertionError(
                f"multi-value ${name} needs a format like ${{{name}:singlequote}} in:\n{text}"
            )
        return vals[0]

    return VAR_PATTERN.sub(replace, text)


def macro_args(text: str, start: int) -> tuple[list[str], int]:
    """Comma-separated arguments of the call whose ``(`` is at ``start``; returns the end too."""
    depth, args, current = 0, [], []
    for i in range(start, len(text)):
        ch = text[i]
        if ch == "(":
            depth += 1
            if depth == 1:
                continue
        elif ch == ")":
            depth -= 1
            if depth == 0:
                args.append("".join(current).strip())
                return args, i + 1
        elif ch == "," and depth == 1:
            args.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    raise AssertionError(f"unbalanced macro call in:\n{text}")


def expand_macros(text: str) -> str:
    """The plugin's macros (grafana/clickhouse-datasource pkg/macros/macros.go)."""
    start, end = int(TIME_FROM.timestamp()), int(TIME_TO.timestamp())
    from_date, to_date = TIME_FROM.strftime("%Y-%m-%d"), TIME_TO.strftime("%Y-%m-%d")
    with_args = {
        "timeFilter": lambda c: f"{c} >= toDateTime({start}) AND {c} <= toDateTime({end})",
        "timeFilter_ms": lambda c: (
            f"{c} >= fromUnixTimestamp64Milli({start * 1000})"
            f" AND {c} <= fromUnixTimestamp64Milli({end * 1000})"
        ),
        "dateFilter": lambda c: f"{c} >= toDate('{from_date}') AND {c} <= toDate('{to_date}')",
        "timeInterval": lambda c: (
            f"toStartOfInterval(toDateTime({c}), INTERVAL {INTERVAL_S} second)"
        ),
    }
    plain = {
        "fromTime": f"toDateTime({start})",
        "toTime": f"toDateTime({end})",
        "fromTime_ms": f"fromUnixTimestamp64Milli({start * 1000})",
        "toTime_ms": f"fromUnixTimestamp64Milli({end * 1000})",
        "interval_s": str(INTERVAL_S),
    }
    pattern = re.compile(r"\$__(\w+)")
    while (match := pattern.search(text)) is not None:
        name = match.group(1)
        if name in with_args:
            args, stop = macro_args(text, match.end())
            assert len(args) == 1, f"$__{name} takes one argument"
            text = text[: match.start()] + with_args[name](args[0]) + text[stop:]
        elif name in plain:
            stop = match.end()
            if text[stop : stop + 2] == "()":
                stop += 2
            text = text[: match.start()] + plain[name] + text[stop:]
        else:
            raise AssertionError(f"macro $__{name} is not one the ClickHouse plugin knows")
    return text


def render_sql(text: str, values: dict[str, list[str]], multi: set[str]) -> str:
    rendered = expand_macros(interpolate(text, values, multi))
    assert "$" not in rendered, f"unrendered variable left in:\n{rendered}"
    return rendered


def resolve_variables(chdb: ChdbProcess, board: dict[str, Any]) -> tuple[dict, set]:
    """Run each ClickHouse query variable in order, as Grafana does on load; multi-value
    variables with "All" take every option, single ones the preferred option or the first."""
    values: dict[str, list[str]] = {}
    multi: set[str] = set()
    for var in board.get("templating", {}).get("list", []):
        if var.get("type") != "query" or var["datasource"]["type"] != CLICKHOUSE_TYPE:
            continue
        result = chdb.query(render_sql(var["query"], values, multi))
        options = [row[0] for row in result.rows]
        name = var["name"]
        assert options, f"variable ${name} has no options"
        if var.get("multi") or var.get("includeAll"):
            multi.add(name)
            values[name] = options
        else:
            preferred = PREFERRED.get(name)
            values[name] = [preferred if preferred in options else options[0]]
    return values, multi


@pytest.fixture(scope="session")
def board_variables(dashboard_chdb) -> dict[str, tuple[dict, set]]:
    return {path.stem: resolve_variables(dashboard_chdb, load(path)) for path in DASHBOARDS}


@pytest.fixture(scope="module")
def demo_variables(demo_chdb) -> dict[str, tuple[dict, set]]:
    return {path.stem: resolve_variables(demo_chdb, load(path)) for path in DASHBOARDS}


# -- provisioning ---------------------------------------------------------------------------------


def test_there_are_three_boards():
    assert {p.stem for p in DASHBOARDS} == {"zone-scoreboard", "indicator-trend", "pipeline-health"}


def test_datasources_are_provisioned_for_clickhouse_and_prometheus():
    sources = provisioned_datasources()
    by_type = {ds["type"]: ds for ds in sources.values()}
    ch = by_type[CLICKHOUSE_TYPE]
    assert ch["jsonData"]["protocol"] in ("native", "http")
    assert ch["jsonData"]["host"] and ch["jsonData"]["port"]
    assert ch["jsonData"]["defaultDatabase"] == "parkpulse"
    # the password comes from a file (docker secret), never from the repository
    assert ch["secureJsonData"]["password"].startswith("$__file{")
    assert by_type[PROMETHEUS_TYPE]["url"].startswith("http://")


def test_dashboard_provider_points_at_the_mounted_dashboards():
    doc = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "parkpulse.yml").read_text(encoding="utf-8")
    )
    (provider,) = doc["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/etc/grafana/dashboards"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_board_is_well_formed(path):
    board = load(path)
    sources = provisioned_datasources()
    assert board["uid"].startswith("parkpulse-") and board["title"]
    ids = [p["id"] for p in all_panels(board)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in all_panels(board):
        if panel["type"] == "row":
            continue
        assert panel.get("title") and panel.get("gridPos"), panel
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            ds = panel_datasource(panel, target)
            assert ds.get("uid") in sources, f"{panel['title']!r}: unknown datasource {ds}"
            assert sources[ds["uid"]]["type"] == ds["type"]
    for var in board.get("templating", {}).get("list", []):
        if "datasource" in var:
            assert var["datasource"]["uid"] in sources


def test_board_uids_are_unique():
    uids = [load(p)["uid"] for p in DASHBOARDS]
    assert len(uids) == len(set(uids))


def test_scoreboard_links_to_the_trend_board():
    links = json.dumps(load(GRAFANA / "dashboards" / "zone-scoreboard.json"))
    trend = load(GRAFANA / "dashboards" / "indicator-trend.json")
    assert f"/d/{trend['uid']}?" in links
    for name in ("zone", "indicator", "plan"):
        assert f"var-{name}=" in links
        assert name in {v["name"] for v in trend["templating"]["list"]}


# -- ClickHouse queries ---------------------------------------------------------------------------


def test_boards_have_clickhouse_and_promql_queries():
    assert len(CLICKHOUSE_QUERIES) >= 10 and len(PROMQL_QUERIES) >= 8


@pytest.mark.parametrize("query", CLICKHOUSE_QUERIES, ids=lambda q: q.id)
def test_clickhouse_query_runs(query, dashboard_chdb, board_variables):
    values, multi = board_variables[query.board]
    result = dashboard_chdb.query(render_sql(query.text, values, multi))
    assert result.rows, f"{query.id} returned nothing from the sample rows"
    if query.query_type == "timeSeries":
        # the plugin's time-series format needs a DateTime column
        assert any(t.startswith("DateTime") for t in result.types), result.types


@pytest.mark.integration
@pytest.mark.parametrize("query", CLICKHOUSE_QUERIES, ids=lambda q: q.id)
def test_clickhouse_query_runs_on_the_demo_data(query, demo_chdb, demo_variables):
    """Every panel query against what `parkpulse run` wrote from the demo feed."""
    values, multi = demo_variables[query.board]
    result = demo_chdb.query(render_sql(query.text, values, multi))
    assert result.rows, f"{query.id} returned nothing from the demo data"


def test_scoreboard_shows_the_latest_current_row_per_key(dashboard_chdb, board_variables):
    """FINAL + LIMIT 1 BY: the superseded June evaluation and the tombstone stay hidden."""
    (query,) = [q for q in CLICKHOUSE_QUERIES if q.panel == "Latest status per indicator and plan"]
    values, multi = board_variables["zone-scoreboard"]
    result = dashboard_chdb.query(render_sql(query.text, values, multi))
    rows = [dict(zip(result.columns, row, strict=True)) for row in result.rows]
    keys = [(r["zone"], r["indicator"], r["plan"]) for r in rows]
    assert len(keys) == len(set(keys)) == 6
    assert ("jinan-hitech", "budget_revenue", "14th-fyp") not in keys
    imports = next(r for r in rows if r["indicator"] == "import_export_total")
    assert (imports["month"], imports["status"], imports["name"]) == (
        "2021-06",
        "behind",
        "进出口总额",
    )
    # worst first: the binding forest_coverage leads the behind rows
    assert [r["status"] for r in rows][:2] == ["behind", "behind"]
    assert rows[0]["indicator"] == "forest_coverage"


def test_trend_board_plots_actual_against_the_plan_path(dashboard_chdb, board_variables):
    (query,) = [q for q in CLICKHOUSE_QUERIES if q.panel == "Actual vs plan path"]
    values, multi = board_variables["indicator-trend"]
    assert values == {k: [v] for k, v in PREFERRED.items()}
    result = dashboard_chdb.query(render_sql(query.text, values, multi))
    assert result.columns == ["time", "actual", "plan_path", "annual_target"]
    assert [row[1:3] for row in result.rows] == [["180.2", "184.0"], ["391.6", "438.3"]]
    # months start at 00:00 Beijing time (the driver may hand back naive UTC)
    first = datetime.fromisoformat(result.rows[0][0])
    first = first if first.tzinfo else first.replace(tzinfo=UTC)
    assert first == datetime.fromisoformat("2021-03-01T00:00:00+08:00")


def test_rendering_matches_the_plugin():
    values, multi = {"zone": ["jinan-hitech", "xian-hitech"], "plan": ["14th-fyp"]}, {"zone"}
    text = "WHERE zone IN (${zone:singlequote}) AND plan = '$plan' AND $__timeFilter(toDate(t))"
    assert render_sql(text, values, multi) == (
        "WHERE zone IN ('jinan-hitech','xian-hitech') AND plan = '14th-fyp' AND "
        f"toDate(t) >= toDateTime({int(TIME_FROM.timestamp())}) AND "
        f"toDate(t) <= toDateTime({int(TIME_TO.timestamp())})"
    )
    with pytest.raises(AssertionError, match="needs a format"):
        render_sql("zone = '${zone}'", values, multi)
    with pytest.raises(AssertionError, match="not one the ClickHouse plugin knows"):
        render_sql("$__timeGroup(t, 1h)", values, multi)


# -- PromQL ---------------------------------------------------------------------------------------


def prometheus_variables(board: dict[str, Any]) -> dict[str, list[str]]:
    values = {}
    for var in board.get("templating", {}).get("list", []):
        if var["datasource"]["type"] == PROMETHEUS_TYPE:
            values[var["name"]] = [var.get("allValue") or ".*"]
    return values


def render_promql(query: BoardQuery) -> str:
    board = load(GRAFANA / "dashboards" / f"{query.board}.json")
    values = {**prometheus_variables(board), **{k: [v] for k, v in PROMQL_BUILTINS.items()}}
    text = query.text
    if query.query_type == "variable":
        match = re.fullmatch(r"label_values\((.*),\s*\w+\)", text.strip())
        assert match, f"unsupported variable query {text}"
        text = match.group(1)
    for name, vals in sorted(values.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(f"${{{name}}}", vals[0]).replace(f"${name}", vals[0])
    assert "$" not in text, f"unrendered variable in {text}"
    return text


def grafana_metric_names() -> set[str]:
    """What PromQL on the boards may read: the worker's series and Prometheus' own."""
    return exported_metric_names() | {"ALERTS", "ALERTS_FOR_STATE"}


def test_every_promql_expression_is_valid(tmp_path):
    assert Path(PROMTOOL).exists(), "promtool missing: run `make system-deps`"
    rules = [
        {"record": f"grafana_panel_check_{i}", "expr": render_promql(q)}
        for i, q in enumerate(PROMQL_QUERIES)
    ]
    rule_file = tmp_path / "grafana.rules.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "grafana", "rules": rules}]}))
    proc = subprocess.run(
        [PROMTOOL, "check", "rules", str(rule_file)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("query", PROMQL_QUERIES, ids=lambda q: q.id)
def test_promql_reads_metrics_that_exist(query):
    known = grafana_metric_names()
    text = re.sub(r'"[^"]*"', '""', render_promql(query))  # label values are not metric names
    used = set(re.findall(r"\bparkpulse_\w+|\bup\b|\bALERTS\b", text))
    assert used, f"no metric found in {query.text}"
    assert used <= known, f"unknown metrics {used - known} in {query.id}"


def test_sample_rows_are_the_documented_shape():
    """The sample rows insert into every table the boards read (guards against schema drift)."""
    tables = set(re.findall(r"INSERT INTO parkpulse\.(\w+)", SAMPLE_ROWS.read_text("utf-8")))
    read = {t for q in CLICKHOUSE_QUERIES for t in re.findall(r"parkpulse\.(\w+)", q.text)}
    assert read <= tables, f"boards read tables without sample rows: {read - tables}"


# -- the planners' vocabulary and the zone ranking ------------------------------------------------


def overrides_by_name(panel: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {
        o["matcher"]["options"]: o["properties"]
        for o in panel.get("fieldConfig", {}).get("overrides", [])
        if o["matcher"]["id"] == "byName"
    }


@pytest.mark.parametrize("query", CLICKHOUSE_QUERIES, ids=lambda q: q.id)
def test_status_words_are_the_vocabulary(query, dashboard_chdb, board_variables):
    """A status column shows 已完成 正常 预警 落后 无数据 不评估 (parkpulse/vocabulary.py); a
    column named after a status code is titled with its word; a unit column shows 亿元, 万人…"""
    if query.query_type == "variable":
        return
    board = load(GRAFANA / "dashboards" / f"{query.board}.json")
    (panel,) = [p for p in all_panels(board) if p.get("title") == query.panel]
    values, multi = board_variables[query.board]
    columns = dashboard_chdb.query(render_sql(query.text, values, multi)).columns
    named = overrides_by_name(panel)
    if "status" in columns:
        (mapping,) = [p["value"] for p in named["status"] if p["id"] == "mappings"]
        (options,) = [m["options"] for m in mapping if m["type"] == "value"]
        assert {code: o["text"] for code, o in options.items()} == STATUS_LABELS["zh"]
    for code in set(columns) & set(STATUSES):
        titles = [p["value"] for p in named.get(code, []) if p["id"] == "displayName"]
        assert titles == [STATUS_LABELS["zh"][code]], (query.id, code)
    if "unit" in columns:  # units in Chinese, as everywhere a planner reads them
        (mapping,) = [p["value"] for p in named.get("unit", []) if p["id"] == "mappings"]
        (options,) = [m["options"] for m in mapping if m["type"] == "value"]
        assert {code: o["text"] for code, o in options.items()} == UNIT_LABELS["zh"], query.id


def ranking(chdb: ChdbProcess, variables: dict[str, tuple[dict, set]]) -> list[dict[str, str]]:
    (query,) = [q for q in CLICKHOUSE_QUERIES if q.panel == "Zone ranking"]
    values, multi = variables["zone-scoreboard"]
    result = chdb.query(render_sql(query.text, values, multi))
    return [dict(zip(result.columns, row, strict=True)) for row in result.rows]


def test_zone_ranking_puts_the_zone_with_more_on_track_first(dashboard_chdb, board_variables):
    """Jining: on track + achieved of 2 evaluated; Jinan: behind, at risk, behind (pm25 is not
    evaluated, the budget_revenue tombstone is gone)."""
    rows = ranking(dashboard_chdb, board_variables)
    assert [(r["rank"], r["zone"], r["evaluated"]) for r in rows] == [
        ("1", "jining-hitech", "2"),
        ("2", "jinan-hitech", "3"),
    ]
    assert [float(r["share_on_track"]) for r in rows] == [1.0, 0.0]
    assert rows[0]["name"] == "济宁高新技术产业开发区"


@pytest.mark.integration
def test_zone_ranking_on_the_demo_data_is_the_boards(demo_run, demo_chdb, demo_variables):
    """The Grafana ranking and the planners' board (parkpulse/board/pages.py) agree."""
    rows = ranking(demo_chdb, demo_variables)
    board = rank_zones(demo_run.statuses)
    assert [r["zone"] for r in rows] == [z.zone for z in board]
    for row, zone in zip(rows, board, strict=True):
        if zone.share_on_track is None:
            assert row["share_on_track"] == "None"
        else:
            assert float(row["share_on_track"]) == pytest.approx(zone.share_on_track)


def _counted_statuses(panel: dict[str, Any]) -> set[str]:
    """The status codes a panel's queries count (SQL `status = 'x'` / `IN (…)`, PromQL
    `status="x"`)."""
    found: set[str] = set()
    for target in panel.get("targets", []):
        query = target.get("rawSql") or target.get("expr") or ""
        for clause in re.findall(r"status\s*(?:=|IN)\s*(\([^)]*\)|'[a-z_]+'|\"[a-z_]+\")", query):
            found |= set(re.findall(r"[a-z_]+", clause)) & set(STATUSES)
    return found


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_status_counts_are_titled_with_the_vocabulary(path):
    """A single number counting statuses is titled with their words (落后, 预警, 已完成 + 正常)."""
    counted = 0
    for panel in all_panels(load(path)):
        if panel.get("type") != "stat" or not (codes := _counted_statuses(panel)):
            continue
        counted += 1
        for code in codes:
            assert STATUS_LABELS["zh"][code] in panel["title"], (panel["title"], code)
    assert counted or path.stem == "indicator-trend"
