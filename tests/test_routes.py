"""The streaming core: ordering, broadcast timing, interruption, cleanup."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from voice_agent.core.events import ErrorEvent
from voice_agent.core.routes import Bus
from voice_agent.testing import LeakedTasks, no_leaked_tasks


@dataclass(frozen=True)
class Ask:
    n: int


@dataclass(frozen=True)
class Chunk:
    text: str


@dataclass(frozen=True)
class Stop:
    pass


async def count_up(ask: Ask):
    for i in range(ask.n):
        yield Chunk(f"{ask.n}:{i}")


async def test_map_filter_stream_keep_order() -> None:
    seen: list[str] = []
    async with no_leaked_tasks():
        bus = Bus()
        bus.on(Ask).filter(lambda a: a.n != 2).map(lambda a: Ask(a.n * 1)).stream(count_up).map(
            lambda c: seen.append(c.text)
        )
        async with bus:
            for n in (1, 2, 3):
                await bus.publish(Ask(n))
            await bus.drain()
    assert seen == ["1:0", "3:0", "3:1", "3:2"]


async def test_broadcast_emits_each_chunk_before_the_next_is_made() -> None:
    """A downstream route sees chunk i before the generator is asked for i+1."""
    log: list[str] = []
    downstream_saw = asyncio.Event()

    async def producer(ask: Ask):
        for i in range(3):
            log.append(f"make {i}")
            yield Chunk(str(i))
            # Parked here until the consumer has had the chunk: broadcast is immediate.
            await asyncio.wait_for(downstream_saw.wait(), timeout=5)
            downstream_saw.clear()

    def consume(c: Chunk) -> None:
        log.append(f"got {c.text}")
        downstream_saw.set()

    async with no_leaked_tasks():
        bus = Bus()
        bus.on(Ask).stream(producer).broadcast()
        bus.on(Chunk).map(consume)
        async with bus:
            await bus.publish(Ask(3))
            await bus.drain()
    assert log == ["make 0", "got 0", "make 1", "got 1", "make 2", "got 2"]


async def test_interrupt_stops_between_chunks_and_runs_finally() -> None:
    emitted: list[str] = []
    cleaned: list[str] = []
    handled: list[Stop] = []
    release = asyncio.Event()

    async def slow(ask: Ask):
        try:
            for i in range(100):
                yield Chunk(str(i))
                if i == 2:
                    await release.wait()  # stands for a network read
        finally:
            cleaned.append("closed")

    def on_chunk(c: Chunk) -> None:
        emitted.append(c.text)

    async with no_leaked_tasks():
        bus = Bus()
        bus.on(Ask).interrupt_on(Stop, handler=handled.append).stream(slow).map(on_chunk)
        async with bus:
            await bus.publish(Ask(1))
            while len(emitted) < 3:
                await asyncio.sleep(0)
            await bus.publish(Stop())
            release.set()
            await bus.drain()
    assert emitted == ["0", "1", "2"]
    assert cleaned == ["closed"]
    assert handled == [Stop()]


async def test_interrupt_drops_queued_events() -> None:
    started: list[int] = []
    gate = asyncio.Event()

    async def work(ask: Ask):
        started.append(ask.n)
        await gate.wait()
        yield Chunk("never")

    async with no_leaked_tasks():
        bus = Bus()
        bus.on(Ask).interrupt_on(Stop).stream(work)
        async with bus:
            for n in range(5):
                await bus.publish(Ask(n))
            while not started:
                await asyncio.sleep(0)
            await bus.publish(Stop())
            await bus.publish(Ask(99))
            gate.set()
            await bus.drain()
    assert started == [0, 99]


async def test_a_failing_step_is_reported_and_the_route_goes_on() -> None:
    errors: list[ErrorEvent] = []
    ok: list[int] = []

    def check(a: Ask) -> Ask:
        if a.n == 1:
            raise ValueError("bad input")
        return a

    async with no_leaked_tasks():
        bus = Bus()
        bus.on(Ask).map(check).map(lambda a: ok.append(a.n))
        bus.on(ErrorEvent).map(errors.append)
        async with bus:
            for n in (0, 1, 2):
                await bus.publish(Ask(n))
            await bus.drain()
    assert ok == [0, 2]
    assert len(errors) == 1 and "bad input" in errors[0].message


async def test_leaving_the_bus_cancels_runs_in_progress() -> None:
    cleaned = asyncio.Event()

    async def forever(ask: Ask):
        try:
            while True:
                yield Chunk("tick")
                await asyncio.Event().wait()
        finally:
            cleaned.set()

    async with no_leaked_tasks():
        bus = Bus()
        bus.on(Ask).stream(forever)
        async with bus:
            await bus.publish(Ask(1))
            await asyncio.sleep(0)
            await asyncio.sleep(0)
    assert cleaned.is_set()


async def test_no_leaked_tasks_catches_a_leak() -> None:
    stray: asyncio.Task[None] | None = None
    with pytest.raises(LeakedTasks, match="stray"):
        async with no_leaked_tasks():
            stray = asyncio.create_task(asyncio.Event().wait(), name="stray")
    assert stray is not None
    stray.cancel()
    await asyncio.wait({stray})


async def test_backpressure_bounds_the_mailbox() -> None:
    """A slow consumer makes the producer wait instead of queueing without bound."""
    max_depth = 0
    bus = Bus(mailbox_size=4)
    gate = asyncio.Event()

    async def producer(ask: Ask):
        for i in range(50):
            yield Chunk(str(i))

    async def slow_consumer(c: Chunk) -> None:
        await gate.wait()

    async with no_leaked_tasks():
        bus.on(Ask).stream(producer).broadcast()
        consumer = bus.on(Chunk).map(slow_consumer)
        async with bus:
            await bus.publish(Ask(1))
            for _ in range(20):
                await asyncio.sleep(0)
                max_depth = max(max_depth, consumer._mailbox.qsize())
            gate.set()
            await bus.drain()
    assert max_depth == 4
