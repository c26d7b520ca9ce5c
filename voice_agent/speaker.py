"""The speaker: a sounddevice output stream fed from a buffer that can be emptied at once.

The callback pulls from the buffer under a lock and plays silence when it is
empty, so `stop()` (barge-in) silences the output within one block. Each
chunk is placed on the input clock when queued, so the agent knows where its
words play and which of them were heard.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import soxr

from .audio_out import Placed
from .devices import pick_rate, sounddevice, start_stream, stop_stream
from .events import SAMPLE_RATE, AudioChunk
from .microphone import MicClock

log = logging.getLogger(__name__)


class Speaker:
    def __init__(self, device: int | None, preferred_rate: int, clock: MicClock, block_ms: int = 20) -> None:
        self.device = device
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
