"""Nobody in who should not be: secrets, TLS/SASL pass-through, loopback binds, SQL, API input.

- Credentials come from the environment or ``*_FILE`` secret files and never show in logs,
  stdout, run.json, the report, the API, the metrics or a command line (``parkpulse run`` with a
  ClickHouse password that is refused at first, so error paths are exercised too).
- Kafka SASL/TLS and ClickHouse TLS options reach aiokafka, Faust and clickhouse-connect.
- The API, the metrics endpoint and the embedded broker listen on 127.0.0.1 unless told otherwise.
- Every SQL statement in parkpulse/ passes values as parameters (an AST scan of f-strings).
- The API answers 400 to identifiers it will not look up.
"""

from __future__ import annotations

import ast
import re
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from parkpulse.config import KafkaSecurity, Settings, parse_clickhouse_url
from parkpulse.procfs import children, cmdline
from parkpulse.streams.app import faust_options
from parkpulse.topics import client_options
from tests.conftest import PARKPULSE, RunningStack, wait_until
from tests.fault_support import (
    INDICATORS,
    ZONES,
    clean_env,
    listening,
    publish,
    start_parkpulse,
    write_backfill,
)

PACKAGE = Path(__file__).resolve().parents[1] / "parkpulse"


# -- credentials ------------------------------------------------------------------------


def test_secrets_come_from_the_environment_or_secret_files(tmp_path: Path) -> None:
    url_file = tmp_path / "clickhouse_url"
    url_file.write_text("https://reader:from-url@ch.internal:8443/metrics\n")
    ch_pw = tmp_path / "clickhouse_password"
    ch_pw.write_text("from-file\n")
    kafka_pw = tmp_path / "kafka_password"
    kafka_pw.write_text("kafka-from-file\n")
    settings = Settings.from_env(
        {
            "PARKPULSE_CLICKHOUSE_URL_FILE": str(url_file),
            "PARKPULSE_CLICKHOUSE_PASSWORD_FILE": str(ch_pw),
            "PARKPULSE_KAFKA_SASL_PASSWORD_FILE": str(kafka_pw),
            "PARKPULSE_KAFKA_SASL_USERNAME": "svc",
        }
    )
    target = settings.clickhouse
    assert (target.host, target.port, target.username) == ("ch.internal", 8443, "reader")
    assert target.password == "from-file"  # the password variable wins over the URL's
    assert target.secure and target.database == "metrics"
    assert settings.kafka_security.sasl_password == "kafka-from-file"
    # The variable itself wins over its _FILE.
    direct = Settings.from_env(
        {"PARKPULSE_CLICKHOUSE_PASSWORD": "direct", "PARKPULSE_CLICKHOUSE_PASSWORD_FILE": "/nope"}
    )
    assert direct.clickhouse_password == "direct"


def test_secrets_stay_out_of_reprs_and_displays() -> None:
    settings = Settings(
        clickhouse_url="https://u:url-secret@h:8443/db",
        clickhouse_password="pw-secret",
        kafka_security=KafkaSecurity("SASL_SSL", "PLAIN", "u", "sasl-secret"),
    )
    shown = repr(settings) + repr(settings.clickhouse) + settings.clickhouse.display
    for secret in ("url-secret", "pw-secret", "sasl-secret"):
        assert secret not in shown
    assert settings.clickhouse.display == "https://u@h:8443/db"


def test_run_hands_its_settings_to_its_worker_through_the_environment() -> None:
    """``parkpulse run`` starts its worker with ``to_env()``: secrets in the environment (only
    the same user can read it), none on the command line; nothing lost on the way."""
    settings = Settings(
        data_dir=Path("/srv/parkpulse"),
        broker="kafka://127.0.0.1:9092",
        clickhouse_url="https://u:url-secret@h:8443/db",
        clickhouse_password="pw-secret",
        clickhouse_verify=False,
        kafka_security=KafkaSecurity("SASL_SSL", "SCRAM-SHA-256", "u", "sasl-secret", "/ca"),
        api_port=7000,
        partitions=8,
    )
    assert Settings.from_env(settings.to_env()) == settings


def test_a_database_name_is_a_name() -> None:
    with pytest.raises(ValueError, match="plain name"):
        parse_clickhouse_url("http://h:8123/x;DROP TABLE y")
    with pytest.raises(ValueError, match="http"):
        parse_clickhouse_url("file:///etc/passwd")


# -- TLS and SASL pass-through ----------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A self-signed certificate and key (openssl), usable as CA, server and client."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return {"cert": str(cert), "key": str(key)}


