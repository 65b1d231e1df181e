"""Pins every private Faust/aiokafka attribute parkpulse reaches (streams/faust_internals.py).

faust-streaming and aiokafka are pinned in pyproject.toml; a new version that renames or moves
one of these attributes fails here, before a worker quietly loses its lag gauge, its status
sends, its fetch bound or its commit guard. The fetch bound is also shown to take on a real
broker (tests/test_fetch_bound.py), and the rest run in every integration test.
"""

from __future__ import annotations

import inspect
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.consumer.fetcher import Fetcher
from aiokafka.consumer.group_coordinator import GroupCoordinator
from faust.exceptions import ConsumerNotStarted, NotReady
from faust.transport.consumer import Consumer

from parkpulse.streams.faust_internals import (
    bound_fetches,
    committed_offsets,
    group_member_id,
    replace_commits,
    running_producer,
)


@pytest.fixture
def app() -> faust.App:
    # Nothing here connects: the consumer and producer are made but never started.
    return faust.App("pin", broker="kafka://127.0.0.1:1", autodiscover=False)


def test_the_running_producer_is_faust_s_aiokafka_producer(app: faust.App) -> None:
    with pytest.raises(NotReady):  # the method exists and guards an unstarted producer
        running_producer(app)
    app.producer._producer = sentinel = object.__new__(AIOKafkaProducer)
    assert running_producer(app) is sentinel


def test_committed_offsets_are_the_consumer_s_and_faust_updates_them(app: faust.App) -> None:
    offsets = committed_offsets(app)
    assert offsets is app.consumer._committed_offset
    assert offsets.get("never-assigned") is None
    # Faust records what it committed there (not only on start): the lag gauge relies on it.
    source = inspect.getsource(Consumer)
    assert "self._committed_offset.update(committable_offsets)" in source


def test_the_fetch_bound_reaches_the_fetcher_of_faust_s_consumer_thread(app: faust.App) -> None:
    thread = app.consumer._thread
    with pytest.raises(ConsumerNotStarted):  # the path exists, and guards an unstarted thread
        bound_fetches(app, 1 << 20, 100)
    fetcher = SimpleNamespace(_fetch_max_bytes=50 << 20, _fetch_max_wait_ms=1500)
    thread._consumer = SimpleNamespace(_fetcher=fetcher)
    assert bound_fetches(app, 1 << 20, 100) is True
    assert (fetcher._fetch_max_bytes, fetcher._fetch_max_wait_ms) == (1 << 20, 100)
    # A started aiokafka consumer has that fetcher, which keeps the bound there and sends it
    # in each fetch request.
    assert "self._fetcher = Fetcher(" in inspect.getsource(AIOKafkaConsumer.start)
    for name in ("fetch_max_bytes", "fetch_max_wait_ms"):
        assert f"self._{name} = {name}" in inspect.getsource(Fetcher.__init__)
        assert f"self._{name}," in inspect.getsource(Fetcher)


def test_the_member_id_is_the_group_coordinator_s_of_faust_s_consumer(app: faust.App) -> None:
    with pytest.raises(ConsumerNotStarted):  # the path exists, and guards an unstarted thread
        group_member_id(app)
    app.consumer._thread._consumer = SimpleNamespace(
        _coordinator=SimpleNamespace(member_id="faust-0.15.3-abc")
    )
    assert group_member_id(app) == "faust-0.15.3-abc"
    # A started aiokafka consumer in a group has that coordinator, which keeps the member id
    # the broker gave it there.
    assert "self._coordinator = GroupCoordinator(" in inspect.getsource(AIOKafkaConsumer)
    assert "self.member_id = " in inspect.getsource(GroupCoordinator)


@pytest.mark.asyncio
async def test_commits_and_agent_errors_go_through_what_replaced_them(app: faust.App) -> None:
    calls: list[Any] = []

    async def commit(*args: Any, **kwargs: Any) -> bool:
        calls.append("commit")  # holds every commit, as CommitGuard does while stopping
        return False

    async def on_task_error(exc: BaseException) -> None:
        calls.append(exc)

    consumer = app.consumer
    original = replace_commits(consumer, commit, on_task_error)
    assert original.__func__ is type(consumer).commit  # type: ignore[attr-defined]
    # Faust's own paths look both up on the instance: an agent error reaches ours …
    boom = RuntimeError("boom")
    await app._on_agent_error(None, boom)  # type: ignore[arg-type]
    # … and so does the consumer's commit on shutdown (its periodic commit calls the same).
    await consumer.commit_and_end_transactions()
    assert calls == [boom, "commit"]
    assert "await self.commit()" in inspect.getsource(Consumer)
