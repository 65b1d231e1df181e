"""Settings: read once from PARKPULSE_* variables and *_FILE secrets, refused a line per bad one.

- ``from_env`` and ``to_env`` are inverses (property), so a child process gets what its parent had.
- A secret comes from its variable or from the file its ``*_FILE`` variable names; the variable
  wins; neither ever shows in a repr or an error line.
- ``parkpulse`` given bad variables prints one line per variable, naming it, and exits 1.
- config.py is the only module of parkpulse that reads the environment.
"""

from __future__ import annotations

import ast
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parkpulse.cli import main
from parkpulse.config import (
    ENV_PREFIX,
    InvalidSettings,
    KafkaSecurity,
    Settings,
    child_environment,
)

PACKAGE = Path(__file__).resolve().parents[1] / "parkpulse"
READERS = {"environ", "environb", "getenv", "getenvb"}
SECRET_VARIABLES = (
    "PARKPULSE_CLICKHOUSE_URL",
    "PARKPULSE_CLICKHOUSE_PASSWORD",
    "PARKPULSE_KAFKA_SASL_PASSWORD",
)

# Text a variable or a secret file can hold as it is: no NUL, no space at either end.
plain_text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), min_size=1, max_size=30
)
secrets = plain_text.map(lambda text: f"s3cret-{text}")  # never a substring of anything else
names = st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True)


@st.composite
def any_settings(draw: st.DrawFn) -> Settings:
    host = draw(names)
    return Settings(
        data_dir=Path(draw(names)),
        broker=draw(st.none() | names.map(lambda h: f"kafka://{h}:9092")),
        clickhouse_url=draw(st.none() | st.just(f"https://u@{host}:8443/{draw(names)}")),
        clickhouse_password=draw(st.none() | secrets),
        clickhouse_verify=draw(st.booleans()),
        kafka_security=KafkaSecurity(
            draw(st.sampled_from(["PLAINTEXT", "SSL", "SASL_SSL"])),
            draw(st.none() | st.sampled_from(["PLAIN", "SCRAM-SHA-256"])),
            draw(st.none() | names),
            draw(st.none() | secrets),
        ),
        api_port=draw(st.integers(0, 65535)),
        partitions=draw(st.integers(1, 256)),
        log_level=draw(st.sampled_from(["DEBUG", "INFO", "WARNING"])),
        reference_dir=draw(st.none() | names.map(Path)),
        broker_epoch=draw(st.none() | names),
        lang=draw(st.sampled_from(["zh", "en"])),
        suspect_jump_factor=draw(
            st.floats(min_value=1, exclude_min=True, allow_nan=False, allow_infinity=True)
        ),
    )


@given(any_settings())
def test_a_child_process_reads_back_what_its_parent_had(given_settings: Settings) -> None:
    variables = given_settings.to_env()
    assert all(name.startswith(ENV_PREFIX) for name in variables)
    assert Settings.from_env(variables) == given_settings


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    values=st.tuples(secrets, secrets, secrets),
    padding=st.sampled_from(["", "\n", "  \r\n"]),
)
def test_every_secret_comes_from_its_file_and_stays_out_of_reprs(
    tmp_path: Path, values: tuple[str, str, str], padding: str
) -> None:
    password, sasl = values[1], values[2]
    url = f"https://reader:{quote(values[0], safe='')}@ch.internal:8443/metrics"
    env = {}
    for variable, value in zip(SECRET_VARIABLES, (url, password, sasl), strict=True):
        path = tmp_path / variable.lower()
        path.write_text(value + padding, encoding="utf-8")
        env[f"{variable}_FILE"] = str(path)
    loaded = Settings.from_env(env)
    assert loaded.clickhouse_url == url
    assert loaded.clickhouse.password == password
    assert loaded.kafka_security.sasl_password == sasl
    shown = repr(loaded) + str(loaded) + repr(loaded.kafka_security) + repr(loaded.clickhouse)
    for secret in values:
        assert secret not in shown


@given(
    scheme=st.sampled_from(["http", "https"]) | plain_text,
    secret=secrets,
    cut=st.sampled_from(["@", "/", "?", "#", "[", ":"]),  # where urllib's parse may go astray
    rest=plain_text,
)
def test_a_bad_clickhouse_url_is_refused_without_echoing_it(
    scheme: str, secret: str, cut: str, rest: str
) -> None:
    url = f"{scheme}://user:{secret}{cut}{rest}@host:8123/db"
    try:
        Settings.from_env({"PARKPULSE_CLICKHOUSE_URL": url})
    except InvalidSettings as refused:
        assert str(refused).startswith("PARKPULSE_CLICKHOUSE_URL: ")
        assert secret not in str(refused)


