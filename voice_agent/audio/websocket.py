"""Audio over a network connection: PCM16 frames in, PCM16 frames out, on the session clock.

The client's audio is the session's clock, as the microphone's is in a live
session: a frame's position is the number of 16 kHz samples received before
it (`MicClock`). The sink places the agent's audio on that clock and sends it
paced to it, a little ahead (`lead_ms`) so the client's playback never runs
dry, never seconds ahead: so "played up to" is the clock, and `stop()` (barge-in)
drops what was not sent and tells the client to drop what it has not played.

Neither class knows about WebSockets: the source is fed bytes, and the sink
hands bytes and JSON messages to a `send` callable, so both are tested alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import soxr

from ..core.events import SAMPLE_RATE, AudioChunk
from ..core.timeline import Placed
from .microphone import MicClock

Outgoing = bytes | dict[str, Any]


class StreamError(ValueError):
    """The client broke the protocol: `code` is the WebSocket close code to answer with."""

    def __init__(self, message: str, code: int = 1003) -> None:
        super().__init__(message)
        self.code = code


class PcmSource:
    """The client's voice: PCM16 frames fed as they arrive, yielded as 16 kHz frames.

    A client that sends audio faster than real time (by more than `slack_s`)
    is refused: the session clock is the client's audio, so such a client
    would run the conversation at its own pace and fill memory.
    """

    def __init__(
        self,
        frame_len: int,
        clock: MicClock,
        rate: int = SAMPLE_RATE,
        slack_s: float = 2.0,
        max_frames: int = 500,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.frame_len = frame_len
        self.clock = clock
        self.rate = rate
        self.slack_s = slack_s
        self._now = now
        self._t0: float | None = None
        self._received = 0  # samples at the client's rate
        self._pending = np.zeros(0, np.float32)
        self._resampler: Any = None
        self._queue: asyncio.Queue[np.ndarray | None] = asyncio.Queue(max_frames)

    def set_rate(self, rate: int) -> None:
        """The client's rate (its optional first message); only before any audio."""
        if self._t0 is not None:
            raise StreamError("sample_rate must come before the first audio frame")
        self.rate = rate
        self._resampler = None if rate == SAMPLE_RATE else soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32")

    def feed(self, data: bytes) -> None:
        if len(data) % 2:
            raise StreamError(f"audio frames are PCM16: {len(data)} bytes is not a whole number of samples")
        now = self._now()
        if self._t0 is None:
            self._t0 = now
        self._received += len(data) // 2
        ahead = self._received / self.rate - (now - self._t0)
        if ahead > self.slack_s:
            raise StreamError(f"audio arrives faster than real time ({ahead:.1f} s ahead)", code=1008)
        block = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768
        if self._resampler is not None:
            block = self._resampler.resample_chunk(block)
        self._pending = np.concatenate([self._pending, block])
        n = len(self._pending) // self.frame_len
        for i in range(n):
            self._put(self._pending[i * self.frame_len : (i + 1) * self.frame_len])
        self._pending = self._pending[n * self.frame_len :]

    def _put(self, frame: np.ndarray | None) -> None:
        try:
            self._queue.put_nowait(frame)
        except asyncio.QueueFull:
            # Real-time input is taken as it comes; a full queue means the session stalled.
            raise StreamError("the session cannot keep up with the audio", code=1011) from None

    def close(self) -> None:
        """No more audio: `frames()` ends after what was queued."""
        # A full queue: the reader is gone or stalled, and the session is cancelled anyway.
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)

    async def frames(self) -> AsyncIterator[tuple[int, np.ndarray]]:
        while (frame := await self._queue.get()) is not None:
            position = self.clock.position
            self.clock.position += len(frame)
            yield position, frame


class PcmSink:
    """The agent's voice to the client: placed on the session clock, sent as it comes due."""

    def __init__(self, clock: MicClock, rate: int, send: Callable[[Outgoing], None], lead_ms: int = 100) -> None:
        self.clock = clock
        self.rate = rate
        self.send = send
        self.lead = lead_ms * SAMPLE_RATE // 1000
        self.cursor = 0  # input-clock position where queued audio runs out
        self.sent_samples = 0  # at `rate`, for tests and stats
        self._due: deque[tuple[float, np.ndarray]] = deque()  # (start on the input clock, int16 at `rate`)

    def play(self, chunk: AudioChunk) -> Placed:
        samples = chunk.samples
        if chunk.sample_rate != self.rate:
            resampled = soxr.resample(samples.astype(np.float32) / 32768, chunk.sample_rate, self.rate)
            samples = (np.clip(resampled, -1, 1) * 32767).astype(np.int16)
        start = max(self.clock.now(), self.cursor)
        end = start + round(len(samples) * SAMPLE_RATE / self.rate)
        self._due.append((float(start), samples.astype("<i2")))
        self.cursor = end
        self.pump()
        return Placed(start, end, chunk)

    def pump(self) -> None:
        """Send the audio that plays before `now + lead`; call it whenever the clock moves."""
        horizon = self.clock.now() + self.lead
        out: list[np.ndarray] = []
        while self._due and self._due[0][0] < horizon:
            start, samples = self._due.popleft()
            n = min(len(samples), int(np.ceil((horizon - start) * self.rate / SAMPLE_RATE)))
            out.append(samples[:n])
            if n < len(samples):
                self._due.appendleft((start + n * SAMPLE_RATE / self.rate, samples[n:]))
                break
        if out:
            block = np.concatenate(out)
            self.sent_samples += len(block)
            self.send(block.tobytes())

    def playing(self) -> bool:
        return self.cursor > self.clock.now()

    def stop(self) -> int:
        """Barge-in: drop what was not sent, and have the client drop what it has not played."""
        now = self.clock.now()
        self._due.clear()
        if self.cursor > now:
            self.send({"type": "clear"})
        self.cursor = min(self.cursor, now)
        return now
