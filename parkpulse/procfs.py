"""What Linux's /proc says about a process: its children, its memory and its CPU time.

The bench measures the worker through it, and the tests find the processes a stack started
(the worker, its Tansu) through it. Linux only, as the embedded stack is.
"""

from __future__ import annotations

import os
from pathlib import Path

PROC = Path("/proc")


def children(pid: int) -> dict[int, str]:
    """The processes whose parent is ``pid``, with their command lines (arguments joined by
    spaces). Processes that exit while being read are left out."""
    out = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if int(_stat_fields(entry)[1]) == pid:
                out[int(entry.name)] = cmdline(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    return out


def cmdline(pid: int) -> str:
    """The command line of ``pid``, arguments joined by spaces ("" once it is gone)."""
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def status_mb(pid: int, field: str) -> float:
    """A memory field of ``/proc/PID/status`` (``VmRSS``, ``VmHWM``, ``RssAnon``, …) in MB.

    Raises ``KeyError`` when the process has no such field, ``OSError`` when it is gone.
    """
    for line in (PROC / str(pid) / "status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise KeyError(f"no {field} in /proc/{pid}/status")


def cpu_seconds(pid: int) -> float:
    """The CPU time ``pid`` has used so far, all its threads, user and system (``OSError`` when
    it is gone). A measure the other processes on the machine barely move, unlike wall time."""
    fields = _stat_fields(PROC / str(pid))
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stat_fields(entry: Path) -> list[str]:
    """The fields of ``entry/stat`` after the command name, from the state on (proc(5) field 3
    is index 0). The command name in parentheses may hold spaces: they follow the last ")"."""
    return (entry / "stat").read_text().rsplit(")", 1)[1].split()