def test_the_variable_wins_over_its_file_and_an_empty_one_does_not(tmp_path: Path) -> None:
    secret_file = tmp_path / "pw"
    secret_file.write_text("from-file\n", encoding="utf-8")
    variable = "PARKPULSE_CLICKHOUSE_PASSWORD"
    both = {variable: "direct", f"{variable}_FILE": str(secret_file)}
    assert Settings.from_env(both).clickhouse_password == "direct"
    empty = {variable: "", f"{variable}_FILE": str(secret_file)}
    assert Settings.from_env(empty).clickhouse_password == "from-file"
    # Only secrets come from files: a *_FILE for anything else is not read.
    assert Settings.from_env({"PARKPULSE_API_HOST_FILE": str(secret_file)}).api_host == "127.0.0.1"


def test_an_unreadable_secret_file_is_named() -> None:
    with pytest.raises(InvalidSettings) as refused:
        Settings.from_env({"PARKPULSE_KAFKA_SASL_PASSWORD_FILE": "/no/such/secret"})
    assert str(refused.value) == (
        "PARKPULSE_KAFKA_SASL_PASSWORD_FILE: cannot read /no/such/secret: No such file or directory"
    )


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("PARKPULSE_PARTITIONS", "abc", "valid integer"),
        ("PARKPULSE_PARTITIONS", "0", "greater than or equal to 1"),
        ("PARKPULSE_API_PORT", "70000", "less than or equal to 65535"),
        ("PARKPULSE_SUSPECT_JUMP_FACTOR", "0.5", "greater than 1"),
        ("PARKPULSE_CLICKHOUSE_VERIFY", "maybe", "valid boolean"),
        ("PARKPULSE_LOG_LEVEL", "loud", "must be one of"),
        ("PARKPULSE_LANG", "fr", "'zh' or 'en'"),
        ("PARKPULSE_CLICKHOUSE_URL", "ftp://u:s3cret@h/db", "http:// or https://"),
    ],
)
def test_the_cli_refuses_a_bad_variable_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    says: str,
) -> None:
    monkeypatch.setenv(variable, value)
    assert main(["status"]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"parkpulse: {variable}: ") and says in line
    assert "s3cret" not in line  # a secret's value is never echoed
    if variable not in SECRET_VARIABLES:
        assert repr(value) in line  # an ordinary one is, so the mistake is plain


def test_every_bad_variable_gets_its_own_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PARKPULSE_PARTITIONS", "many")
    monkeypatch.setenv("PARKPULSE_METRICS_PORT", "-1")
    assert main(["status"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(":")[1].strip() for line in lines] == [
        "PARKPULSE_METRICS_PORT",
        "PARKPULSE_PARTITIONS",
    ]


def test_cli_options_win_and_are_checked_too() -> None:
    base = Settings.from_env({"PARKPULSE_DATA_DIR": "/srv/a", "PARKPULSE_API_PORT": "7000"})
    changed = base.with_overrides(data_dir=Path("/srv/b"), api_port=None)
    assert (changed.data_dir, changed.api_port) == (Path("/srv/b"), 7000)
    assert base.data_dir == Path("/srv/a")  # frozen: a copy, never a change
    with pytest.raises(InvalidSettings, match=r"^clickhouse_url: ClickHouse URL must be http"):
        base.with_overrides(clickhouse_url="file:///etc/passwd")


def test_settings_in_code_are_what_they_are_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only ``from_env`` reads the environment: ``Settings(...)`` in code is not moved by it."""
    monkeypatch.setenv("PARKPULSE_PARTITIONS", "12")
    assert Settings().partitions == 4
    assert Settings(partitions=2).with_overrides(api_port=1).partitions == 2
    assert Settings.from_env().partitions == 12


def test_a_child_environment_carries_the_settings_and_nothing_stale(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PARKPULSE_CLICKHOUSE_PASSWORD_FILE", "/run/secrets/stale")
    monkeypatch.setenv("PARKPULSE_BROKER_EPOCH", "old")
    monkeypatch.setenv("UNRELATED_SETTING", "kept")
    env = child_environment(Settings(partitions=6, clickhouse_password="pw"))
    assert env["UNRELATED_SETTING"] == "kept"
    assert "PARKPULSE_CLICKHOUSE_PASSWORD_FILE" not in env and "PARKPULSE_BROKER_EPOCH" not in env
    assert Settings.from_env(env) == Settings(partitions=6, clickhouse_password="pw")


def test_only_config_reads_the_environment() -> None:
    readers = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "config.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            attribute = isinstance(node, ast.Attribute) and node.attr in READERS
            imported = isinstance(node, ast.ImportFrom) and node.module == "os"
            if attribute or (imported and {a.name for a in node.names} & READERS):
                readers.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert readers == []
