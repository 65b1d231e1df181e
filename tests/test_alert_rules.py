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


def exported_metric_names() -> set[str]:
    """Every sample name a PipelineMetrics registry exposes, plus Prometheus' own ``up``."""
    m = PipelineMetrics()
    m.show_statuses(
        [
            IndicatorStatus(
                zone="jinan-hitech",
                indicator="gdp",
                plan="14th-fyp",
                period="2021-06",
                kind="growth",
                status="at_risk",
                attainment=0.987,
                gap_pp=-1.4,
            )
        ]
    )
    m.count_events("parkpulse.observations", "in")
    m.count_sink_rows("observations", 1)
    m.count_sink_error("observations")
    m.show_consumer_lag({("parkpulse.observations", 0): 1})
    return {s.name for family in m.registry.collect() for s in family.samples} | {"up"}


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
    labels = {"alertname": rule["alert"], **rule["labels"], "zone": "jinan-hitech"}
    proc = run(
        tool(AMTOOL),
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER_CONFIG}",
        f"--verify.receivers={RECEIVERS[rule['labels']['severity']]}",
        *(f"{k}={v}" for k, v in labels.items()),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


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
