"""The speaker: a sounddevice output stream fed from a buffer that can be emptied at once.

The callback pulls from the buffer under a lock and plays silence when it is
empty, so `stop()` (barge-in) silences the output within one block. Each
chunk is placed on the input clock when queued, so the agent knows where its
words play and which of them were heard.

The callback runs all the time (silence when there is nothing to say), so a
speaker whose `played_samples` stops moving has died (unplugged, suspended):
`watch()` notices, drops what was queued (it would play late) and reopens
the stream until audio flows again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import soxr

from ..core.events import SAMPLE_RATE, AudioChunk
from ..core.timeline import Placed
from .devices import AudioDeviceError, pick_rate, sounddevice, start_stream, stop_stream
from .microphone import MicClock

log = logging.getLogger(__name__)


class Speaker:
    def __init__(
        self,
        device: int | None,
        preferred_rate: int,
        clock: MicClock,
        block_ms: int = 20,
        on_status: Callable[[str], None] = lambda msg: log.warning(msg),
        stall_s: float = 1.0,
    ) -> None:
        self.device = device
        self.on_status = on_status
        self.stall_s = stall_s
        self._seen_played = 0
        self._moved_at = time.monotonic()
        self._stalled = False
        self._back_at = 0  # played_samples at which a reopened speaker counts as back
        self._retry_at = 0.0
        self.clock = clock
        self.rate = pick_rate(device, "output", preferred_rate)
        self.block = self.rate * block_ms // 1000
        self.underruns = 0
        self.played_samples = 0
        self._lock = threading.Lock()
        self._queue: deque[np.ndarray] = deque()  # int16 blocks still to play
        self._queued = 0
        self._stream: Any = None
        self.on_played: Callable[[np.ndarray], None] | None = None  # the echo canceller's reference

    def open(self) -> None:
        sd = sounddevice()
        self._stream = start_stream(
            lambda: sd.OutputStream(
                device=self.device,
                samplerate=self.rate,
                channels=1,
                dtype="int16",
                blocksize=self.block,
                callback=self._callback,
            ),
            "speaker",
        )
        self._moved_at = time.monotonic()  # a new stream gets its time to start

    def close(self) -> None:
        stream, self._stream = self._stream, None
        stop_stream(stream, "speaker")

    def _callback(self, outdata: np.ndarray, frames: int, time: Any, status: Any) -> None:
        if status.output_underflow:
            self.underruns += 1
        out = outdata[:, 0]
        filled = 0
        with self._lock:
            while filled < frames and self._queue:
                head = self._queue[0]
                n = min(len(head), frames - filled)
                out[filled : filled + n] = head[:n]
                filled += n
                if n == len(head):
                    self._queue.popleft()
                else:
                    self._queue[0] = head[n:]
            self._queued -= filled
        out[filled:] = 0
        self.played_samples += frames
        if self.on_played is not None:
            self.on_played(out)

    def watch(self) -> None:
        """Called often from the event loop (each microphone frame): reopen a speaker that stopped."""
        now = time.monotonic()
        played = self.played_samples
        if played != self._seen_played:
            self._seen_played, self._moved_at = played, now
            if self._stalled and played >= self._back_at:
                self._stalled = False
                self.on_status("the speaker is back")
            return
        if now - self._moved_at < self.stall_s or now < self._retry_at:
            return
        if not self._stalled:
            self._stalled = True
            self.on_status("the speaker stopped playing (unplugged?); reopening it")
            self.stop()  # what was queued would play late
        self._retry_at = now + 2 * self.stall_s
        self.close()
        try:
            self.open()
        except AudioDeviceError as exc:
            log.debug("speaker still unavailable: %s", exc)
        # A few callbacks fill a fresh stream's buffer even if the device is still gone.
        self._back_at = self.played_samples + int(self.rate * self.stall_s)

    def play(self, chunk: AudioChunk) -> Placed:
        samples = chunk.samples
        if chunk.sample_rate != self.rate:
            samples = soxr.resample(samples.astype(np.float32) / 32768, chunk.sample_rate, self.rate)
            samples = (np.clip(samples, -1, 1) * 32767).astype(np.int16)
        with self._lock:
            start = self.clock.now() + self._queued * SAMPLE_RATE // self.rate
            self._queue.append(samples)
            self._queued += len(samples)
        end = start + len(samples) * SAMPLE_RATE // self.rate
        return Placed(start, end, chunk)

    def playing(self) -> bool:
        with self._lock:
            return self._queued > 0

    def stop(self) -> int:
        """Drop everything not yet played; the next callback block is silent."""
        with self._lock:
            self._queue.clear()
            self._queued = 0
        return self.clock.now()
