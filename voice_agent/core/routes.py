"""The streaming core: a bus of events and routes that process them.

    bus = Bus()
    bus.on(Transcript).interrupt_on(UserStartedSpeaking, handler=on_cut).stream(reply).broadcast()
    bus.on(AudioChunk).map(speaker.play)
    async with bus:
        await bus.publish(Transcript(...))

A route is a chain of steps applied to each event it selects:

- `map(fn)`       replace the value (returning None drops it)
- `filter(pred)`  keep it only if `pred` is true
- `stream(gen)`   run an async generator; each yielded chunk goes through the
                  rest of the route the moment it is yielded
- `broadcast()`   publish the value on the bus so other routes receive it
- `interrupt_on(E, handler=...)` cancel the run in progress when an `E` is
                  published, drop queued events, then call `handler(e)`

Each route handles its events one at a time, in order, through a bounded
mailbox, so routes that feed routes keep their order and apply backpressure.
Interruption is delivered as `CancelledError` at the await the run is parked
on, so an async generator stops between chunks and its `finally` runs.
All tasks live inside the bus's `TaskGroup`: none outlives `async with bus`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from ._compat import TaskGroup
from .events import ErrorEvent

log = logging.getLogger(__name__)

T = TypeVar("T")
Handler = Callable[[Any], Awaitable[None] | None]


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def _call(fn: Callable[[Any], Any], arg: Any) -> Any:
    return await _maybe_await(fn(arg))


@dataclass(frozen=True)
class _Step:
    kind: str  # "map" | "filter" | "stream" | "broadcast"
    fn: Callable[..., Any] | None = None


@dataclass(frozen=True)
class _Interrupted:
    """Mailbox marker: the worker calls the interrupt handler with `event`."""

    event: Any
    handler: Handler | None


class Route:
    def __init__(self, bus: Bus, event_types: tuple[type, ...], maxsize: int) -> None:
        self._bus = bus
        self._types = event_types
        self._steps: list[_Step] = []
        self._interrupts: list[tuple[tuple[type, ...], Handler | None]] = []
        self._mailbox: asyncio.Queue[Any] = asyncio.Queue(maxsize)
        self._run: asyncio.Task[None] | None = None
        self._pending = 0  # events queued or being processed
        self.name = "+".join(t.__name__ for t in event_types)

    # --- building -----------------------------------------------------------

    def map(self, fn: Callable[[Any], Any]) -> Route:
        self._steps.append(_Step("map", fn))
        return self

    def filter(self, pred: Callable[[Any], Any]) -> Route:
        self._steps.append(_Step("filter", pred))
        return self

    def stream(self, gen: Callable[[Any], AsyncIterator[Any]]) -> Route:
        self._steps.append(_Step("stream", gen))
        return self

    def broadcast(self) -> Route:
        self._steps.append(_Step("broadcast"))
        return self

    def interrupt_on(self, *event_types: type, handler: Handler | None = None) -> Route:
        self._interrupts.append((event_types, handler))
        return self

    def named(self, name: str) -> Route:
        self.name = name
        return self

    # --- running ------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """Something is queued or being processed."""
        return self._pending > 0

    async def _put(self, item: Any) -> None:
        self._pending += 1
        self._bus._check_idle()
        try:
            await self._mailbox.put(item)
        except BaseException:
            self._done_with(1)
            raise

    def _put_nowait(self, item: Any) -> None:
        self._mailbox.put_nowait(item)
        self._pending += 1
        self._bus._check_idle()

    def _done_with(self, n: int) -> None:
        self._pending -= n
        self._bus._check_idle()

    def _selects(self, event: Any) -> bool:
        return isinstance(event, self._types)

    def _interrupt_if(self, event: Any) -> None:
        """Called synchronously by `Bus.publish`, before any route gets `event`."""
        for types, handler in self._interrupts:
            if not isinstance(event, types):
                continue
            dropped = 0
            while not self._mailbox.empty():
                self._mailbox.get_nowait()
                dropped += 1
            self._done_with(dropped)
            active = self._run is not None and not self._run.done()
            if active:
                self._run.cancel()
            if active or dropped:
                log.debug("route %s interrupted by %s (%d queued dropped)", self.name, event, dropped)
                self._put_nowait(_Interrupted(event, handler))
            return

    async def _worker(self) -> None:
        while True:
            item = await self._mailbox.get()
            try:
                if isinstance(item, _Interrupted):
                    if item.handler is not None:
                        await self._guarded(_call(item.handler, item.event))
                    continue
                self._run = asyncio.create_task(self._guarded(self._apply(item, 0)), name=f"route:{self.name}")
                try:
                    # asyncio.wait never raises the child's CancelledError, so an
                    # interrupted run and a cancelled worker stay distinguishable.
                    await asyncio.wait({self._run})
                finally:
                    if not self._run.done():
                        self._run.cancel()
                        await asyncio.wait({self._run})
            finally:
                self._done_with(1)

    async def _guarded(self, aw: Awaitable[Any]) -> None:
        """A failing step is logged and reported; the route and session go on."""
        try:
            await aw
        except Exception as exc:  # noqa: BLE001 - one bad event must not end the session
            log.exception("route %s failed: %s", self.name, exc)
            self._bus.publish_nowait(ErrorEvent(where=self.name, message=f"{type(exc).__name__}: {exc}"))

    async def _apply(self, value: Any, i: int) -> None:
        while i < len(self._steps):
            step = self._steps[i]
            i += 1
            if step.kind == "map":
                value = await _maybe_await(step.fn(value))
                if value is None:
                    return
            elif step.kind == "filter":
                if not await _maybe_await(step.fn(value)):
                    return
            elif step.kind == "broadcast":
                await self._bus.publish(value)
            elif step.kind == "stream":
                agen = step.fn(value)
                try:
                    async for chunk in agen:
                        await self._apply(chunk, i)
                finally:
                    await agen.aclose()
                return


class Bus:
    """Routes events to routes. Use as `async with bus:` to run the routes."""

    def __init__(self, mailbox_size: int = 256) -> None:
        self._routes: list[Route] = []
        self._mailbox_size = mailbox_size
        self._tg: TaskGroup | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._idle = asyncio.Event()
        self._idle.set()
        self._taps: list[Callable[[Any], None]] = []
        self._spawned: set[asyncio.Task[Any]] = set()
        self._parked = 0  # routes waiting for input only new events can bring (see `wait_outside`)

    def on(self, *event_types: type) -> Route:
        route = Route(self, event_types, self._mailbox_size)
        self._routes.append(route)
        if self._tg is not None:
            self._start(route)
        return route

    def _start(self, route: Route) -> None:
        assert self._tg is not None
        self._workers.append(self._tg.create_task(route._worker(), name=f"worker:{route.name}"))

    def spawn(self, coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        """A task owned by the bus (work that may outlive the route that began it, like a
        tool call finishing after a barge-in); cancelled when the bus ends."""
        assert self._tg is not None, "the bus is not running"
        task = self._tg.create_task(coro, name=name)
        self._spawned.add(task)
        task.add_done_callback(self._spawned.discard)
        return task

    def _check_idle(self) -> None:
        if sum(1 for r in self._routes if r._pending) <= self._parked:
            self._idle.set()
        else:
            self._idle.clear()

    async def wait_outside(self, awaitable: Awaitable[T]) -> T:
        """Await what only new input can bring (a speculative reply's tool waits for
        the turn to end, which takes more frames): meanwhile the route waiting here
        counts as idle, so `drain` returns instead of waiting for itself."""
        self._parked += 1
        self._check_idle()
        try:
            return await awaitable
        finally:
            self._parked -= 1
            self._check_idle()

    def tap(self, fn: Callable[[Any], None]) -> None:
        """Observe every published event synchronously (logging, tests, metrics)."""
        self._taps.append(fn)

    @property
    def idle(self) -> bool:
        return self._idle.is_set()

    def _announce(self, event: Any) -> list[Route]:
        """Interrupts and taps, then the routes that take `event`.

        Interrupts go first and synchronously, so no route can act on a
        stale event between the interruption and its delivery.
        """
        for route in self._routes:
            route._interrupt_if(event)
        for fn in self._taps:
            fn(event)
        return [route for route in self._routes if route._selects(event)]

    async def publish(self, event: Any) -> None:
        for route in self._announce(event):
            await route._put(event)

    def publish_nowait(self, event: Any) -> None:
        """Publish from synchronous code; an event for a full mailbox is dropped and logged."""
        for route in self._announce(event):
            try:
                route._put_nowait(event)
            except asyncio.QueueFull:
                log.warning("route %s mailbox full, dropped %s", route.name, type(event).__name__)

    async def __aenter__(self) -> Bus:
        self._tg = TaskGroup()
        await self._tg.__aenter__()
        for route in self._routes:
            self._start(route)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._tg is not None
        for task in [*self._workers, *self._spawned]:
            task.cancel()
        tg, self._tg, self._workers = self._tg, None, []
        await tg.__aexit__(*exc)

    async def drain(self) -> None:
        """Wait until every published event has been fully processed by every route."""
        await self._idle.wait()
