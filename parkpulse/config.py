"""parkpulse configuration: one typed, frozen object, read once from the environment.

Why one module: every ``PARKPULSE_*`` variable is read here and nowhere else, so a newcomer
finds every knob, its default and its check in one place, and a bad value is refused at start
with one line naming the variable instead of a traceback somewhere later.

The rule a variable name follows: ``PARKPULSE_`` + the field's name in capitals
(``partitions`` ↔ ``PARKPULSE_PARTITIONS``). A secret (a field hidden from ``repr``) may instead
come from the file named by ``PARKPULSE_<NAME>_FILE`` (docker/k8s secrets); the variable itself
wins over its file. ``Settings.from_env`` is the one reader (pydantic-settings sources over a
mapping, ``os.environ`` by default); ``Settings(...)`` in code and tests is exactly what it is
given; ``with_overrides`` applies the CLI's flags; ``to_env`` and ``child_environment`` hand the
settings to a child process through its environment, never its command line.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars

from parkpulse.vocabulary import DEFAULT_LANG, Lang

ENV_PREFIX = "PARKPULSE_"
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
LOG_LEVELS = frozenset(logging.getLevelNamesMapping())


class InvalidSettings(ValueError):
    """Settings that cannot be used: one line per bad variable, never a secret's value."""


def env_name(field_name: str) -> str:
    """The variable that sets a field: ``partitions`` → ``PARKPULSE_PARTITIONS``."""
    return ENV_PREFIX + field_name.upper()


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


