"""parkpulse/procfs.py against this very process and a child it starts."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from parkpulse.procfs import children, cpu_seconds, status_mb


def test_children_lists_a_child_with_its_command_line() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "marker-7"])
    try:
        found = children(os.getpid())
        assert child.pid in found
        assert found[child.pid].split()[-1] == "marker-7"
        assert os.getpid() not in found  # only children, not the process itself
    finally:
        child.kill()
        child.wait()
    assert child.pid not in children(os.getpid())


def test_status_mb_reads_memory_fields_consistently() -> None:
    pid = os.getpid()
    rss, peak = status_mb(pid, "VmRSS"), status_mb(pid, "VmHWM")
    assert 0 < rss <= peak
    assert status_mb(pid, "RssAnon") <= rss
    with pytest.raises(KeyError):
        status_mb(pid, "NoSuchField")


def test_cpu_seconds_counts_a_childs_work_and_what_this_process_did() -> None:
    spin = "import time\nend = time.process_time() + 0.5\nwhile time.process_time() < end: pass\n"
    child = subprocess.Popen([sys.executable, "-c", spin + "time.sleep(30)"])
    try:
        deadline = time.monotonic() + 30
        while cpu_seconds(child.pid) < 0.5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert 0.5 <= cpu_seconds(child.pid) < 5
    finally:
        child.kill()
        child.wait()
    mine = cpu_seconds(os.getpid())
    assert mine == pytest.approx(time.process_time(), abs=0.1)  # ticks of 10 ms, both counted
    with pytest.raises(OSError):
        cpu_seconds(child.pid)  # reaped: gone