def test_kafka_sasl_and_tls_reach_aiokafka_and_faust(tls_files: dict[str, str]) -> None:
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    settings = Settings(
        broker="kafka://k1:9093,k2:9093",
        kafka_security=KafkaSecurity(
            protocol="SASL_SSL",
            sasl_mechanism="SCRAM-SHA-512",
            sasl_username="parkpulse",
            sasl_password="s3cret",
            ssl_cafile=tls_files["cert"],
            ssl_certfile=tls_files["cert"],
            ssl_keyfile=tls_files["key"],
        ),
    )
    options = client_options(settings)  # what produce/targets and the admin client use
    assert options["bootstrap_servers"] == ["k1:9093", "k2:9093"]
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == (
        "parkpulse",
        "s3cret",
    )
    assert options["ssl_context"].verify_mode.name == "CERT_REQUIRED"
    # What the Faust worker hands aiokafka, through Faust's own translation.
    auth = credentials_to_aiokafka_auth(faust_options(settings)["broker_credentials"])
    assert auth["security_protocol"] == "SASL_SSL"
    assert auth["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (auth["sasl_plain_username"], auth["sasl_plain_password"]) == ("parkpulse", "s3cret")
    assert auth["ssl_context"] is not None

    plain_sasl = Settings(kafka_security=KafkaSecurity("SASL_PLAINTEXT", "PLAIN", "u", "p"))
    auth = credentials_to_aiokafka_auth(faust_options(plain_sasl)["broker_credentials"])
    assert auth["security_protocol"] == "SASL_PLAINTEXT" and auth["ssl_context"] is None

    tls_only = Settings(kafka_security=KafkaSecurity("SSL", ssl_cafile=tls_files["cert"]))
    auth = credentials_to_aiokafka_auth(faust_options(tls_only)["broker_credentials"])
    assert auth["security_protocol"] == "SSL" and auth["ssl_context"] is not None
    assert "broker_credentials" not in faust_options(Settings())  # PLAINTEXT by default


@pytest.mark.parametrize(
    "security",
    [
        KafkaSecurity("PLAINTEXT", sasl_mechanism="PLAIN"),  # credentials sent in the clear
        KafkaSecurity("SASL_SSL"),  # SASL without a mechanism: never authenticates
        KafkaSecurity("TLS"),
    ],
)
def test_kafka_security_that_cannot_work_is_refused(security: KafkaSecurity) -> None:
    with pytest.raises(ValueError):
        client_options(Settings(kafka_security=security))


def test_clickhouse_tls_options_reach_the_client(
    tls_files: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import inspect

    import clickhouse_connect
    from clickhouse_connect.driver.httpclient import HttpClient

    from parkpulse.sinks.clickhouse import ClickHouseStore
    from parkpulse.sinks.connection import ClickHouseUnavailable

    settings = Settings.from_env(
        {
            "PARKPULSE_CLICKHOUSE_URL": "https://writer:pw@ch.internal:8443/parkpulse",
            "PARKPULSE_CLICKHOUSE_CA_CERT": tls_files["cert"],
            "PARKPULSE_CLICKHOUSE_CLIENT_CERT": tls_files["cert"],
            "PARKPULSE_CLICKHOUSE_CLIENT_KEY": tls_files["key"],
            "PARKPULSE_CLICKHOUSE_VERIFY": "true",
        }
    )
    seen: dict[str, Any] = {}

    def fake_get_client(**kwargs: Any) -> Any:
        seen.update(kwargs)
        raise ConnectionRefusedError("no server in this test")

    monkeypatch.setattr(clickhouse_connect, "get_client", fake_get_client)
    store = ClickHouseStore.open(settings.clickhouse)  # lazy: nothing happens yet
    assert seen == {}
    with pytest.raises(ClickHouseUnavailable) as failure:
        store.run(store.connect)
    store.close()
    assert "pw" not in str(failure.value).replace("no server", "")
    assert seen["secure"] is True and seen["verify"] is True
    assert seen["ca_cert"] == tls_files["cert"]
    assert seen["client_cert"] == tls_files["cert"]
    assert seen["client_cert_key"] == tls_files["key"]
    assert (seen["username"], seen["password"]) == ("writer", "pw")
    # Every option is one the driver knows (get_client's own, or its HTTP client's).
    accepted = set(inspect.signature(HttpClient.__init__).parameters) | {"secure", "host"}
    assert set(seen) <= accepted


# -- loopback by default ----------------------------------------------------------------


def test_defaults_bind_to_loopback() -> None:
    settings = Settings.from_env({})
    assert settings.api_host == "127.0.0.1" and settings.metrics_host == "127.0.0.1"
    options = faust_options(settings)
    assert options["web_bind"] == "127.0.0.1" and options["web_host"] == "127.0.0.1"
    opened = Settings.from_env({"PARKPULSE_API_HOST": "0.0.0.0", "PARKPULSE_METRICS_HOST": "::"})
    assert faust_options(opened)["web_bind"] == "0.0.0.0" and opened.metrics_host == "::"


@pytest.mark.integration
def test_the_running_stack_listens_on_loopback_only(stack: RunningStack) -> None:
    for port in (stack.api_port, stack.metrics_port, stack.broker_port):
        assert listening(port) == {"127.0.0.1"}, port


# -- SQL is parameterized ---------------------------------------------------------------

SQL = re.compile(
    r"\b(SELECT|INSERT\s+INTO|ALTER\s+TABLE|CREATE\s+TABLE|DROP\s+|DELETE\s+FROM|TRUNCATE|"
    r"OPTIMIZE\s+TABLE|WHERE|FROM)\b"
)


def _constant_loop_names(tree: ast.AST) -> set[str]:
    """Names bound by ``for name in ("a", "b")``: values from the code, not from input."""
    names = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.For)
            and isinstance(node.target, ast.Name)
            and isinstance(node.iter, ast.Tuple | ast.List)
            and all(isinstance(e, ast.Constant) for e in node.iter.elts)
        ):
            names.add(node.target.id)
    return names


