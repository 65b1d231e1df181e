"""A restarted worker's predecessor in the group (parkpulse/group_member.py): which member it
asks the broker to let go of. The request itself, on a real broker, is in
tests/test_faults_crash.py (a killed worker's member removed, a cleanly stopped one's gone)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import faust
import pytest

from parkpulse.broker import free_port
from parkpulse.config import Settings
from parkpulse.group_member import (
    let_go_of_predecessor,
    member_file,
    predecessor,
    remember,
    remember_member,
)


def test_nothing_written_is_no_predecessor(tmp_path: Path) -> None:
    assert predecessor(tmp_path) is None


def test_a_member_whose_process_is_gone_is_the_predecessor(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    remember(tmp_path, "faust-1", pid=gone.pid)
    assert predecessor(tmp_path) == "faust-1"
    assert member_file(tmp_path).name == f"{socket.gethostname()}.json"  # one file per host


def test_a_member_whose_process_runs_is_never_asked_to_leave(tmp_path: Path) -> None:
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        remember(tmp_path, "faust-2", pid=running.pid)
        assert predecessor(tmp_path) is None
    finally:
        running.kill()
        running.wait()
    assert predecessor(tmp_path) == "faust-2"


def test_a_process_restarted_with_its_old_pid_has_a_predecessor(tmp_path: Path) -> None:
    # A container's worker is pid 1 again after a restart: what pid 1 wrote is the dead one's.
    remember(tmp_path, "faust-3", pid=os.getpid())
    assert predecessor(tmp_path) == "faust-3"


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b'{"member_id": "m"}', b'{"group": "other", "member_id": "m", "pid": 1}',
     b'{"group": "parkpulse", "member_id": "", "pid": 1}', b"[1, 2]"],
)  # fmt: skip
def test_a_file_that_is_no_member_is_no_predecessor(tmp_path: Path, body: bytes) -> None:
    member_file(tmp_path).parent.mkdir(parents=True)
    member_file(tmp_path).write_bytes(body)
    assert predecessor(tmp_path) is None


def test_without_a_predecessor_no_broker_is_asked(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, broker=f"kafka://127.0.0.1:{free_port()}")
    assert asyncio.run(let_go_of_predecessor(settings)) is None


def test_a_broker_that_does_not_answer_leaves_the_worker_to_join_as_before(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    remember(tmp_path, "faust-4", pid=os.getpid())
    settings = Settings(data_dir=tmp_path, broker=f"kafka://127.0.0.1:{free_port()}")
    assert asyncio.run(let_go_of_predecessor(settings)) is None
    assert "predecessor_not_removed" in caplog.text


@pytest.mark.asyncio
async def test_a_member_id_not_to_be_had_never_fails_the_rebalance(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = faust.App("pin", broker="kafka://127.0.0.1:1", autodiscover=False)  # never started
    remember_member(app, tmp_path)
    await app.on_rebalance_complete.send()
    assert "member_not_written" in caplog.text and not member_file(tmp_path).exists()
