"""DATA_DIR/run.json belongs to the process that wrote it: replicas sharing one DATA_DIR
(``docker compose up --scale worker=3``; every container's worker is pid 1) each write it when
ready, and one stopping leaves the file another replica wrote."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import orjson
import pytest

from parkpulse.config import Settings
from parkpulse.stack import remove_run_file, write_run_file


def _write(settings: Settings, host: str, pid: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: host)
    store: Any = None
    write_run_file(settings, ("127.0.0.1", 9464), store, pid)


def test_a_replica_removes_only_its_own_run_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(data_dir=tmp_path)
    _write(settings, "replica-a", 1, monkeypatch)
    _write(settings, "replica-b", 1, monkeypatch)  # the last one ready wrote it
    monkeypatch.setattr(socket, "gethostname", lambda: "replica-a")
    remove_run_file(settings, 1)
    assert orjson.loads(settings.run_file.read_bytes())["host"] == "replica-b"
    monkeypatch.setattr(socket, "gethostname", lambda: "replica-b")
    remove_run_file(settings, 2)  # another process on that host
    assert settings.run_file.exists()
    remove_run_file(settings, 1)
    assert not settings.run_file.exists()
    remove_run_file(settings, 1)  # gone already: nothing to do
