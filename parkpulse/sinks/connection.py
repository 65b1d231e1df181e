"""The one way to reach ClickHouse: the client factory (embedded chdb or a server), the schema,
one worker thread, and the one place where the driver's exceptions are mapped.

chdb allows one data path per process and has no async client, so every call goes through one
worker thread (``StoreThread``): urgent calls — the live registrations' small writes, which a
latency goal waits on — go before the ordinary ones queued (the roll-up's reads and writes), in
order among themselves; a call already running is never interrupted. Every failure of a driver call
leaves this module as one of two types, so callers decide once (``sinks/retry.py``):
``ClickHouseUnavailable`` — the store could not be reached or could not take the work now, retrying
the same call can succeed — and ``ClickHouseRejected`` — the store refused the statement or the
data, retrying the same call never succeeds.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from importlib import resources
from typing import Any, Self, TypeVar

import clickhouse_connect
from clickhouse_connect.driver import options as driver_options
from clickhouse_connect.driver.exceptions import DatabaseError, DataError, OperationalError

from parkpulse.config import ClickHouseTarget
from parkpulse.sinks.schema_types import declared_types, insert_types

T = TypeVar("T")

# Server error codes that say the statement or its data is wrong (ClickHouse's ErrorCodes.cpp):
# the same call fails the same way however often it is retried. Any other failure — a network
# error, a timeout, memory, too many parts, a read-only replica, an error without a code — may
# pass, and is retried.
REJECTING_CODES = frozenset(
    {
        6,  # CANNOT_PARSE_TEXT
        16,  # NO_SUCH_COLUMN_IN_TABLE
        20,  # NUMBER_OF_COLUMNS_DOESNT_MATCH
        26,  # CANNOT_PARSE_QUOTED_STRING
        27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
        36,  # BAD_ARGUMENTS
        38,  # CANNOT_PARSE_DATE
        41,  # CANNOT_PARSE_DATETIME
        43,  # ILLEGAL_TYPE_OF_ARGUMENT
        47,  # UNKNOWN_IDENTIFIER
        53,  # TYPE_MISMATCH
        62,  # SYNTAX_ERROR
        69,  # ARGUMENT_OUT_OF_BOUND
        70,  # CANNOT_CONVERT_TYPE
        72,  # CANNOT_PARSE_NUMBER
        117,  # INCORRECT_DATA
        131,  # TOO_LARGE_STRING_SIZE
        349,  # CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
        456,  # UNKNOWN_QUERY_PARAMETER
        457,  # BAD_QUERY_PARAMETER
        469,  # VIOLATED_CONSTRAINT (a table's CHECK constraint refused a row)
    }
)


def skip_pandas() -> None:
    """Tell clickhouse-connect there is no pandas, unless something imported it already.

    Its insert asks ``isinstance(data, pandas.DataFrame)`` of every insert, and the first such
    question imports pandas (the first insert of a worker spent ~1 s there). parkpulse hands
    the driver lists and never asks it for DataFrames.
    """
    import sys

    if "pandas" not in sys.modules and "pd" not in vars(driver_options):
        driver_options.pd = None
        driver_options.pd_time_test = None


skip_pandas()


class StoreThread:
    """One thread that runs the store's calls: urgent ones first, each kind in submission order.

    ``waited`` keeps how long (seconds) the last urgent call queued before it ran, for the
    stage's log.
    """

    def __init__(self, name: str = "clickhouse_0") -> None:
        self._urgent: deque[tuple[Future[Any], Callable[..., Any], tuple[Any, ...], float]] = (
            deque()
        )
        self._ordinary: deque[tuple[Future[Any], Callable[..., Any], tuple[Any, ...], float]] = (
            deque()
        )
        self._ready = threading.Condition()
        self._closed = False
        self.waited = 0.0
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()
        atexit.register(self.shutdown)  # an exiting process still finishes what is queued

    def submit(self, fn: Callable[..., T], *args: Any, urgent: bool = False) -> Future[T]:
        future: Future[T] = Future()
        with self._ready:
            if self._closed:
                raise RuntimeError("the store's thread is shut down")
            queue = self._urgent if urgent else self._ordinary
            queue.append((future, fn, args, time.monotonic()))
            self._ready.notify()
        return future

    def _loop(self) -> None:
        while True:
            with self._ready:
                while not (self._urgent or self._ordinary or self._closed):
                    self._ready.wait()
                if self._urgent:
                    future, fn, args, queued = self._urgent.popleft()
                    self.waited = time.monotonic() - queued
                elif self._ordinary:
                    future, fn, args, _ = self._ordinary.popleft()
                else:
                    return  # closed and drained
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args)
            except BaseException as exc:  # handed to the caller, as an executor does
                future.set_exception(exc)
            else:
                future.set_result(result)

    def shutdown(self) -> None:
        """Run what is queued, then end the thread and wait for it."""
        atexit.unregister(self.shutdown)
        with self._ready:
            self._closed = True
            self._ready.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join()


class ClickHouseError(RuntimeError):
    """A ClickHouse call failed; ``table`` is the table a failed write was for (None: connecting,
    reading)."""

    def __init__(self, message: str, table: str | None = None) -> None:
        super().__init__(message)
        self.table = table


class ClickHouseUnavailable(ClickHouseError):
    """The store could not be reached or could not take the work now; the caller retries."""


class ClickHouseRejected(ClickHouseError):
    """The store refused the statement or its data; retrying cannot help (raise, or dead-letter
    what was refused)."""


def classify(exc: BaseException) -> type[ClickHouseError]:
    """Whether a driver failure is worth retrying (``ClickHouseUnavailable``) or not."""
    if isinstance(exc, ClickHouseError):
        return type(exc)
    if isinstance(exc, OperationalError):  # network, timeout, a server that went away
        return ClickHouseUnavailable
    if isinstance(exc, DataError) or (
        isinstance(exc, DatabaseError) and getattr(exc, "code", None) in REJECTING_CODES
    ):
        return ClickHouseRejected
    if isinstance(exc, TypeError | ValueError):  # the driver could not encode the rows
        return ClickHouseRejected
    return ClickHouseUnavailable


def client_kwargs(target: ClickHouseTarget) -> dict[str, Any]:
    """``clickhouse_connect.get_client`` keyword arguments for a ClickHouse server.

    TLS options (CA bundle, client certificate, verification) are passed straight through for
    ``https://`` targets. The password is in here: never log this dict.
    """
    kwargs: dict[str, Any] = {
        "host": target.host,
        "port": target.port,
        "username": target.username,
        "password": target.password,
        "secure": target.secure,
        "database": "default",  # the schema creates the target database on first connection
        "connect_timeout": 5,
        "send_receive_timeout": 30,
    }
    if target.secure:
        kwargs["verify"] = target.verify
        if target.ca_cert:
            kwargs["ca_cert"] = target.ca_cert
        if target.client_cert:
            kwargs["client_cert"] = target.client_cert
        if target.client_key:
            kwargs["client_cert_key"] = target.client_key
    return kwargs


def schema_statements() -> list[str]:
    """The DDL statements of ``schema.sql``, one per entry."""
    text = resources.files("parkpulse.sinks").joinpath("schema.sql").read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if not ln.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


TABLE_TYPES = declared_types(schema_statements())  # what every insert tells the driver


class Connection:
    """parkpulse's ClickHouse database (embedded chdb or a server), behind one thread.

    A server is connected to lazily: the store can be opened while ClickHouse is down, and the
    first call that needs it connects and ensures the schema (raising ClickHouseUnavailable, for
    the caller to retry, until it can). The jobs on top (``writer``, ``zone_state``, ``queries``)
    subclass it and use only ``query`` and ``insert``.
    """

    def __init__(
        self,
        client: Any = None,
        database: str = "parkpulse",
        *,
        connect: Callable[[], Any] | None = None,
        secret: str = "",
    ) -> None:
        if client is None and connect is None:
            raise ValueError("ClickHouseStore needs a client or a way to connect")
        self._connected = client
        self._connect = connect
        self._secret = secret  # scrubbed from every error message the store raises
        self.database = database
        self._thread = StoreThread()

    @classmethod
    def open(cls, target: ClickHouseTarget) -> Self:
        """The store for ``target``: the embedded data path is opened now (a local failure is not
        worth retrying); a server is connected to on first use, so it may be down right now."""
        if target.embedded_path is not None:
            target.embedded_path.mkdir(parents=True, exist_ok=True)
            path = str(target.embedded_path)
            store = cls(
                connect=lambda: clickhouse_connect.get_client(interface="chdb", path=path),
                database=target.database,
            )
            store.run(store.connect)
            return store
        kwargs = client_kwargs(target)
        return cls(
            connect=lambda: clickhouse_connect.get_client(**kwargs),
            database=target.database,
            secret=target.password,
        )

    @property
    def connected(self) -> bool:
        return self._connected is not None

    def connect(self) -> None:
        """Connect and ensure the schema now (on the store's thread); idempotent."""
        _ = self._client

    @property
    def _client(self) -> Any:
        """The driver's client; the first use connects and ensures the schema."""
        if self._connected is None:
            assert self._connect is not None
            try:
                client = self._connect()
            except Exception as exc:  # refused, timed out, bad TLS, bad password …
                raise ClickHouseUnavailable(f"cannot connect: {self._scrub(exc)}") from None
            try:
                self._apply_schema(client)
            except Exception as exc:
                client.close()
                detail = self._scrub(exc)
                raise ClickHouseUnavailable(f"cannot create the schema: {detail}") from None
            self._connected = client
        return self._connected

    def _scrub(self, exc: BaseException) -> str:
        text = str(exc)
        return text.replace(self._secret, "***") if self._secret else text

    def _mapped(self, exc: Exception, doing: str, table: str | None = None) -> ClickHouseError:
        """``exc`` from the driver as ClickHouseUnavailable or ClickHouseRejected."""
        if isinstance(exc, ClickHouseError):  # connecting failed: say what it was for
            return type(exc)(str(exc), table)
        return classify(exc)(f"{doing} failed: {self._scrub(exc)}", table)

    def close(self) -> None:
        self._thread.shutdown()
        if self._connected is not None:
            self._connected.close()

    # -- the store's thread ---------------------------------------------------------------

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` on the store's thread and wait (for sync callers)."""
        return self._thread.submit(fn, *args).result()

    async def arun(self, fn: Callable[..., T], *args: Any, urgent: bool = False) -> T:
        """Run ``fn`` on the store's thread without blocking the event loop; ``urgent`` calls
        run before every ordinary one queued (in order among themselves)."""
        return await asyncio.wrap_future(self._thread.submit(fn, *args, urgent=urgent))

    @property
    def urgent_waited(self) -> float:
        """Seconds the last urgent call queued behind the call running before it."""
        return self._thread.waited

    # -- statements (call on the store's thread) ------------------------------------------

    def _table(self, name: str) -> str:
        return f"{self.database}.{name}"

    def ensure_schema(self) -> None:
        """Create the database and tables if missing (done on connecting; idempotent)."""
        self._apply_schema(self._client)

    def _apply_schema(self, client: Any) -> None:
        for statement in schema_statements():
            if self.database != "parkpulse":
                statement = statement.replace("parkpulse.", f"{self.database}.").replace(
                    "DATABASE IF NOT EXISTS parkpulse", f"DATABASE IF NOT EXISTS {self.database}"
                )
            client.command(statement)

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows as dicts; every caller passes values as ``{name:Type}`` parameters and names
        the database ``{db}``."""
        try:
            result = self._client.query(sql.replace("{db}", self.database), parameters=parameters)
        except Exception as exc:
            raise self._mapped(exc, "query") from None
        names = result.column_names
        return [dict(zip(names, row, strict=True)) for row in result.result_rows]

    def raw_insert(
        self, table: str, columns: Sequence[str], block: bytes, settings: Mapping[str, Any]
    ) -> None:
        """Insert one block of ClickHouse's Native format, encoded already (the driver passes
        it on as it is)."""
        try:
            self._client.raw_insert(
                self._table(table), list(columns), block, settings=dict(settings), fmt="Native"
            )
        except Exception as exc:
            raise self._mapped(exc, f"insert into {table}", table) from None

    def insert(
        self,
        table: str,
        columns: Iterable[str],
        data: Sequence[Sequence[Any]],
        *,
        column_oriented: bool = False,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        """Insert ``data``: rows, or (``column_oriented``) one sequence per column; ``settings``
        are ClickHouse settings of this insert alone."""
        if not data or (column_oriented and not data[0]):
            return
        names = list(columns)
        extra: dict[str, Any] = {"settings": dict(settings)} if settings else {}
        if (types := insert_types(TABLE_TYPES, table, names)) is not None:
            extra["column_type_names"] = types  # or the driver asks DESCRIBE TABLE each time
        # The driver's insert context keeps a bound method of itself, a reference cycle: what it
        # is given (a batch's columns, tens of MB) would wait for a full collection of Python's
        # cyclic collector, which the worker runs rarely (memory.GC_THRESHOLDS). It is given a
        # list of its own, emptied once the insert is done.
        given = list(data)
        try:
            self._client.insert(
                self._table(table),
                given,
                column_names=names,
                column_oriented=column_oriented,
                **extra,
            )
        except Exception as exc:
            raise self._mapped(exc, f"insert into {table}", table) from None
        finally:
            given.clear()
