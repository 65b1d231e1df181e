"""Prometheus config, alert rules and Alertmanager routing, checked by the real tools.

promtool and amtool come from the Debian packages `make system-deps` installs; a missing tool is a
failure, not a skip. The integration tests start the real Prometheus (scraping a live
``PipelineMetrics`` endpoint) and the real Alertmanager (to see the inhibit rule work).
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from parkpulse.schemas.records import IndicatorStatus
from parkpulse.sinks.metrics import PipelineMetrics
from tests.conftest import exported_metric_names

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULE_FILES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
ALERTMANAGER_CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"

PROMTOOL = "/usr/bin/promtool"
AMTOOL = "/usr/bin/amtool"
PROMETHEUS = "/usr/bin/prometheus"
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"

REQUIRED_ALERTS = {
    "IndicatorBehindPlan": "warning",
    "BindingIndicatorBehindPlan": "critical",
    "ZoneFeedStale": "warning",
    "DeadLettersRising": "warning",
    "ClickHouseSinkFailing": "critical",
    "PipelineStalled": "critical",
}
RECEIVERS = {"critical": "oncall", "warning": "planners"}
WECOM = "planners-wecom"  # every alert about a zone also goes there
BOARD_URL = "http://localhost:6066/zone/{{ $labels.zone }}"
WECHAT_TEMPLATES = ROOT / "deploy" / "alertmanager" / "templates"


def tool(path: str) -> str:
    assert Path(path).exists(), (
        f"{path} missing: run `make system-deps` (Debian prometheus packages)"
    )
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False, timeout=120)


def alert_rules() -> list[dict[str, Any]]:
    rules = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            rules.extend(r for r in group["rules"] if "alert" in r)
    return rules


# -- promtool ---------------------------------------------------------------------------------


def test_prometheus_config_is_valid():
    proc = run(tool(PROMTOOL), "check", "config", str(PROMETHEUS_CONFIG))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_rules_are_valid():
    assert RULE_FILES
    proc = run(tool(PROMTOOL), "check", "rules", *map(str, RULE_FILES))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_rule_unit_tests_pass():
    assert RULE_TESTS
    proc = run(tool(PROMTOOL), "test", "rules", *map(str, RULE_TESTS))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_prometheus_config_loads_the_rules_and_alertmanager():
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    matched = {p for pattern in config["rule_files"] for p in PROMETHEUS_DIR.glob(pattern)}
    assert matched == set(RULE_FILES)
    targets = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert targets == ["alertmanager:9093"]
    assert "parkpulse" in {job["job_name"] for job in config["scrape_configs"]}


# -- what the rules say -----------------------------------------------------------------------


def test_required_alerts_exist_with_their_severity():
    severities: dict[str, set[str]] = {}
    for rule in alert_rules():
        severities.setdefault(rule["alert"], set()).add(rule["labels"]["severity"])
    for name, severity in REQUIRED_ALERTS.items():
        assert severities.get(name) == {severity}, name


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_every_alert_has_for_severity_summary_and_runbook(rule):
    assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
    assert rule["labels"]["severity"] in RECEIVERS
    annotations = rule["annotations"]
    assert annotations["summary"].strip()
    assert re.fullmatch(r"docs/operations\.md#[a-z0-9-]+", annotations["runbook"])
    if "zone" in rule["expr"] or "Indicator" in rule["alert"]:
        assert "$labels.zone" in annotations["summary"]
    if "Indicator" in rule["alert"]:
        assert "$labels.indicator" in annotations["summary"]
        for number in ("actual", "expected", "required_growth_pct"):
            assert f"parkpulse_indicator_{number}" in annotations[number]


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_zone_alerts_lead_to_the_board_and_speak_chinese(rule):
    annotations = rule["annotations"]
    if "zone" not in rule["expr"]:
        assert "board_url" not in annotations and "summary_zh" not in annotations
        return
    assert annotations["board_url"] == BOARD_URL
    assert re.search(r"[\u4e00-\u9fff]", annotations["summary_zh"])
    assert "$labels.zone" in annotations["summary_zh"]
    # Chinese names from what the worker exports (the id without it), and its language.
    for text in (annotations["summary_zh"], annotations["zone_name_zh"]):
        assert "parkpulse_zone_info{zone='%s'}\" $labels.zone" in text and '"name_zh"' in text
    if "indicator" in rule["expr"]:
        assert "parkpulse_indicator_info" in annotations["summary_zh"]
        assert "parkpulse_indicator_info" in annotations["indicator_name_zh"]
    assert "parkpulse_language_info" in annotations["lang"]


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_rules_read_metrics_the_worker_exports(rule):
    expr = re.sub(r'"[^"]*"', '""', rule["expr"])
    used = set(re.findall(r"\bparkpulse_\w+|\bup\b", expr))
    assert used and used <= exported_metric_names(), used - exported_metric_names()


def rule_test_cases() -> dict[str, list[tuple[int, bool]]]:
    """alertname -> [(eval minutes, fires?)] in the order of each promtool test group."""
    cases: dict[str, list[tuple[int, bool]]] = {}
    for path in RULE_TESTS:
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            for case in group.get("alert_rule_test", []):
                minutes = _minutes(case["eval_time"])
                cases.setdefault(case["alertname"], []).append(
                    (minutes, bool(case.get("exp_alerts")))
                )
    return cases


def _minutes(duration: str) -> int:
    value, unit = int(duration[:-1]), duration[-1]
    return {"s": value // 60, "m": value, "h": value * 60}[unit]


@pytest.mark.parametrize("name", sorted({r["alert"] for r in alert_rules()}))
def test_every_alert_is_tested_firing_not_firing_and_resolving(name):
    cases = sorted(rule_test_cases().get(name, []))
    fires = [t for t, firing in cases if firing]
    assert fires, f"{name}: no test where it fires"
    assert any(not firing and t < fires[0] for t, firing in cases), f"{name}: no quiet case"
    assert any(not firing and t > fires[-1] for t, firing in cases), f"{name}: never resolves"


# -- Alertmanager -------------------------------------------------------------------------------


def alertmanager_config() -> dict[str, Any]:
    return yaml.safe_load(ALERTMANAGER_CONFIG.read_text(encoding="utf-8"))


def test_alertmanager_config_is_valid():
    proc = run(tool(AMTOOL), "check-config", str(ALERTMANAGER_CONFIG))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_alertmanager_groups_by_zone_and_inhibits_warnings_under_a_critical():
    config = alertmanager_config()
    assert set(config["route"]["group_by"]) == {"alertname", "zone"}
    (inhibit,) = config["inhibit_rules"]
    assert 'severity="critical"' in inhibit["source_matchers"]
    assert inhibit["target_matchers"] == ['severity="warning"']
    assert set(inhibit["equal"]) == {"zone", "indicator"}
    receivers = {r["name"]: r for r in config["receivers"]}
    for name in RECEIVERS.values():
        (hook,) = receivers[name]["webhook_configs"]
        assert hook["url"].startswith("http")


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: f"{r['alert']}-{r['labels']}")
def test_each_alert_routes_to_its_receiver(rule):
    labels = {"alertname": rule["alert"], **rule["labels"]}
    receivers = RECEIVERS[rule["labels"]["severity"]]
    if "zone" in rule["expr"]:  # the alert carries the zone: WeCom first, then the usual one
        labels["zone"] = "jinan-hitech"
        receivers = f"{WECOM},{receivers}"
    proc = run(
        tool(AMTOOL),
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER_CONFIG}",
        f"--verify.receivers={receivers}",
        *(f"{k}={v}" for k, v in labels.items()),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_wecom_receiver_writes_in_the_workers_language():
    receivers = {r["name"]: r for r in alertmanager_config()["receivers"]}
    (wechat,) = receivers[WECOM]["wechat_configs"]
    assert wechat["message"] == '{{ template "parkpulse.wechat" . }}'
    assert wechat["send_resolved"] is True
    assert alertmanager_config()["templates"] == ["templates/*.tmpl"]


def fired_in_rule_tests(alertname: str, indicator: str) -> dict[str, Any]:
    """The labels and annotations the promtool tests expect of a firing alert."""
    for path in RULE_TESTS:
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            for case in group.get("alert_rule_test", []):
                for alert in case.get("exp_alerts") or []:
                    if case["alertname"] == alertname and (
                        alert["exp_labels"].get("indicator") == indicator
                    ):
                        labels = {"alertname": alertname, **alert["exp_labels"]}
                        return {"labels": labels, "annotations": alert["exp_annotations"]}
    raise AssertionError(f"no firing {alertname} for {indicator} in the rule tests")


# The two alerts of the rendering test (IndicatorBehindPlan firing, ZoneFeedStale resolved) as
# WeCom lines, in each language.
BEHIND_ZH = [
    "【告警】济南高新技术产业开发区：指标 进出口总额 落后于 14th-fyp 规划序时进度（完成度 89.3%）",
    "园区：济南高新技术产业开发区",
    "指标：进出口总额（规划 14th-fyp）",
    "实际 / 序时进度：391.60 / 438.50",
    "剩余月份需增长：31.24%",
    "看板：http://localhost:6066/zone/jinan-hitech",
]
STALE_ZH = [
    "【已恢复】济南高新技术产业开发区：发布截止日已过，仍未收到新的月度数据（已逾期 1h 10m 0s）",
    "园区：济南高新技术产业开发区",
    "看板：http://localhost:6066/zone/jinan-hitech",
]
BEHIND_EN = [
    "[FIRING] jinan-hitech: import_export_total is behind the 14th-fyp plan (attainment 89.3%)",
    "zone: jinan-hitech",
    "indicator: import_export_total (plan 14th-fyp)",
    "actual / expected: 391.60 / 438.50",
    "required growth for the rest of the year: 31.24%",
    "board: http://localhost:6066/zone/jinan-hitech",
]
STALE_EN = [
    "[RESOLVED] jinan-hitech: no new monthly figure by the publication deadline"
    " (overdue by 1h 10m 0s)",
    "zone: jinan-hitech",
    "board: http://localhost:6066/zone/jinan-hitech",
]


@pytest.mark.parametrize(
    ("template", "lines"),
    [
        ("parkpulse.wechat.zh", BEHIND_ZH + STALE_ZH),
        ("parkpulse.wechat.en", BEHIND_EN + STALE_EN),
        # Each alert in its worker's language: the behind alert's `lang` says zh, the stale en.
        ("parkpulse.wechat", BEHIND_ZH + STALE_EN),
    ],
)
def test_the_wecom_message_shows_zone_indicator_numbers_and_board_link(template, lines, tmp_path):
    """The template rendered by amtool on the annotations the rule tests say the rules make."""
    behind = {
        "status": "firing",
        **fired_in_rule_tests("IndicatorBehindPlan", "import_export_total"),
    }
    stale = {"status": "resolved", **fired_in_rule_tests("ZoneFeedStale", None)}
    data = tmp_path / "data.json"
    data.write_text(json.dumps({"receiver": WECOM, "status": "firing", "alerts": [behind, stale]}))
    proc = run(
        tool(AMTOOL),
        "template",
        "render",
        f"--template.glob={WECHAT_TEMPLATES}/*.tmpl",
        f'--template.text={{{{ template "{template}" . }}}}',
        f"--template.data={data}",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines() == lines


def test_unlabelled_alerts_reach_the_planners():
    proc = run(
        tool(AMTOOL),
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER_CONFIG}",
        "--verify.receivers=planners",
        "alertname=Watchdog",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- the real servers -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except OSError as exc:  # not listening yet
            last_error = exc
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what} (last error: {last_error})")


def start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def alertmanager_server(tmp_path) -> Iterator[str]:
    port = free_port()
    proc = start(
        [
            tool(ALERTMANAGER),
            f"--config.file={ALERTMANAGER_CONFIG}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        tmp_path / "alertmanager.log",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: get_json(f"{url}/api/v2/status"), what="alertmanager")
        yield url
    finally:
        stop(proc)


@pytest.mark.integration
def test_a_critical_mutes_the_warning_for_the_same_zone_and_indicator_only(alertmanager_server):
    def alert(name: str, severity: str, **labels: str) -> dict[str, Any]:
        return {"labels": {"alertname": name, "severity": severity, **labels}, "annotations": {}}

    key = {"zone": "jinan-hitech", "indicator": "forest_coverage", "plan": "14th-fyp"}
    alerts = [
        alert("BindingIndicatorBehindPlan", "critical", **key),
        alert("IndicatorBehindPlan", "warning", **key),
        alert("IndicatorBehindPlan", "warning", **{**key, "indicator": "import_export_total"}),
        alert("ZoneFeedStale", "warning", zone="jinan-hitech"),
        alert("ClickHouseSinkFailing", "critical", table="indicator_status"),
        alert("DeadLettersRising", "warning", reason="unit_mismatch"),
    ]
    request = urllib.request.Request(
        f"{alertmanager_server}/api/v2/alerts",
        data=json.dumps(alerts).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(request, timeout=5).close()

    def states() -> dict[tuple[str, str], str] | None:
        got = get_json(f"{alertmanager_server}/api/v2/alerts")
        if len(got) < len(alerts):
            return None
        return {
            (a["labels"]["alertname"], a["labels"].get("indicator", "")): a["status"]["state"]
            for a in got
        }

    def settled() -> dict[tuple[str, str], str] | None:
        s = states()
        return s if s and s[("IndicatorBehindPlan", "forest_coverage")] == "suppressed" else None

    result = wait_for(settled, timeout=20, what="the inhibition")
    assert result == {
        ("BindingIndicatorBehindPlan", "forest_coverage"): "active",
        ("IndicatorBehindPlan", "forest_coverage"): "suppressed",
        ("IndicatorBehindPlan", "import_export_total"): "active",
        ("ZoneFeedStale", ""): "active",
        ("ClickHouseSinkFailing", ""): "active",
        # a critical without zone/indicator must not mute unrelated warnings
        ("DeadLettersRising", ""): "active",
    }


@pytest.fixture
def prometheus_server(tmp_path) -> Iterator[tuple[str, PipelineMetrics]]:
    """Real Prometheus scraping a live PipelineMetrics endpoint every second, with our rules."""
    metrics = PipelineMetrics()
    host, port = metrics.serve("127.0.0.1", 0)
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(p) for p in RULE_FILES]
    config.pop("alerting")
    config["scrape_configs"] = [
        {"job_name": "parkpulse", "static_configs": [{"targets": [f"{host}:{port}"]}]}
    ]
    config_path = tmp_path / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config))
    web_port = free_port()
    proc = start(
        [
            tool(PROMETHEUS),
            f"--config.file={config_path}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{web_port}",
        ],
        tmp_path / "prometheus.log",
    )
    url = f"http://127.0.0.1:{web_port}"
    try:
        wait_for(lambda: get_json(f"{url}/api/v1/status/runtimeinfo"), what="prometheus")
        yield url, metrics
    finally:
        stop(proc)
        metrics.close()


@pytest.mark.integration
def test_rules_match_what_the_exporter_serves(prometheus_server):
    """The alert expressions select the live series (names and labels as actually exposed)."""
    url, metrics = prometheus_server
    metrics.show_statuses(
        [
            IndicatorStatus(
                zone="jinan-hitech",
                indicator="forest_coverage",
                plan="14th-fyp",
                period="2021-06",  # its July figure was due by 20 August 2021: long overdue
                kind="share",
                status="behind",
                attainment=0.94,
                gap_pp=-1.55,
                binding=True,
            )
        ]
    )
    metrics.show_consumer_lag({("parkpulse.observations", 0): 12})  # waiting, nothing consumed

    def pending() -> set[str] | None:
        alerts = get_json(f"{url}/api/v1/alerts")["data"]["alerts"]
        names = {a["labels"]["alertname"] for a in alerts if a["state"] == "pending"}
        want = {"IndicatorBehindPlan", "BindingIndicatorBehindPlan", "ZoneFeedStale"}
        return names if want | {"PipelineStalled"} <= names else None

    names = wait_for(pending, timeout=45, what="alerts to go pending")
    assert "ParkpulseWorkerDown" not in names
    alerts = get_json(f"{url}/api/v1/alerts")["data"]["alerts"]
    binding = next(a for a in alerts if a["labels"]["alertname"] == "BindingIndicatorBehindPlan")
    assert binding["labels"]["zone"] == "jinan-hitech"
    assert binding["annotations"]["summary"] == (
        "jinan-hitech: binding indicator forest_coverage is behind the 14th-fyp plan"
        " (attainment 94%)"
    )
