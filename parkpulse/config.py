"""parkpulse configuration: one typed object, read once from the environment and the CLI."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import unquote, urlsplit

from parkpulse.vocabulary import DEFAULT_LANG, Lang, lang_of

ENV_PREFIX = "PARKPULSE_"
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def _secret(env: Mapping[str, str], name: str) -> str | None:
    """A secret from ``NAME`` or from the file named by ``NAME_FILE`` (docker/k8s secrets)."""
    value = env.get(name)
    if value:
        return value
    path = env.get(f"{name}_FILE")
    if path:
        return Path(path).read_text(encoding="utf-8").strip()
    return None


def _flag(value: str | None, *, default: bool) -> bool:
    if value is None:
        return default
    if value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if value.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _jump_factor(value: str | None, default: float) -> float:
    """A month-on-month factor: a number greater than 1 (``inf`` turns the check off)."""
    if value is None:
        return default
    try:
        factor = float(value)
    except ValueError:
        factor = float("nan")
    if not factor > 1:
        raise ValueError(
            f"{ENV_PREFIX}SUSPECT_JUMP_FACTOR must be a number greater than 1, got {value!r}"
        )
    return factor


@dataclass(frozen=True, slots=True)
class KafkaSecurity:
    """Options passed straight through to aiokafka/Faust for a production broker."""

    protocol: str = "PLAINTEXT"  # PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL
    sasl_mechanism: str | None = None  # PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None


@dataclass(frozen=True, slots=True)
class ClickHouseTarget:
    """Where ClickHouse lives: an embedded chdb path or a server URL's parts."""

    embedded_path: Path | None = None
    host: str = "localhost"
    port: int = 8123
    username: str = "default"
    password: str = field(default="", repr=False)
    database: str = "parkpulse"
    secure: bool = False
    ca_cert: str | None = None  # CA bundle that signed the server's certificate
    client_cert: str | None = None  # mutual TLS: our certificate …
    client_key: str | None = None  # … and its key
    verify: bool = True  # verify the server's certificate (never turn off in production)

    @property
    def display(self) -> str:
        """Where it is, for logs and run.json: never the password."""
        if self.embedded_path is not None:
            return f"chdb://{self.embedded_path}"
        scheme = "https" if self.secure else "http"
        return f"{scheme}://{self.username}@{self.host}:{self.port}/{self.database}"


