"""Registration batches read in the helper process (streams/batch_reader.py): the same batch as
``read_batch`` in the worker, and nothing lost when the helper dies, is off or is slow to start.
Real helper processes; the pipeline around them in the agent is tests/test_registrations_stage.py
``count_taken``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import orjson
import pytest
import pytest_asyncio

from parkpulse.schemas.catalogue import load_catalogue
from parkpulse.schemas.registration_block import RegistrationBlock
from parkpulse.schemas.wire import registration_envelope
from parkpulse.streams import batch_reader
from parkpulse.streams.batch_reader import MAX_FAILURES, READ_CHUNK, BatchReader, _answer
from parkpulse.streams.registrations import Batch, Message, read_batch
from tests.conftest import wait_until
from tests.test_registrations_plain import ZONE, reg

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
CATALOGUE = load_catalogue()


def messages(offset: int) -> list[Message]:
    """Plain envelopes, an envelope with rejects and odd spellings, a malformed message."""
    plain = [reg(f"P{offset}x{i}") for i in range(300)]
    mixed = [
        reg(f"M{offset}a", registered_capital=-1),  # rejected: a negative capital
        {("Zone" if k == "zone" else k): v for k, v in reg(f"M{offset}b").items()},
        reg(f"M{offset}c", registered_at="2099-01-01T00:00:00+08:00"),  # future
        reg(f"M{offset}d", batch_id="x\x1fy"),
    ]
    values = [
        orjson.dumps(registration_envelope(plain, sent_at="2026-11-21T11:59:00+00:00")),
        orjson.dumps(registration_envelope(mixed)),
        b'{"registrations": [',
    ]
    return [Message(v, 0, offset + i, ZONE.encode()) for i, v in enumerate(values)]


@pytest_asyncio.fixture
async def reader() -> AsyncIterator[BatchReader]:
    reader = BatchReader(CATALOGUE)
    yield reader
    await reader.close()


async def read_as_the_worker(reader: BatchReader, offset: int) -> Batch:
    """The reader's batch of ``messages(offset)``, checked to be what ``read_batch`` gives."""
    batch = await reader.read(messages(offset), NOW)
    expected = read_batch(messages(offset), CATALOGUE, NOW)
    got = RegistrationBlock.of_rows(batch.registrations)  # the helper's, or made here
    want = RegistrationBlock.of(expected.registrations)
    assert got.native() == want.native() and got.hashes.tolist() == want.hashes.tolist()
    assert got.registrations().columns() == expected.registrations.columns()
    assert batch.deadletters == expected.deadletters
    return batch


def started(reader: BatchReader) -> int:
    """Start a helper; its pid once it answered (it starts on the reader's own thread)."""
    reader.start()
    return wait_until(lambda: reader.helper_pid, timeout=60)


@pytest.mark.asyncio
async def test_the_helper_reads_what_the_worker_would(reader: BatchReader) -> None:
    await read_as_the_worker(reader, 0)  # before it started: read here
    assert reader.read_in_helper == 0
    started(reader)
    for offset in (10, 20):
        batch = await read_as_the_worker(reader, offset)
        assert len(batch.registrations) > 300 and len(batch.deadletters) > 1
    assert reader.read_in_helper == 2


@pytest.mark.asyncio
async def test_a_dead_helper_loses_no_batch_and_is_started_again(reader: BatchReader) -> None:
    pid = started(reader)
    os.kill(pid, signal.SIGKILL)
    await read_as_the_worker(reader, 0)  # read in the worker instead
    assert reader.read_in_helper == 0
    again = started(reader)
    assert again != pid and (reader.starts, reader.failures) == (2, 1)
    await read_as_the_worker(reader, 5)
    assert reader.read_in_helper == 1
    await reader.close()
    with pytest.raises(ProcessLookupError):
        os.kill(again, 0)  # close() stopped it (and reaped it)


def test_the_helper_reads_a_batch_a_chunk_at_a_time_into_one_block() -> None:
    batch = [m for offset in range(0, 3 * READ_CHUNK, 3) for m in messages(offset)]
    assert len(batch) > 2 * READ_CHUNK
    block, dead = _answer([batch, NOW], CATALOGUE)
    expected = read_batch(batch, CATALOGUE, NOW)
    assert block.native() == RegistrationBlock.of(expected.registrations).native()
    assert dead == expected.deadletters


# A helper that starts, then dies in the middle of its first answer.
DIES_MID_ANSWER = """
import pickle, sys
from parkpulse.streams.batch_reader import _read_frame, _write_frame
_read_frame(sys.stdin.buffer)
_write_frame(sys.stdout.buffer, "ready")
_read_frame(sys.stdin.buffer)
sys.stdout.buffer.write(pickle.dumps(list(range(1000)), protocol=5)[:50])
"""


@pytest.mark.asyncio
async def test_a_helper_dying_mid_answer_loses_no_batch(reader: BatchReader) -> None:
    reader.command = (sys.executable, "-c", DIES_MID_ANSWER)
    started(reader)
    await read_as_the_worker(reader, 0)  # the truncated answer: read here instead
    assert (reader.read_in_helper, reader.failures) == (0, 1)
    assert reader.starts == 2  # another is on its way


@pytest.mark.asyncio
async def test_a_helper_that_keeps_dying_is_given_up_and_batches_are_read_here(
    reader: BatchReader,
) -> None:
    for _ in range(MAX_FAILURES):
        os.kill(started(reader), signal.SIGKILL)
        await read_as_the_worker(reader, 0)
    reader.start()
    assert reader.helper_pid is None and reader.starts == reader.failures == MAX_FAILURES
    await read_as_the_worker(reader, 5)
    assert reader.read_in_helper == 0


@pytest.mark.asyncio
async def test_an_idle_helper_is_stopped_and_the_next_batch_starts_another(
    reader: BatchReader,
) -> None:
    pid = started(reader)
    await reader.stop_idle(idle=60)  # it read a moment ago: kept
    assert reader.helper_pid == pid
    await reader.stop_idle(idle=0)
    assert reader.helper_pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # stopped and reaped
    again = started(reader)
    await read_as_the_worker(reader, 0)
    assert again != pid and reader.read_in_helper == 1 and reader.failures == 0


@pytest.mark.asyncio
async def test_a_batch_half_full_starts_the_helper_and_a_trickle_does_not(
    reader: BatchReader,
) -> None:
    reader.taken(49, full=100)  # a trickle: read in the worker
    assert reader.starts == 0
    await read_as_the_worker(reader, 0)
    reader.taken(50, full=100)  # behind: the helper starts
    assert reader.starts == 1
    started(reader)
    assert reader.starts == 1


@pytest.mark.asyncio
async def test_turned_off_no_helper_is_started() -> None:
    reader = BatchReader(CATALOGUE, in_process=True)
    reader.start()
    await read_as_the_worker(reader, 0)
    assert reader.helper_pid is None and reader.starts == 0
    await reader.close()


def test_the_helper_exits_when_the_worker_is_gone() -> None:
    """A killed worker's pipes close: the helper sees its stdin end and exits."""
    helper = subprocess.Popen(BatchReader.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert helper.stdin is not None and helper.stdout is not None
    batch_reader._write_frame(helper.stdin, CATALOGUE)
    assert batch_reader._read_frame(helper.stdout) == "ready"
    assert helper.poll() is None  # waiting for a batch
    helper.stdin.close()
    assert helper.wait(timeout=60) == 0
