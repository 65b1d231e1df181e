"""docker-compose.yml and the Dockerfile, checked without a Docker engine.

Every file the stack mounts exists, every dependency is a service, the ports Prometheus scrapes
and Grafana connects to are the ones the services listen on, and the parkpulse commands parse
with the real CLI. ``docker compose config -q`` runs too when the compose plugin is installed.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from parkpulse.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DATASOURCES = ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "parkpulse.yml"
DASHBOARD_PROVIDER = ROOT / "deploy" / "grafana" / "provisioning" / "dashboards" / "parkpulse.yml"
SCHEMA = ROOT / "parkpulse" / "sinks" / "schema.sql"

DEFAULTED = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def with_defaults(text: str) -> str:
    """``${VAR:-default}`` as compose resolves it with VAR unset."""
    return DEFAULTED.sub(lambda m: m.group(2) or "", text)


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host path, container path) of the service's bind mounts (named volumes skipped)."""
    mounts = []
    for volume in service.get("volumes", []):
        source, target = with_defaults(volume).split(":")[:2]
        if source.startswith((".", "/")):
            mounts.append((source, target))
    return mounts


def env(service: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in (service.get("environment") or {}).items()}


def container_port(service: dict[str, Any], port: int) -> bool:
    """Whether the service publishes or (by its config) listens on ``port``."""
    published = {int(p.rsplit(":", 1)[-1]) for p in service.get("ports", [])}
    return port in published or port in {int(p) for p in service.get("expose", [])}


def test_the_stack_has_every_part():
    assert set(services()) >= {
        "kafka",
        "clickhouse",
        "worker",
        "producer",
        "prometheus",
        "alertmanager",
        "grafana",
    }


@pytest.mark.parametrize("name", sorted(services()))
def test_mounted_files_exist(name):
    for source, target in bind_mounts(services()[name]):
        assert (ROOT / source).exists(), f"{name}: {source} (→ {target}) does not exist"


def test_secret_files_exist_and_services_use_declared_secrets():
    declared = compose()["secrets"]
    for name, secret in declared.items():
        assert (ROOT / with_defaults(secret["file"])).is_file(), name
    for name, service in services().items():
        for secret in service.get("secrets", []):
            assert secret in declared, f"{name} uses undeclared secret {secret}"
        for key, value in env(service).items():
            if key.endswith("_FILE") and value.startswith("/run/secrets/"):
                assert value.removeprefix("/run/secrets/") in service["secrets"], (name, key)


@pytest.mark.parametrize("name", sorted(services()))
def test_depends_on_names_services(name):
    depends = services()[name].get("depends_on", [])
    for dependency in depends:
        assert dependency in services(), f"{name} depends on unknown service {dependency}"
        assert dependency != name


def test_dependencies_have_no_cycle():
    graph = {n: set(s.get("depends_on", [])) for n, s in services().items()}
    done: set[str] = set()
    while graph.keys() - done:
        ready = {n for n in graph.keys() - done if graph[n] <= done}
        assert ready, f"dependency cycle among {sorted(graph.keys() - done)}"
        done |= ready


def test_healthy_conditions_point_at_services_with_healthchecks():
    for name, service in services().items():
        depends = service.get("depends_on", {})
        if isinstance(depends, dict):
            for dependency, how in depends.items():
                if how.get("condition") == "service_healthy":
                    assert "healthcheck" in services()[dependency], (name, dependency)


def test_named_volumes_are_declared():
    declared = set(compose().get("volumes", {}))
    for name, service in services().items():
        for volume in service.get("volumes", []):
            source = with_defaults(volume).split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name}: volume {source} is not declared"


# -- the wiring between the parts -----------------------------------------------------------------


def scrape_targets() -> dict[str, list[str]]:
    """``host:port`` per job: static targets, and DNS-discovered service names with their port."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    return {
        job["job_name"]: [t for sc in job.get("static_configs", []) for t in sc["targets"]]
        + [f"{n}:{sd['port']}" for sd in job.get("dns_sd_configs", []) for n in sd["names"]]
        for job in config["scrape_configs"]
    }


def test_every_worker_replica_is_scraped_and_none_needs_a_fixed_host_port():
    """``docker compose up --scale worker=3``: Prometheus discovers each replica by the service's
    DNS name, and no replica claims a single fixed host port (the second would fail to start)."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "parkpulse"]
    assert "static_configs" not in job
    (sd,) = job["dns_sd_configs"]
    assert sd["names"] == ["worker"] and sd["type"] == "A"
    worker = services()["worker"]
    assert "container_name" not in worker
    for port in worker.get("ports", []):
        host_part = str(port).rsplit(":", 1)[0]
        assert "-" in host_part.rsplit(":", 1)[-1], f"fixed host port: {port}"


def test_prometheus_scrapes_the_worker_on_its_metrics_port():
    (target,) = scrape_targets()["parkpulse"]
    host, port = target.split(":")
    worker = services()[host]
    assert env(worker)["PARKPULSE_METRICS_PORT"] == port
    assert env(worker)["PARKPULSE_METRICS_HOST"] == "0.0.0.0"
    assert container_port(worker, int(port))


def test_every_scrape_target_is_a_service_port():
    for job, targets in scrape_targets().items():
        for target in targets:
            host, port = target.split(":")
            if host == "localhost":  # Prometheus scraping itself
                assert job == "prometheus" and container_port(services()["prometheus"], int(port))
                continue
            assert host in services(), f"{job}: {host} is not a service"
            assert container_port(services()[host], int(port)), f"{job}: {target}"