def _safe(expr: ast.expr, loop_names: set[str]) -> bool:
    """True when ``expr`` can only be an identifier written in the code."""
    if isinstance(expr, ast.Name):
        return expr.id.isupper() or expr.id in loop_names  # module constants, constant loops
    if isinstance(expr, ast.Constant):
        return True
    if isinstance(expr, ast.Attribute):  # self.database: config, validated as a plain name
        return ast.unparse(expr) == "self.database"
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute):
        owner, method = expr.func.value, expr.func.attr
        if method == "join" and isinstance(owner, ast.Constant):  # ", ".join(COLUMNS)
            return all(_safe(a, loop_names) for a in expr.args)
        if method == "_table" and ast.unparse(owner) == "self":  # self._table("name")
            return all(isinstance(a, ast.Constant) for a in expr.args)
    return False


def unsafe_sql(source: str, filename: str = "<string>") -> list[str]:
    """Places where SQL text is built from values that are not code constants."""
    tree = ast.parse(source, filename)
    loop_names = _constant_loop_names(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
            if SQL.search(text):
                for part in node.values:
                    if isinstance(part, ast.FormattedValue) and not _safe(part.value, loop_names):
                        found.append(f"{filename}:{node.lineno}: {{{ast.unparse(part.value)}}}")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
            sides = (node.left, node.right)
            if any(isinstance(s, ast.Constant) and SQL.search(str(s.value)) for s in sides):
                for side in sides:
                    if not isinstance(side, ast.Constant | ast.BinOp) and not _safe(
                        side, loop_names
                    ):
                        found.append(f"{filename}:{node.lineno}: {ast.unparse(side)}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "format"
            and isinstance(node.func.value, ast.Constant)
            and SQL.search(str(node.func.value.value))
        ):
            found.append(f"{filename}:{node.lineno}: str.format on SQL")
    return found


def test_the_scan_catches_interpolated_values() -> None:
    bad = (
        "def f(zone, n):\n"
        "    q(f\"SELECT * FROM t WHERE zone = '{zone}'\")\n"
        "    q('SELECT * FROM t WHERE id = %s' % n)\n"
        "    q('DELETE FROM t WHERE z = {}'.format(zone))\n"
        "    q('SELECT a FROM t WHERE z = ' + zone)\n"
    )
    assert len(unsafe_sql(bad)) == 4
    good = (
        "COLUMNS = ('a', 'b')\n"
        "def f(self):\n"
        "    q(f\"SELECT {', '.join(COLUMNS)} FROM {{db}}.t WHERE z = {{zone:String}}\")\n"
        "    for table in ('x', 'y'):\n"
        "        q(f'SELECT count() FROM {{db}}.{table}')\n"
        "    q(f\"SELECT 1 FROM {self._table('registrations')}\")\n"
    )
    assert unsafe_sql(good) == []


def test_every_sql_statement_in_parkpulse_is_parameterized() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        found += unsafe_sql(path.read_text(encoding="utf-8"), str(path.relative_to(PACKAGE)))
    assert found == [], "SQL built from values (pass them as {name:Type} parameters):\n" + (
        "\n".join(found)
    )


# -- the API validates what it is asked -------------------------------------------------


def get(stack: RunningStack, path: str) -> tuple[int, Any]:
    import orjson

    try:
        with urllib.request.urlopen(stack.api + path, timeout=30) as resp:
            return int(resp.status), orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), orjson.loads(exc.read() or b"null")


