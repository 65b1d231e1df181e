"""Registration batches read in a process of their own, while the worker counts the last one.

The registrations stage was bound by one interpreter lock: decoding and validating a batch
(``read_batch``, ~3 µs a registration) took it as long as everything else the worker does per
registration together (Faust's fetching, de-duplication, the insert's encoding). ``read_batch``
is pure, so a helper process (``python -m parkpulse.streams.batch_reader``) runs it on the
machine's other core and hands the batch back as a block ready to insert
(schemas/registration_block.py: the Native columns, the ids' hashes, the codes), so the worker
makes no Python object per registration; the stage reads batch N+1 there while it counts and
writes batch N (streams/registrations_stage.py).

The two talk over the helper's stdin and stdout, one pickle each way per batch (the catalogue
first), on a thread of the worker's own. The helper is started by a batch at
least half full (a backlog or a burst; a trickle is read in the worker, where a helper would
only idle out) and stopped after IDLE_STOP seconds without one, its memory freed. Nothing
depends on it: a batch is read in the worker as before (the same registrations and dead
letters) until it has started, after it died (another is started until MAX_FAILURES have been
lost) and when it is turned off (``PARKPULSE_READER_PROCESS=false``). It ignores Ctrl-C and
SIGTERM (the worker stops it) and exits when its stdin closes, so a killed worker leaves none.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, BinaryIO

from parkpulse.logs import get_logger, log_event
from parkpulse.memory import trim, tune_collector, tune_malloc
from parkpulse.schemas.catalogue import Catalogue
from parkpulse.schemas.records import DeadLetter
from parkpulse.schemas.registration import RegistrationColumns
from parkpulse.schemas.registration_block import RegistrationBlock
from parkpulse.streams.registrations import Batch, Message, read_batch

log = get_logger("registrations")

HELPER_MODULE = __name__  # run as ``python -m``: how the bench finds the helper, too
MAX_FAILURES = 3  # helpers lost in a worker's life; past that, batches are read in the worker
IDLE_STOP = 10.0  # seconds without a batch after which the helper is stopped (its memory freed)
START_TIMEOUT = 60.0  # seconds for a helper to answer that it is ready
READ_CHUNK = 50  # messages the helper reads and encodes at a time
_LOST = (OSError, EOFError, pickle.UnpicklingError)  # the helper died, or its answer did


class BatchReader:
    """``read``: a batch of registration messages read, in the helper process when it runs.

    The helper's pipes are written and read on a thread of their own (``_io``), one exchange
    after the other, so the event loop goes on (Faust fetching the next batch) while a batch
    travels.
    """

    command: tuple[str, ...] = (sys.executable, "-P", "-m", HELPER_MODULE)

    def __init__(self, catalogue: Catalogue, *, in_process: bool = False) -> None:
        self.catalogue = catalogue
        self.in_process = in_process
        self.starts = 0
        self.failures = 0
        self.read_in_helper = 0  # batches, for the logs and the tests
        self._helper: subprocess.Popen[bytes] | None = None  # set once it answered
        self._used = time.monotonic()  # the last batch
        self._starting: asyncio.Future[None] | None = None
        self._closed = False
        self._io = ThreadPoolExecutor(1, thread_name_prefix="reader-io")
        self._lock = asyncio.Lock()  # one batch at a time through the pipes, in order

    @property
    def helper_pid(self) -> int | None:
        return self._helper.pid if self._helper is not None else None

    def taken(self, messages: int, full: int) -> None:
        """A batch of ``messages`` was taken, of at most ``full``. One at least half full means
        the stream is behind (a backlog, a burst: a take ends when it is full or after its
        wait, and a backlog's takes are cut by the wait too when fetching is slow): the helper is
        started. A trickle is read in the worker, where a helper would only idle out."""
        if 2 * messages >= full:
            self.start()

    def start(self) -> None:
        """Start the helper in the background (reads go on in the worker until it is up)."""
        self._used = time.monotonic()
        if self.in_process or self._closed or self._helper is not None:
            return
        if self.failures < MAX_FAILURES and (self._starting is None or self._starting.done()):
            self.starts += 1
            self._starting = asyncio.get_running_loop().run_in_executor(self._io, self._start)

    def _start(self) -> None:
        """On the I/O thread: start a helper and hand it the catalogue."""
        try:
            helper = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        except OSError as exc:
            self._failed("reader_process_failed", exc)
            return
        deadline = threading.Timer(START_TIMEOUT, helper.kill)  # a silent one does not hang us
        deadline.start()
        try:
            if _exchange(helper, self.catalogue) != "ready":
                raise EOFError("the reader process did not start")
        except Exception as exc:  # batches are read in the worker meanwhile
            _stop(helper)
            self._failed("reader_process_failed", exc)
            return
        finally:
            deadline.cancel()
        self._helper = helper
        log_event(log, "reader_process_started", pid=helper.pid)

    def _failed(self, event: str, exc: BaseException) -> None:
        self.failures += 1
        log_event(log, event, error=str(exc) or type(exc).__name__, failures=self.failures)

    async def read(self, messages: Sequence[Message], now: datetime) -> Batch:
        """The batch as ``read_batch`` reads it."""
        async with self._lock:
            self._used = time.monotonic()
            helper = self._helper
            if helper is None:
                return read_batch(messages, self.catalogue, now)
            loop = asyncio.get_running_loop()
            request = [list(messages), now]  # a list: the helper lets go of its parts
            try:
                batch = await loop.run_in_executor(self._io, _read_in, helper, request)
            except _LOST as exc:
                self._lost(helper)
                self._failed("reader_process_lost", exc)
                self.start()  # another, for the batches after this one
                return read_batch(messages, self.catalogue, now)
            except BaseException:  # cancelled mid-batch: its answer would be read as the next
                self._lost(helper)
                raise
        self.read_in_helper += 1
        return batch

    def _lost(self, helper: subprocess.Popen[bytes]) -> None:
        self._helper = None
        helper.kill()
        if not self._closed:
            self._io.submit(_stop, helper)  # its pipes closed and itself reaped, on the I/O thread

    async def stop_idle(self, idle: float = IDLE_STOP) -> None:
        """Stop a helper that has read nothing for ``idle`` seconds, so its memory is not held
        while no registrations come (the next batch starts another)."""
        if self._helper is not None and time.monotonic() - self._used >= idle:
            await self._retire(idle)

    async def close(self) -> None:
        """Stop the helper for good (it exits once its stdin closes); reads from here on are
        done in the worker."""
        self._closed = True
        if self._starting is not None:
            await asyncio.gather(self._starting, return_exceptions=True)
        await self._retire()
        self._io.shutdown(wait=False, cancel_futures=True)

    async def _retire(self, idle: float | None = None) -> None:
        """Stop the helper, unless it read within ``idle`` seconds (a batch may have come while
        the lock was awaited); it is waited for outside the lock."""
        async with self._lock:
            if idle is not None and time.monotonic() - self._used < idle:
                return
            helper, self._helper = self._helper, None
        if helper is not None:
            await asyncio.get_running_loop().run_in_executor(self._io, _stop, helper)
            log_event(log, "reader_process_stopped", pid=helper.pid)


def _read_in(helper: subprocess.Popen[bytes], request: list[Any]) -> Batch:
    block, dead = _exchange(helper, request)
    return Batch(block, dead)


def _exchange(helper: subprocess.Popen[bytes], request: Any) -> Any:
    """Send one request, wait for its answer (EOFError: the helper is gone)."""
    assert helper.stdin is not None and helper.stdout is not None
    _write_frame(helper.stdin, request)
    answer = _read_frame(helper.stdout)
    if answer is None:
        raise EOFError(f"the reader process exited ({helper.poll()})")
    return answer


def _stop(helper: subprocess.Popen[bytes]) -> None:
    """Close the helper's pipes (it exits at the end of its stdin) and reap it."""
    for pipe in (helper.stdin, helper.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()
    try:
        helper.wait(5)
    except subprocess.TimeoutExpired:
        helper.kill()
        helper.wait()


# -- the helper process -------------------------------------------------------------------


def serve(requests: io.BufferedReader, answers: BinaryIO) -> None:
    """Read batches until ``requests`` ends: the catalogue first, then (messages, now) pairs,
    each answered with the batch's registrations as a block and its dead letters."""
    catalogue = _read_frame(requests)
    if catalogue is None:  # the worker went away before it began
        return
    if not isinstance(catalogue, Catalogue):
        raise SystemExit("the reader process expects a catalogue first")
    tune_malloc()  # as the worker: freed batches go back to the system
    tune_collector()
    _write_frame(answers, "ready")
    while (request := _read_frame(requests)) is not None:
        _write_frame(answers, _answer(request, catalogue))
        del request  # nothing of a batch is held while waiting for the next
        trim()


def _answer(request: list[Any], catalogue: Catalogue) -> Any:
    """The block and dead letters of a request's batch, read READ_CHUNK messages at a time:
    each chunk's messages and texts are let go of once it is a block, so the reader holds a
    fraction of a batch's texts at once (its peak was ~45 MB above its idle size at 200
    messages a batch)."""
    messages, now = request
    request.clear()  # a list, so that its messages can go
    chunks = [messages[i : i + READ_CHUNK] for i in range(0, len(messages), READ_CHUNK)]
    del messages
    blocks: list[RegistrationBlock] = []
    dead: list[DeadLetter] = []
    for i, chunk in enumerate(chunks):
        chunks[i] = []
        batch = read_batch(chunk, catalogue, now)
        del chunk
        blocks.append(RegistrationBlock.of(batch.registrations))
        dead += batch.deadletters
        del batch
    return RegistrationBlock.concat(blocks or [RegistrationBlock.of(RegistrationColumns())]), dead


def _read_frame(stream: io.BufferedReader) -> Any:
    """The next value, or None at the end of the stream (EOFError or UnpicklingError: it ended
    inside one). Unpickled as it comes, so a batch's messages (~15 MB) are not first read into
    a buffer of their own."""
    if not stream.peek(1):
        return None  # the other side closed the pipe (or is gone)
    return pickle.load(stream)


def _write_frame(stream: BinaryIO, value: Any) -> None:
    """Pickled straight into the pipe (a message's bytes are written as they are)."""
    pickle.dump(value, stream, protocol=5)
    stream.flush()


def main() -> None:
    # Ctrl-C or a stop of the whole process group reaches the worker, which stops this.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a stray print cannot garble an answer
    with contextlib.suppress(BrokenPipeError, EOFError):  # the worker went away mid-batch
        serve(sys.stdin.buffer, answers)


if __name__ == "__main__":
    main()
