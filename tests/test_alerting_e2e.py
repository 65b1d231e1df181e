"""End to end: a feed behind plan pages on-call through real Prometheus and Alertmanager.

Real Prometheus 2.42 scrapes the running worker of the session ``stack`` (``parkpulse run``), real
Alertmanager 0.25 routes what Prometheus fires to a webhook receiver in this process. A LEVEL figure
far below a binding target's path must reach the ``oncall`` webhook as BindingIndicatorBehindPlan,
the IndicatorBehindPlan warning for the same zone and indicator must be inhibited, and a corrective
revision must resolve the page (``"status": "resolved"``).

Both configurations are the SHIPPED files (``deploy/prometheus/prometheus.yml`` and its rules,
``deploy/alertmanager/alertmanager.yml``) loaded with PyYAML; only what must differ on this machine
is rewritten:

- Prometheus: the scrape targets (the stack's metrics endpoint, this Prometheus, this
  Alertmanager), the Alertmanager to notify, ``scrape_interval``/``evaluation_interval`` 1s, and
  every rule's ``for:`` shortened from the shipped 5m-1h to 2s (waiting 15 minutes is no test).
  Expressions, labels and annotations stay exactly as shipped; ``rule_files`` keeps its glob.
- Alertmanager: the webhook URLs point at the local receiver (``/oncall``, ``/planners``), the
  WeCom receiver's ``wechat_configs`` become a webhook to ``/planners-wecom`` (the WeCom API is not
  reachable from a test; its message template is rendered by amtool in test_alert_rules.py), and
  ``group_wait``/``group_interval``/``repeat_interval`` are shortened. Routes, ``group_by``,
  ``send_resolved`` and ``inhibit_rules`` stay as shipped.

Only zone ``tianjin-binhai-hitech`` is used: the stack is shared with the other integration tests.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from parkpulse.broker import free_port
from tests.conftest import RunningStack, wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
ALERTMANAGER_CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
PROMETHEUS = "/usr/bin/prometheus"
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"

ZONE = "tianjin-binhai-hitech"
INDICATOR = "hitech_enterprises"
PLAN = "e2e-plan"
RULE_FOR = "2s"
KEEP_FIRING_S = 30  # the shipped keep_firing_for (5m), shortened like `for`

HEADER = (
    "STRUCTURE,STRUCTURE_ID,ACTION,ZONE,INDICATOR,TIME_PERIOD,BASIS,OBS_VALUE,UNIT_MEASURE,"
    "YOY_PCT,OBS_STATUS,REVISION,PUBLISHED_AT"
)
TARGET_HEADER = (
    "plan,zone,indicator,kind,base_year,base_value,target_year,target_value,"
    "annual_growth_pct,binding,unit,source"
)


# -- the webhook receiver -------------------------------------------------------------------------


@dataclass
class Webhook:
    """Every Alertmanager notification POSTed to it, with the path (= receiver) it came on."""

    url: str
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def notifications(self) -> list[tuple[str, dict[str, Any]]]:
        with self.lock:
            return list(self.received)

    def alerts(self, alertname: str, zone: str = ZONE) -> list[tuple[str, str, dict[str, Any]]]:
        """(path, notification status, alert) for every notified alert with this name and zone."""
        return [
            (path, note["status"], alert)
            for path, note in self.notifications()
            for alert in note["alerts"]
            if alert["labels"].get("alertname") == alertname and alert["labels"].get("zone") == zone
        ]


def start_webhook() -> tuple[http.server.ThreadingHTTPServer, Webhook]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    hook = Webhook(f"http://127.0.0.1:{server.server_address[1]}")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with hook.lock:
                hook.received.append((self.path, json.loads(body)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server.RequestHandlerClass = Handler
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, hook


# -- the configurations, from the shipped files ---------------------------------------------------


def prometheus_files(
    directory: Path, metrics: str, web: str, alertmanager: str
) -> tuple[Path, list[dict[str, Any]]]:
    """The shipped prometheus.yml and rules, rewritten for this machine; returns the config path
    and the (rewritten) alert rules."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    (alerting,) = config["alerting"]["alertmanagers"]
    (static,) = alerting["static_configs"]
    static["targets"] = [alertmanager]
    targets = {"parkpulse": metrics, "prometheus": web, "alertmanager": alertmanager}
    for job in config["scrape_configs"]:  # DNS discovery of the workers: this one worker
        job.pop("dns_sd_configs", None)
        job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
    rules: list[dict[str, Any]] = []
    for pattern in config["rule_files"]:  # kept as shipped: relative to the config file
        for path in sorted(PROMETHEUS_DIR.glob(pattern)):
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
            for group in doc["groups"]:
                for rule in group["rules"]:
                    if "alert" in rule:
                        rule["for"] = RULE_FOR
                        if "keep_firing_for" in rule:
                            rule["keep_firing_for"] = f"{KEEP_FIRING_S}s"
                        rules.append(rule)
            out = directory / path.relative_to(PROMETHEUS_DIR)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
    assert rules, "no alert rules matched the shipped rule_files"
    config_path = directory / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return config_path, rules


