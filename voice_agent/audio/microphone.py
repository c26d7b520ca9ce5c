"""The microphone: a sounddevice input stream as 16 kHz frames on the input clock.

The PortAudio callback only copies the block and hands it to the event loop;
resampling and framing happen on the loop. If the device stops delivering
audio (unplugged, taken away), `frames()` reports it and keeps trying to
reopen it, so the conversation survives.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import soxr

from ..core._compat import timeout
from ..core.events import SAMPLE_RATE
from .devices import AudioDeviceError, pick_rate, sounddevice, start_stream, stop_stream
from .stream_time import StreamTime

log = logging.getLogger(__name__)


class MicClock:
    """The live input clock: samples captured so far (at 16 kHz).

    It also knows when each position was in the air (`air`, from the input
    stream's ADC times), so the speaker can place what it plays on this clock
    by when it really comes out, not when it is queued.
    """

    def __init__(self) -> None:
        self.position = 0
        self.air = StreamTime(SAMPLE_RATE)  # input position <-> PortAudio stream time

    def now(self) -> int:
        return self.position

    def position_at(self, stream_time: float) -> int | None:
        """The input position captured at `stream_time` (None until the microphone runs)."""
        return self.air.sample_at(stream_time)


class Microphone:
    def __init__(
        self,
        device: int | None,
        frame_len: int,
        clock: MicClock,
        on_status: Callable[[str], None] = lambda msg: log.warning(msg),
        stall_s: float = 1.0,
        max_queue_blocks: int = 200,
    ) -> None:
        self.device = device
        self.frame_len = frame_len
        self.clock = clock
        self.on_status = on_status
        self.stall_s = stall_s
        self.overruns = 0  # blocks the device or our queue lost
        self._queue: asyncio.Queue[np.ndarray] = asyncio.Queue(max_queue_blocks)
        self._stream: Any = None
        self._resampler: Any = None
        self._pending = np.zeros(0, np.float32)
        self.rate = SAMPLE_RATE

    def open(self) -> None:
        sd = sounddevice()
        loop = asyncio.get_running_loop()
        self.rate = pick_rate(self.device, "input", SAMPLE_RATE)
        self._resampler = None if self.rate == SAMPLE_RATE else soxr.ResampleStream(self.rate, SAMPLE_RATE, 1, dtype="float32")

        def handoff(block: np.ndarray) -> None:
            try:
                self._queue.put_nowait(block)
            except asyncio.QueueFull:
                self.overruns += 1

        # Input positions this stream's samples get: after what was captured so far.
        base = self.clock.position + len(self._pending)
        captured = 0
        self.clock.air.reset()

        def callback(indata: np.ndarray, frames: int, time: Any, status: Any) -> None:
            nonlocal captured
            if status.input_overflow:
                self.overruns += 1
                self.clock.air.reset()  # samples were lost: the old times no longer fit the count
            self.clock.air.stamp(base + captured * SAMPLE_RATE // self.rate, time.inputBufferAdcTime)
            captured += frames
            loop.call_soon_threadsafe(handoff, indata[:, 0].copy())

        self._stream = start_stream(
            lambda: sd.InputStream(
                device=self.device,
                samplerate=self.rate,
                channels=1,
                dtype="float32",
                blocksize=int(self.rate * 0.02),
                callback=callback,
            ),
            "microphone",
        )

    def close(self) -> None:
        stream, self._stream = self._stream, None
        stop_stream(stream, "microphone")

    async def frames(self) -> AsyncIterator[tuple[int, np.ndarray]]:
        self.open()
        started = False
        try:
            while True:
                # Some backends take over a second to deliver the first block.
                block = await self._next_block(self.stall_s if started else 5 * self.stall_s)
                if block is None:
                    block = await self._recover()
                if not started:
                    started = True
                    self.on_status(f"listening (microphone at {self.rate} Hz)")
                for frame in self._reframe(block):
                    position = self.clock.position
                    self.clock.position += len(frame)
                    yield position, frame
        finally:
            self.close()

    def _reframe(self, block: np.ndarray) -> list[np.ndarray]:
        if self._resampler is not None:
            block = self._resampler.resample_chunk(block)
        self._pending = np.concatenate([self._pending, block])
        n = len(self._pending) // self.frame_len
        frames = [self._pending[i * self.frame_len : (i + 1) * self.frame_len] for i in range(n)]
        self._pending = self._pending[n * self.frame_len :]
        return frames

    async def _next_block(self, seconds: float) -> np.ndarray | None:
        """The next block, or None if none came in time. (Not `asyncio.wait_for`: before
        Python 3.12 it can swallow a Ctrl-C that lands as a block arrives, and the
        session would not end.)"""
        try:
            async with timeout(seconds):
                return await self._queue.get()
        except TimeoutError:
            return None

    async def _recover(self) -> np.ndarray:
        """Wait for audio to flow again, reopening the stream when it has died."""
        self.on_status("the microphone stopped delivering audio (unplugged?); waiting for it to come back")
        waited = 0
        while True:
            waited += 1
            if self._stream is None or not self._stream.active or waited % 5 == 0:
                self.close()
                try:
                    self.open()
                except AudioDeviceError as exc:
                    log.debug("microphone still unavailable: %s", exc)
            block = await self._next_block(self.stall_s)
            if block is None:
                continue
            self.on_status("the microphone is back")
            return block