def test_prometheus_mounts_its_config_rules_and_sends_to_alertmanager():
    prom = services()["prometheus"]
    assert ("./deploy/prometheus", "/etc/prometheus") in bind_mounts(prom)
    assert "--config.file=/etc/prometheus/prometheus.yml" in prom["command"]
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    (target,) = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    host, port = target.split(":")
    assert f"--web.listen-address=:{port}" in services()[host]["command"]


def test_alertmanager_mounts_the_config_by_default():
    am = services()["alertmanager"]
    assert ("./deploy/alertmanager/alertmanager.yml", "/etc/alertmanager/alertmanager.yml") in (
        bind_mounts(am)
    )


def test_clickhouse_initialises_from_the_package_schema():
    ch = services()["clickhouse"]
    init = [(s, t) for s, t in bind_mounts(ch) if t.startswith("/docker-entrypoint-initdb.d/")]
    assert init == [
        ("./parkpulse/sinks/schema.sql", "/docker-entrypoint-initdb.d/001-parkpulse-schema.sql")
    ]
    assert (ROOT / init[0][0]).resolve() == SCHEMA
    assert "clickhouse_password" in ch["secrets"]
    assert "/run/secrets/clickhouse_password" in " ".join(ch["entrypoint"])


def test_grafana_installs_the_plugin_and_mounts_provisioning_and_boards():
    grafana = services()["grafana"]
    assert "grafana-clickhouse-datasource" in env(grafana)["GF_INSTALL_PLUGINS"].split(",")
    mounts = dict((t, s) for s, t in bind_mounts(grafana))
    assert mounts["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
    provider = yaml.safe_load(DASHBOARD_PROVIDER.read_text(encoding="utf-8"))["providers"][0]
    assert mounts[provider["options"]["path"]] == "./deploy/grafana/dashboards"
    home = env(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (ROOT / "deploy/grafana/dashboards" / Path(home).name).is_file()


def test_grafana_datasources_point_at_the_services():
    sources = yaml.safe_load(DATASOURCES.read_text(encoding="utf-8"))["datasources"]
    by_type = {ds["type"]: ds for ds in sources}
    ch = by_type["grafana-clickhouse-datasource"]["jsonData"]
    assert ch["host"] in services()
    assert container_port(services()[ch["host"]], ch["port"])
    secret = by_type["grafana-clickhouse-datasource"]["secureJsonData"]["password"]
    assert secret == "$__file{/run/secrets/clickhouse_password}"
    assert "clickhouse_password" in services()["grafana"]["secrets"]
    prom = urlsplit(by_type["prometheus"]["url"])
    assert prom.hostname in services() and container_port(services()[prom.hostname], prom.port)


def kafka_internal_address() -> str:
    advertised = env(services()["kafka"])["KAFKA_ADVERTISED_LISTENERS"].split(",")
    inter = env(services()["kafka"])["KAFKA_INTER_BROKER_LISTENER_NAME"]
    (address,) = [a.split("://")[1] for a in advertised if a.startswith(inter + "://")]
    return address


def test_worker_command_parses_with_the_cli_and_keeps_the_password_out():
    worker = services()["worker"]
    args = build_parser().parse_args(worker["command"])
    assert args.verb == "worker"
    assert args.broker == f"kafka://{kafka_internal_address()}"
    url = urlsplit(args.clickhouse)
    assert url.password is None, "the ClickHouse password must come from the secret"
    assert url.hostname in services() and container_port(services()[url.hostname], url.port)
    assert url.path == "/parkpulse"
    assert env(worker)["PARKPULSE_CLICKHOUSE_PASSWORD_FILE"] == "/run/secrets/clickhouse_password"


def test_producer_commands_parse_with_the_cli():
    producer = services()["producer"]
    script = producer["command"][0]
    calls = re.findall(r"\bparkpulse ([^;&|}]+)", script)
    verbs = []
    for call in calls:
        args = build_parser().parse_args(shlex.split(call))
        verbs.append(args.verb)
        assert args.broker == f"kafka://{kafka_internal_address()}"
        for path in args.files:
            assert str(path).startswith("/app/"), path
    assert verbs == ["targets", "produce"]
    assert "write_demo_feed" in script


def test_dockerfile_runs_parkpulse_and_exposes_the_worker_ports():
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert 'ENTRYPOINT ["parkpulse"]' in text
    exposed = {int(p) for line in re.findall(r"^EXPOSE (.+)$", text, re.M) for p in line.split()}
    worker = env(services()["worker"])
    assert {int(worker["PARKPULSE_METRICS_PORT"]), int(worker["PARKPULSE_API_PORT"])} <= exposed
    copied = re.findall(r"^COPY (?!--from)(?:--\S+ )*(\S+) ", text, re.M)
    for source in copied:
        assert (ROOT / source).exists(), source
    assert "USER parkpulse" in text


def compose_command() -> list[str]:
    """`docker compose` if the plugin exists, else Debian's docker-compose (make test installs)."""
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    assert legacy, (
        "neither `docker compose` nor docker-compose is installed (make test installs it)"
    )
    return [legacy]


def test_compose_config_is_valid_for_docker_compose():
    """The compose tool's own validation (it needs no engine for `config`)."""
    proc = subprocess.run(
        [*compose_command(), "-f", str(COMPOSE_FILE), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