@pytest.mark.integration
@pytest.mark.parametrize(
    "path",
    [
        "/api/status?zone=x%27%20OR%20%271%27%3D%271",
        "/api/status?zone=" + "a" * 65,
        "/api/status?indicator=..%2F..%2Fetc%2Fpasswd",
        "/api/status?plan=14th%20fyp",
        "/api/status?zone=%00",
        "/api/status/history?zone=%E5%8D%97%E5%AE%81",
        "/api/deadletter?limit=abc",
        "/api/deadletter?limit=1e9",
        "/api/deadletter?limit=-5",
        "/api/deadletter?reason=DROP%20TABLE",
    ],
)
def test_the_api_answers_400_to_what_it_will_not_look_up(stack: RunningStack, path: str) -> None:
    status, body = get(stack, path)
    assert status == 400 and "error" in body, (path, status, body)


@pytest.mark.integration
def test_the_api_answers_well_formed_questions(stack: RunningStack) -> None:
    assert get(stack, "/api/status?zone=no-such-zone") == (200, [])
    status, page = get(stack, "/api/deadletter?limit=1")
    assert status == 200 and len(page["rows"]) == min(1, page["total"])


# -- nothing leaks ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def secret_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """``parkpulse run`` given a ClickHouse password (in the URL, in the environment) and a Kafka
    SASL password (in a secret file); ClickHouse refuses connections for the first seconds."""
    from parkpulse.broker import free_port
    from tests.chdb_http_shim import ClickHouseShim

    root = tmp_path_factory.mktemp("secrets")
    ch_secret, kafka_secret = f"ch-{uuid.uuid4().hex}", f"kafka-{uuid.uuid4().hex}"
    (root / "kafka_password").write_text(kafka_secret + "\n")
    shim = ClickHouseShim(free_port(), root / "clickhouse-server")
    env = clean_env(
        PARKPULSE_CLICKHOUSE_URL=shim.url(ch_secret),
        PARKPULSE_KAFKA_SASL_USERNAME="parkpulse",  # no mechanism: PLAINTEXT to Tansu
        PARKPULSE_KAFKA_SASL_PASSWORD_FILE=str(root / "kafka_password"),
    )
    run = start_parkpulse("run", root / "data", "--no-demo", "--no-scoreboard", env=env)
    try:
        seen: dict[str, str] = {}
        family = [cmdline(run.proc.pid), *children(run.proc.pid).values()]
        seen["cmdlines"] = "\n".join(family)
        seen["run.json"] = (run.data_dir / "run.json").read_text()
        log = run.data_dir / "stderr.log"
        wait_until(lambda: "sink_retry" in log.read_text(), timeout=30)  # refused, logged
        shim.start()
        feed = write_backfill(root / "feed", ZONES[:1], INDICATORS[:2], range(2023, 2025))
        publish(run.broker, run.data_dir, feed.targets, verb="targets")
        result = subprocess.run(  # the CLI, finding the stack through run.json
            [PARKPULSE, "produce", str(feed.feed)],
            env=clean_env(PARKPULSE_DATA_DIR=str(run.data_dir)),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        seen["produce output"] = result.stdout + result.stderr
        wait_until(lambda: len(run.get_json("/api/status")) > 2, timeout=60)
        for path in ("/api/status", "/api/status/history", "/api/scorecard", "/api/deadletter"):
            with urllib.request.urlopen(run.api + path, timeout=30) as resp:
                seen[path] = resp.read().decode()
        with urllib.request.urlopen(run.metrics_url, timeout=10) as resp:
            seen["metrics"] = resp.read().decode()
        assert run.stop() == 0
        seen["stdout"] = "".join(run.lines)
        for name in ("stderr.log", "tansu.log", "report.html"):
            seen[name] = (run.data_dir / name).read_text(errors="replace")
        yield {"seen": seen, "secrets": (ch_secret, kafka_secret), "shim": shim}
    finally:
        run.stop()
        shim.stop()


@pytest.mark.integration
def test_no_secret_in_logs_run_json_report_api_metrics_or_command_lines(
    secret_run: dict[str, Any],
) -> None:
    seen, secrets = secret_run["seen"], secret_run["secrets"]
    assert "sink_retry" in seen["stderr.log"]  # the refused connections were logged …
    assert "127.0.0.1" in seen["run.json"] and "clickhouse" in seen["run.json"]
    for where, text in seen.items():
        for secret in secrets:
            assert secret not in text, f"secret leaked into {where}"
    # … and where ClickHouse is named, it is named without the password.
    assert re.search(r"http://default@127\.0\.0\.1:\d+/parkpulse", seen["stdout"])