def parse_clickhouse_url(url: str, password: str | None = None) -> ClickHouseTarget:
    """``http://user:pass@host:8123/db`` (or https) as a ClickHouseTarget."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"ClickHouse URL must be http:// or https://, got {parts.scheme!r}")
    database = (parts.path or "/").strip("/") or "parkpulse"
    if not IDENTIFIER.match(database):  # it is spliced into DDL and queries as a name
        raise ValueError(f"ClickHouse database must be a plain name, got {database!r}")
    return ClickHouseTarget(
        host=parts.hostname or "localhost",
        port=parts.port or (8443 if parts.scheme == "https" else 8123),
        username=unquote(parts.username or "default"),
        password=password if password is not None else unquote(parts.password or ""),
        database=database,
        secure=parts.scheme == "https",
    )


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything parkpulse needs to know about its surroundings."""

    data_dir: Path = Path("var")
    broker: str | None = None  # kafka://host:port[,host:port]; None = embedded Tansu
    clickhouse_url: str | None = field(default=None, repr=False)  # None = embedded chdb
    clickhouse_password: str | None = field(default=None, repr=False)
    clickhouse_ca_cert: str | None = None
    clickhouse_client_cert: str | None = None
    clickhouse_client_key: str | None = None
    clickhouse_verify: bool = True
    kafka_security: KafkaSecurity = KafkaSecurity()
    broker_port: int = 9092  # embedded Tansu listener
    api_host: str = "127.0.0.1"
    api_port: int = 6066
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9464
    partitions: int = 4
    log_level: str = "INFO"
    reference_dir: Path | None = None  # extra zones.csv / indicators.csv
    # Which incarnation of the embedded broker this is (set by ``run``'s supervisor at each
    # start of Tansu): kept-file offsets of another incarnation mean nothing (producers/kept.py).
    broker_epoch: str | None = None
    lang: Lang = DEFAULT_LANG  # zh | en: words people read (tables, board, reports, alerts)
    suspect_jump_factor: float = 10.0  # a month-on-month jump beyond this marks a figure suspect

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``PARKPULSE_*`` variables (secrets also from ``*_FILE``)."""
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            return env.get(ENV_PREFIX + name) or None

        security = KafkaSecurity(
            protocol=get("KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT",
            sasl_mechanism=get("KAFKA_SASL_MECHANISM"),
            sasl_username=get("KAFKA_SASL_USERNAME"),
            sasl_password=_secret(env, ENV_PREFIX + "KAFKA_SASL_PASSWORD"),
            ssl_cafile=get("KAFKA_SSL_CAFILE"),
            ssl_certfile=get("KAFKA_SSL_CERTFILE"),
            ssl_keyfile=get("KAFKA_SSL_KEYFILE"),
        )
        base = cls()
        return cls(
            data_dir=Path(get("DATA_DIR") or base.data_dir),
            broker=get("BROKER"),
            clickhouse_url=_secret(env, ENV_PREFIX + "CLICKHOUSE_URL"),
            clickhouse_password=_secret(env, ENV_PREFIX + "CLICKHOUSE_PASSWORD"),
            clickhouse_ca_cert=get("CLICKHOUSE_CA_CERT"),
            clickhouse_client_cert=get("CLICKHOUSE_CLIENT_CERT"),
            clickhouse_client_key=get("CLICKHOUSE_CLIENT_KEY"),
            clickhouse_verify=_flag(get("CLICKHOUSE_VERIFY"), default=True),
            kafka_security=security,
            broker_port=int(get("BROKER_PORT") or base.broker_port),
            api_host=get("API_HOST") or base.api_host,
            api_port=int(get("API_PORT") or base.api_port),
            metrics_host=get("METRICS_HOST") or base.metrics_host,
            metrics_port=int(get("METRICS_PORT") or base.metrics_port),
            partitions=int(get("PARTITIONS") or base.partitions),
            log_level=get("LOG_LEVEL") or base.log_level,
            reference_dir=Path(ref) if (ref := get("REFERENCE_DIR")) else None,
            broker_epoch=get("BROKER_EPOCH"),
            lang=lang_of(get("LANG")),
            suspect_jump_factor=_jump_factor(get("SUSPECT_JUMP_FACTOR"), base.suspect_jump_factor),
        )

    def to_env(self) -> dict[str, str]:
        """The ``PARKPULSE_*`` variables that give these settings back (``from_env``'s inverse).

        For a child process parkpulse starts itself; secrets travel in its environment (readable
        only by the same user), never on a command line that ``ps`` shows.
        """
        security = self.kafka_security
        values: dict[str, object | None] = {
            "DATA_DIR": self.data_dir,
            "BROKER": self.broker,
            "CLICKHOUSE_URL": self.clickhouse_url,
            "CLICKHOUSE_PASSWORD": self.clickhouse_password,
            "CLICKHOUSE_CA_CERT": self.clickhouse_ca_cert,
            "CLICKHOUSE_CLIENT_CERT": self.clickhouse_client_cert,
            "CLICKHOUSE_CLIENT_KEY": self.clickhouse_client_key,
            "CLICKHOUSE_VERIFY": "true" if self.clickhouse_verify else "false",
            "KAFKA_SECURITY_PROTOCOL": security.protocol,
            "KAFKA_SASL_MECHANISM": security.sasl_mechanism,
            "KAFKA_SASL_USERNAME": security.sasl_username,
            "KAFKA_SASL_PASSWORD": security.sasl_password,
            "KAFKA_SSL_CAFILE": security.ssl_cafile,
            "KAFKA_SSL_CERTFILE": security.ssl_certfile,
            "KAFKA_SSL_KEYFILE": security.ssl_keyfile,
            "BROKER_PORT": self.broker_port,
            "API_HOST": self.api_host,
            "API_PORT": self.api_port,
            "METRICS_HOST": self.metrics_host,
            "METRICS_PORT": self.metrics_port,
            "PARTITIONS": self.partitions,
            "LOG_LEVEL": self.log_level,
            "REFERENCE_DIR": self.reference_dir,
            "BROKER_EPOCH": self.broker_epoch,
            "LANG": self.lang,
            "SUSPECT_JUMP_FACTOR": self.suspect_jump_factor,
        }
        return {ENV_PREFIX + k: str(v) for k, v in values.items() if v is not None and v != ""}

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with the CLI's explicit options applied (None means "not given")."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    @property
    def clickhouse(self) -> ClickHouseTarget:
        if self.clickhouse_url is None:
            return ClickHouseTarget(embedded_path=self.data_dir / "clickhouse")
        target = parse_clickhouse_url(self.clickhouse_url, self.clickhouse_password)
        return replace(
            target,
            ca_cert=self.clickhouse_ca_cert,
            client_cert=self.clickhouse_client_cert,
            client_key=self.clickhouse_client_key,
            verify=self.clickhouse_verify,
        )

    @property
    def embedded_broker(self) -> bool:
        return self.broker is None

    @property
    def broker_url(self) -> str:
        """The Kafka URL Faust and aiokafka use (embedded: Tansu on loopback)."""
        return self.broker or f"kafka://127.0.0.1:{self.broker_port}"

    @property
    def bootstrap_servers(self) -> list[str]:
        return [h.strip() for h in self.broker_url.split("://", 1)[-1].split(",") if h.strip()]

    @property
    def run_file(self) -> Path:
        return self.data_dir / "run.json"
