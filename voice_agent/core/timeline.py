"""The one audio clock, and the edges that live on it.

Every event carries a sample position on the input's 16 kHz clock. Sources
stamp frames with it; sinks place the agent's audio on it and say how far
they have played. So latency is a subtraction, and "which words were heard"
is a lookup of the played position against each piece's span.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .events import SAMPLE_RATE, AudioChunk


class Clock(Protocol):
    def now(self) -> int:
        """The current position on the input clock, in samples at 16 kHz."""
        ...


class WallClock:
    """Real-time pace: position follows the monotonic clock from `start()`."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def start(self) -> None:
        self.t0 = time.monotonic()

    def now(self) -> int:
        return int((time.monotonic() - self.t0) * SAMPLE_RATE)

    async def advance(self, position: int) -> None:
        """Return when the clock reaches `position` (real-time pacing)."""
        delay = self.t0 + position / SAMPLE_RATE - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing to the audio clock, not a race


class FrameClock:
    """Faster than real time: position is what the source has fed so far."""

    def __init__(self) -> None:
        self.position = 0

    def now(self) -> int:
        return self.position

    async def advance(self, position: int) -> None:
        self.position = position


@dataclass
class Placed:
    """Where a sink will play a chunk of the agent's audio, on the input clock."""

    start: int  # input-clock position where this audio starts playing
    end: int
    chunk: AudioChunk
    planned_end: int = 0  # where it would have ended had it not been cut off

    def __post_init__(self) -> None:
        self.planned_end = self.planned_end or self.end


class Source(Protocol):
    """The user's audio: `frames()` yields (position on the input clock, 16 kHz mono float32 frame)."""

    def frames(self) -> AsyncIterator[tuple[int, np.ndarray]]: ...


class Sink(Protocol):
    """The agent's voice: `play` places a chunk (after what is queued), `playing` says whether
    audio is still to be heard, `stop` silences it at once (barge-in) and returns where."""

    def play(self, chunk: AudioChunk) -> Placed: ...

    def playing(self) -> bool: ...

    def stop(self) -> int: ...
