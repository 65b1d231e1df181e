"""A restarted worker lets go of its killed predecessor's place in the consumer group.

A worker killed with SIGKILL (or lost with its machine) says nothing to the broker: its member
stays in the group until the broker notices its heartbeats stopped (the session timeout, 6 s,
streams/app.py). A worker started meanwhile joins a group that still holds it. On Tansu that
join is answered after a 3 s pause; if the dead member has not expired by then, the newcomer is
its follower, its SyncGroup is held ~5 s and refused, and it joins again: ready 13.5 s after the
kill instead of 5.4 s. Which of the two depended on whether the worker's start-up took more or
less than the session timeout minus the pause — a race of a few hundred milliseconds that
`make bench`'s worker-kill check lost in some runs (README, Speed, session 14). Apache Kafka
holds a join the same way until the dead member's session expires.

So a worker writes its member id to ``DATA_DIR/group/<host>.json`` whenever the group assigns
it partitions, and a worker starting on the same host and DATA_DIR sends the group coordinator
a LeaveGroup for the member written there, when the process that wrote it is gone: the group
is rebalanced without it at once. Replicas sharing one DATA_DIR (``docker compose up --scale
worker=3``) have a file each (one host name each); a member whose process still runs here is
never asked to leave. Nothing depends on it: when the file is missing or the request fails,
the worker joins as before and the broker expires the old member itself.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from pathlib import Path
from typing import Any

import faust
import orjson
from aiokafka.client import AIOKafkaClient, CoordinationType
from aiokafka.protocol.group import LeaveGroupRequest

from parkpulse.atomic_file import write_atomically
from parkpulse.config import Settings
from parkpulse.group_offsets import GROUP
from parkpulse.logs import get_logger, log_event
from parkpulse.streams.faust_internals import group_member_id
from parkpulse.topics import client_options

log = get_logger("worker")

LEAVE_TIMEOUT = 10.0  # seconds for the whole LeaveGroup exchange; past that, join as before


def member_file(data_dir: Path) -> Path:
    """Where this host's worker on ``data_dir`` writes its member id."""
    return data_dir / "group" / f"{socket.gethostname()}.json"


def remember(data_dir: Path, member_id: str, pid: int | None = None) -> None:
    """Write ``member_id`` (this process's, ``pid``) as this host's member of the group."""
    body = {"group": GROUP, "member_id": member_id, "pid": pid or os.getpid()}
    write_atomically(member_file(data_dir), orjson.dumps(body))


def predecessor(data_dir: Path) -> str | None:
    """The member id this host's last worker on ``data_dir`` wrote, if its process is gone."""
    try:
        recorded = orjson.loads(member_file(data_dir).read_bytes())
        member, pid = str(recorded["member_id"]), int(recorded["pid"])
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    if not member or recorded.get("group") != GROUP:
        return None
    return member if pid == os.getpid() or not _running(pid) else None


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remember_member(app: faust.App, data_dir: Path) -> None:
    """Have ``app`` write its member id each time a rebalance completes."""

    @app.on_rebalance_complete.connect
    async def write_member(sender: faust.App, **kwargs: Any) -> None:
        try:
            member = group_member_id(app)
            if member:
                remember(data_dir, member)
        except Exception as exc:  # only a restart's speed-up is lost; never the rebalance
            log_event(log, "member_not_written", level=logging.WARNING, error=repr(exc))


async def let_go_of_predecessor(settings: Settings) -> int | None:
    """Ask the group coordinator to remove this host's dead predecessor from the group; the
    broker's error code (0: it is not in the group any more — Tansu answers 0 for a member
    that had left by itself too, Apache Kafka 25, UNKNOWN_MEMBER_ID), or None when there was
    nothing to ask or no answer."""
    member = predecessor(settings.data_dir)
    if member is None:
        return None
    try:
        code = await asyncio.wait_for(_leave(settings, member), LEAVE_TIMEOUT)
    except Exception as exc:  # the worker joins as before; the broker expires the member
        log_event(
            log, "predecessor_not_removed", level=logging.WARNING, member=member, error=repr(exc)
        )
        return None
    log_event(log, "predecessor_removed", member=member, error_code=code)
    return code


async def _leave(settings: Settings, member: str) -> int:
    client = AIOKafkaClient(**client_options(settings))
    try:
        await client.bootstrap()
        node = await client.coordinator_lookup(CoordinationType.GROUP, GROUP)
        answer = await client.send(node, LeaveGroupRequest(GROUP, member))
        return int(answer.error_code)
    finally:
        await client.close()