# KafkaSecurity's attributes as the Settings fields (and so the variables) that hold them.
KAFKA_FIELDS = {
    f.name: "kafka_security_protocol" if f.name == "protocol" else f"kafka_{f.name}"
    for f in fields(KafkaSecurity)
}


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
    """``http://user:pass@host:8123/db`` (or https) as a ClickHouseTarget.

    Its errors never quote the URL (it may hold a password), only the part that is wrong.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # urllib's own message quotes the URL's text
        raise ValueError("ClickHouse URL is not a URL (a bad port or host?)") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"ClickHouse URL must be http:// or https://, got {parts.scheme!r}")
    database = (parts.path or "/").strip("/") or "parkpulse"
    if not IDENTIFIER.match(database):  # it is spliced into DDL and queries as a name
        raise ValueError(f"ClickHouse database must be a plain name, got {database!r}")
    return ClickHouseTarget(
        host=parts.hostname or "localhost",
        port=port or (8443 if parts.scheme == "https" else 8123),
        username=unquote(parts.username or "default"),
        password=password if password is not None else unquote(parts.password or ""),
        database=database,
        secure=parts.scheme == "https",
    )


# -- where values come from ------------------------------------------------------------------

# The mapping ``Settings.from_env`` is reading while it builds (unset: ``Settings(...)`` in code).
_READING: ContextVar[Mapping[str, str] | None] = ContextVar("parkpulse_environ", default=None)


def secret_fields(settings_cls: type[BaseSettings]) -> Iterator[str]:
    """The fields that hold secrets: those kept out of ``repr`` (and so out of logs)."""
    return (name for name, info in settings_cls.model_fields.items() if not info.repr)


class Environment(EnvSettingsSource):
    """``PARKPULSE_*`` variables of a given mapping (``os.environ`` when parkpulse starts)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self.environ = environ  # read by _load_env_vars, which the base __init__ calls
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(
            self.environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


class SecretFiles(PydanticBaseSettingsSource):
    """A secret from the file ``PARKPULSE_<NAME>_FILE`` names, stripped of surrounding space."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.environ = environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        variable = env_name(field_name) + "_FILE"
        path = self.environ.get(variable)
        if field.repr or not path:  # only secrets come from files
            return None, field_name, False
        try:
            return Path(path).read_text(encoding="utf-8").strip(), field_name, False
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise InvalidSettings(f"{variable}: cannot read {path}: {reason}") from None

    def __call__(self) -> dict[str, Any]:
        values = {}
        for name in secret_fields(self.settings_cls):
            if name in self.current_state:  # the variable itself (or a given value) wins
                continue
            value, key, _ = self.get_field_value(self.settings_cls.model_fields[name], name)
            if value is not None:
                values[key] = value
        return values


def _explain(error: ValidationError, name: Any, secrets: set[str]) -> InvalidSettings:
    """One line per bad value: the variable, what is wrong, and the value unless it is secret."""
    lines = []
    for problem in error.errors(include_url=False):
        where = str(problem["loc"][0]) if problem["loc"] else ""
        message = problem["msg"].removeprefix("Value error, ")
        shown = "" if where in secrets else f" (got {problem['input']!r})"
        lines.append(f"{name(where)}: {message}{shown}")
    return InvalidSettings("\n".join(lines))


# -- the settings ----------------------------------------------------------------------------


class Settings(BaseSettings):
    """Everything parkpulse needs to know about its surroundings."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_ignore_empty=True,  # PARKPULSE_X= means "not set", as it always has
        frozen=True,
        extra="forbid",
    )

    data_dir: Path = Path("var")
    broker: str | None = None  # kafka://host:port[,host:port]; None = embedded Tansu
    clickhouse_url: str | None = Field(default=None, repr=False)  # None = embedded chdb
    clickhouse_password: str | None = Field(default=None, repr=False)
    clickhouse_ca_cert: str | None = None
    clickhouse_client_cert: str | None = None
    clickhouse_client_key: str | None = None
    clickhouse_verify: bool = True
    kafka_security_protocol: str = "PLAINTEXT"  # the fields of ``kafka_security``
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = Field(default=None, repr=False)
    kafka_ssl_cafile: str | None = None
    kafka_ssl_certfile: str | None = None
    kafka_ssl_keyfile: str | None = None
    broker_port: int = Field(default=9092, ge=0, le=65535)  # embedded Tansu listener
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=6066, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9464, ge=0, le=65535)
    partitions: int = Field(default=4, ge=1)
    log_level: str = "INFO"
    reference_dir: Path | None = None  # extra zones.csv / indicators.csv
    # Which incarnation of the embedded broker this is (set by ``run``'s supervisor at each
    # start of Tansu): kept-file offsets of another incarnation mean nothing (producers/kept.py).
    broker_epoch: str | None = None
    lang: Lang = DEFAULT_LANG  # zh | en: words people read (tables, board, reports, alerts)
    suspect_jump_factor: float = 10.0  # a month-on-month jump beyond this marks a figure suspect
    # Registrations read in a helper process on another core (streams/batch_reader.py); off:
    # read in the worker, as on a one-core machine.
    reader_process: bool = True

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Given values, then variables, then secret files; the environment only in from_env."""
        environ = _READING.get()
        if environ is None:
            return (init_settings,)
        return init_settings, Environment(settings_cls, environ), SecretFiles(settings_cls, environ)

    @model_validator(mode="before")
    @classmethod
    def _unpack_kafka_security(cls, data: Any) -> Any:
        """``Settings(kafka_security=KafkaSecurity(...))`` sets the ``kafka_*`` fields."""
        if isinstance(data, dict) and isinstance(data.get("kafka_security"), KafkaSecurity):
            security = data["kafka_security"]
            data = {k: v for k, v in data.items() if k != "kafka_security"}
            data |= {name: getattr(security, attr) for attr, name in KAFKA_FIELDS.items()}
        return data

    @field_validator("clickhouse_url")
    @classmethod
    def _a_clickhouse_url(cls, url: str | None) -> str | None:
        if url is not None:
            parse_clickhouse_url(url)  # refused now, not at the first query
        return url

    @field_validator("log_level")
    @classmethod
    def _a_log_level(cls, level: str) -> str:
        if level.strip().upper() not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(sorted(LOG_LEVELS))}")
        return level.strip().upper()

    @field_validator("lang", mode="before")
    @classmethod
    def _a_lang(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("suspect_jump_factor")
    @classmethod
    def _a_jump_factor(cls, factor: float) -> float:
        if not factor > 1:  # nan too; inf turns the check off
            raise ValueError("must be a number greater than 1")
        return factor

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``PARKPULSE_*`` variables (secrets also from ``*_FILE``).

        Raises InvalidSettings, one line per bad variable naming it.
        """
        token = _READING.set(os.environ if env is None else env)
        try:
            return cls()
        except ValidationError as exc:
            raise _explain(exc, env_name, set(secret_fields(cls))) from None
        finally:
            _READING.reset(token)

    def to_env(self) -> dict[str, str]:
        """The ``PARKPULSE_*`` variables that give these settings back (``from_env``'s inverse).

        For a child process parkpulse starts itself; secrets travel in its environment (readable
        only by the same user), never on a command line that ``ps`` shows.
        """
        return {env_name(name): _as_text(value) for name, value in self if value not in (None, "")}

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with the CLI's explicit options applied (None means "not given"), checked."""
        given = {k: v for k, v in changes.items() if v is not None}
        try:
            return type(self)(**(dict(self) | given))
        except ValidationError as exc:
            raise _explain(exc, str, set(secret_fields(type(self)))) from None

    @property
    def kafka_security(self) -> KafkaSecurity:
        return KafkaSecurity(**{attr: getattr(self, name) for attr, name in KAFKA_FIELDS.items()})

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


def _as_text(value: object) -> str:
    """A setting as a variable's text that reads back to the same value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)  # a Path, a number (inf too) or text


def library_default(name: str, value: str) -> str:
    """Give a library that reads its own variable at load (``JE_MALLOC_CONF`` for chdb's
    jemalloc) ``value`` in this process unless the operator set one; returns what it will read.
    Here because this module is the one reader of the environment."""
    return os.environ.setdefault(name, value)


def child_environment(settings: Settings) -> dict[str, str]:
    """The environment for a child process parkpulse starts: this process's own, without any
    ``PARKPULSE_*`` variable (nor ``*_FILE``), plus ``settings`` — one source of truth."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    return inherited | settings.to_env()