def alertmanager_file(directory: Path, webhook: str) -> Path:
    """The shipped alertmanager.yml with local webhook URLs and short group timings."""
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text(encoding="utf-8"))
    timings = {"group_wait": "3s", "group_interval": "2s", "repeat_interval": "1h"}

    def shorten(route: dict[str, Any]) -> None:
        for key, value in timings.items():
            if key in route or route is config["route"]:
                route[key] = value
        for child in route.get("routes", []):
            shorten(child)

    shorten(config["route"])
    for receiver in config["receivers"]:
        for wechat in receiver.pop("wechat_configs", []):
            receiver.setdefault("webhook_configs", []).append(
                {"url": "", "send_resolved": wechat["send_resolved"]}
            )
        for hook in receiver["webhook_configs"]:
            hook["url"] = f"{webhook}/{receiver['name']}"
            assert hook["send_resolved"] is True, receiver["name"]
    path = directory / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


# -- the servers ----------------------------------------------------------------------------------


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def answers(url: str) -> Any:
    try:
        return get_json(url)
    except OSError:  # not listening yet
        return None


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class Alerting:
    prometheus: str
    alertmanager: str
    webhook: Webhook
    rules: list[dict[str, Any]]
    logs: list[Path]

    def am_alerts(self) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({"filter": f'zone="{ZONE}"'})
        return get_json(f"{self.alertmanager}/api/v2/alerts?{query}")

    def log_tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in self.logs)


@pytest.fixture(scope="module")
def alerting(stack: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Alerting]:
    """Prometheus scraping the stack's worker, Alertmanager, and the webhook they end up at."""
    for binary in (PROMETHEUS, ALERTMANAGER):
        assert Path(binary).exists(), f"{binary} missing: run `make system-deps`"
    tmp = tmp_path_factory.mktemp("alerting")
    server, webhook = start_webhook()
    prom_port, am_port = free_port(), free_port()
    metrics = urllib.parse.urlsplit(stack.metrics_url).netloc
    config, rules = prometheus_files(
        tmp / "prometheus", metrics, f"127.0.0.1:{prom_port}", f"127.0.0.1:{am_port}"
    )
    am_config = alertmanager_file(tmp, webhook.url)
    logs = [tmp / "alertmanager.log", tmp / "prometheus.log"]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with logs[0].open("wb") as out:
            procs.append(
                subprocess.Popen(
                    [
                        ALERTMANAGER,
                        f"--config.file={am_config}",
                        f"--storage.path={tmp / 'am-data'}",
                        f"--web.listen-address=127.0.0.1:{am_port}",
                        "--cluster.listen-address=",
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
        with logs[1].open("wb") as out:
            procs.append(
                subprocess.Popen(
                    [
                        PROMETHEUS,
                        f"--config.file={config}",
                        f"--storage.tsdb.path={tmp / 'tsdb'}",
                        f"--web.listen-address=127.0.0.1:{prom_port}",
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
        result = Alerting(
            f"http://127.0.0.1:{prom_port}", f"http://127.0.0.1:{am_port}", webhook, rules, logs
        )
        wait_until(lambda: answers(f"{result.alertmanager}/api/v2/status"), timeout=30)
        wait_until(lambda: answers(f"{result.prometheus}/api/v1/status/runtimeinfo"), timeout=30)
        yield result
    finally:
        for proc in reversed(procs):
            stop(proc)
        server.shutdown()
        server.server_close()


# -- the test -------------------------------------------------------------------------------------


def feed_line(period: str, value: str, *, action: str = "I", revision: int = 0) -> str:
    return (
        f"dataflow,PARKPULSE:ZONE_MONTHLY(1.0),{action},{ZONE},{INDICATOR},{period},LEVEL,"
        f"{value},COUNT,,A,{revision},2021-07-15T09:00:00+08:00"
    )


def publish(stack: RunningStack, verb: str, path: Path, header: str, line: str) -> None:
    path.write_text(f"{header}\n{line}\n", encoding="utf-8")
    result = stack.cli(verb, str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_behind_plan_pages_oncall_and_the_correction_resolves_it(
    stack: RunningStack, alerting: Alerting, tmp_path: Path
) -> None:
    prom, hook = alerting.prometheus, alerting.webhook
    try:
        # Prometheus scrapes the worker and knows the test's Alertmanager.
        def scraping() -> bool:
            active = get_json(f"{prom}/api/v1/targets")["data"]["activeTargets"]
            health = {t["labels"]["job"]: t["health"] for t in active}
            return health == {"parkpulse": "up", "prometheus": "up", "alertmanager": "up"}

        wait_until(scraping, timeout=30, every=0.25)
        managers = get_json(f"{prom}/api/v1/alertmanagers")["data"]["activeAlertmanagers"]
        assert [m["url"] for m in managers] == [f"{alerting.alertmanager}/api/v2/alerts"]
        loaded = get_json(f"{prom}/api/v1/rules?type=alert")["data"]["groups"]
        assert sorted(r["name"] for g in loaded for r in g["rules"]) == sorted(
            r["alert"] for r in alerting.rules
        )

        # A binding target (100 in 2020 → 200 in 2025) and a June 2021 figure far below its path.
        publish(
            stack,
            "targets",
            tmp_path / "targets.csv",
            TARGET_HEADER,
            f"{PLAN},{ZONE},{INDICATOR},level,2020,100,2025,200,,true,COUNT,test",
        )
        publish(stack, "produce", tmp_path / "behind.csv", HEADER, feed_line("2021-06", "50"))

        def paged() -> list[tuple[str, str, dict[str, Any]]]:
            alerts = hook.alerts("BindingIndicatorBehindPlan")
            return [a for a in alerts if a[1] == "firing" and a[0] == "/oncall"]

        path, _, alert = wait_until(paged, timeout=60, every=0.25)[0]
        assert path == "/oncall"
        assert alert["status"] == "firing"
        labels = alert["labels"]
        assert {k: labels.get(k) for k in ("zone", "indicator", "plan", "severity")} == {
            "zone": ZONE,
            "indicator": INDICATOR,
            "plan": PLAN,
            "severity": "critical",
        }
        assert labels["stack"] == "parkpulse"
        assert "instance" not in labels  # a key may move between workers: the page must not
        summary = alert["annotations"]["summary"]
        assert summary.startswith(
            f"{ZONE}: binding indicator {INDICATOR} is behind the {PLAN} plan (attainment "
        ), summary
        assert alert["annotations"]["runbook"] == "docs/operations.md#binding-indicator-behind-plan"
        # The planners' WeCom chat gets it too, with the numbers and the link to the zone's page.
        annotations = alert["annotations"]
        assert annotations["board_url"] == f"http://localhost:6066/zone/{ZONE}"
        # In Chinese with the names the worker exports, in the worker's language (zh default).
        assert annotations["summary_zh"].startswith(
            "天津滨海高新技术产业开发区：约束性指标 高新技术企业数 落后于"
        ), annotations["summary_zh"]
        assert annotations["zone_name_zh"] == "天津滨海高新技术产业开发区"
        assert annotations["indicator_name_zh"] == "高新技术企业数"
        assert annotations["lang"] == "zh"
        assert annotations["actual"] == "50.00"
        expected = float(annotations["expected"])
        assert expected == pytest.approx(
            stack.metric("parkpulse_indicator_expected", zone=ZONE, indicator=INDICATOR, plan=PLAN),
            abs=0.005,  # the annotation shows two decimals
        )
        assert expected > 100  # on the path from 100 to 200, far above the 50 reported
        wecom = wait_until(
            lambda: [
                a for a in hook.alerts("BindingIndicatorBehindPlan") if a[0] == "/planners-wecom"
            ],
            timeout=30,
            every=0.25,
        )
        assert wecom[0][2]["annotations"] == annotations

        # The warning for the same zone and indicator fires in Prometheus but is inhibited.
        def suppressed() -> dict[str, Any] | None:
            for a in alerting.am_alerts():
                if (
                    a["labels"]["alertname"] == "IndicatorBehindPlan"
                    and a["labels"].get("indicator") == INDICATOR
                    and a["status"]["state"] == "suppressed"
                ):
                    return a
            return None

        warning = wait_until(suppressed, timeout=30, every=0.25)
        assert warning["labels"]["severity"] == "warning"
        assert warning["labels"]["plan"] == PLAN
        assert warning["annotations"]["summary"].startswith(
            f"{ZONE}: {INDICATOR} is behind the {PLAN} plan (attainment "
        )
        assert warning["annotations"]["runbook"] == "docs/operations.md#indicator-behind-plan"
        assert warning["status"]["inhibitedBy"] == [alert["fingerprint"]]

        # Scoped to the indicator: the zone's stale-feed warning (June's figure is long overdue,
        # no indicator label) is not muted and reaches the planners.
        stale = wait_until(lambda: hook.alerts("ZoneFeedStale"), timeout=30, every=0.25)
        wait_until(lambda: len({p for p, _, _ in hook.alerts("ZoneFeedStale")}) == 2, timeout=30)
        stale = hook.alerts("ZoneFeedStale")
        assert {(p, s) for p, s, _ in stale} == {
            ("/planners", "firing"),
            ("/planners-wecom", "firing"),
        }

        # The worker is killed (-9); its supervisor restarts it. Within seconds the new worker
        # exports exactly what `parkpulse status` shows (nothing changed since), and the page
        # keeps firing: on-call gets no "resolved" while the zone is still behind.
        before = stack.worker_pid()
        assert before is not None
        killed_at = time.monotonic()
        os.kill(before, signal.SIGKILL)
        wait_until(lambda: stack.worker_pid() not in (None, before), timeout=30)
        wait_until(stack.signals_match_status, timeout=30)
        back_after = time.monotonic() - killed_at
        assert back_after < KEEP_FIRING_S, back_after
        time.sleep(max(0.0, KEEP_FIRING_S + 5 - (time.monotonic() - killed_at)))
        assert [a for a in hook.alerts("BindingIndicatorBehindPlan") if a[1] == "resolved"] == []
        firing = get_json(f"{alerting.prometheus}/api/v1/alerts")["data"]["alerts"]
        assert any(
            a["labels"]["alertname"] == "BindingIndicatorBehindPlan"
            and a["labels"]["zone"] == ZONE
            and a["state"] == "firing"
            for a in firing
        )

        # The bureau revises June upwards: the page resolves.
        publish(
            stack,
            "produce",
            tmp_path / "revision.csv",
            HEADER,
            feed_line("2021-06", "300", action="R", revision=1),
        )

        def resolved() -> list[tuple[str, str, dict[str, Any]]]:
            alerts = hook.alerts("BindingIndicatorBehindPlan")
            return [a for a in alerts if a[1] == "resolved" and a[0] == "/oncall"]

        path, _, alert = wait_until(resolved, timeout=60, every=0.25)[0]
        assert path == "/oncall"
        assert alert["status"] == "resolved"
        assert alert["labels"]["zone"] == ZONE and alert["labels"]["plan"] == PLAN
        assert alert["annotations"]["runbook"] == "docs/operations.md#binding-indicator-behind-plan"
        assert (
            stack.metric(
                "parkpulse_indicator_status",
                zone=ZONE,
                indicator=INDICATOR,
                plan=PLAN,
                status="behind",
            )
            == 0
        )

        # The inhibited warning never reached anyone, firing or resolved; the worker never
        # looked down.
        assert hook.alerts("IndicatorBehindPlan") == []
        names = {n["commonLabels"].get("alertname") for _, n in hook.notifications()}
        assert "ParkpulseWorkerDown" not in names
    except BaseException:
        print(alerting.log_tail())
        print(json.dumps(hook.notifications(), indent=1)[-6000:])
        raise
