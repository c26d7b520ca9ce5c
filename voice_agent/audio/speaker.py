"""The speaker: a sounddevice output stream fed from a buffer that can be emptied at once.

The callback pulls from the buffer under a lock and plays silence when it is
empty, so `stop()` (barge-in) empties it at once; what the device already
holds still plays. Each chunk is placed on the input clock by when it will
really come out of the speaker: its sample number in the stream, the stream's
DAC times (`StreamTime`) and the microphone's ADC times (`MicClock`). A sound
server commonly holds 30-300 ms of audio, and ignoring it would credit the
user with words still in its buffer and misplace the echo canceller's
reference. `stop()` likewise returns where the audio already handed over ends.

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
from .stream_time import StreamTime

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
        self._seen_underruns = 0
        self._moved_at = time.monotonic()
        self._stalled = False
        self._back_at = 0  # played_samples at which a reopened speaker counts as back
        self._started_at = 0  # played_samples at which a new stream counts as started
        self._last_reply: int | None = None
        self._silenced_reply: int | None = None  # the reply a stalled speaker cut off: not resumed late
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
        self.dac = StreamTime(self.rate)  # output sample number <-> when it reaches the speaker
        self._reported_latency = 0.0  # PortAudio's figure, used only until the callbacks' times come
        self._sound_until = 0  # sample number after the last non-silent sample handed over
        self._announced_until = 0  # input-clock end of the last placement `play` reported
        self.on_played: Callable[[np.ndarray, int], None] | None = None  # the echo canceller's reference: (block, first sample)

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
        self._reported_latency = float(self._stream.latency)
        self._moved_at = time.monotonic()  # a new stream gets its time to start
        # A fresh stream fills the device's buffer at once, and some servers then take
        # up to 2 s before they play (PulseAudio's null sink here, as for the microphone).
        self._started_at = self.played_samples + self.rate // 2

    def position_of(self, sample: int) -> int:
        """Where output sample number `sample` plays, on the input clock."""
        played = self.played_samples
        at = self.dac.time_of(sample)
        position = None if at is None else self.clock.position_at(at)
        if position is None:  # no times yet (the first blocks, a host API without them)
            ahead = sample - played + int(self._reported_latency * self.rate)
            position = self.clock.now() + ahead * SAMPLE_RATE // self.rate
        return position

    def close(self) -> None:
        stream, self._stream = self._stream, None
        stop_stream(stream, "speaker")
        self.dac.reset()  # a reopened stream has its own times

    def _callback(self, outdata: np.ndarray, frames: int, time: Any, status: Any) -> None:
        if status.output_underflow:
            self.underruns += 1
            self.dac.reset()  # the device restarted later than planned: its old times are wrong now
            self._started_at = self.played_samples + self.rate // 2  # and it may take as long as a new one to run
        self.dac.stamp(self.played_samples, time.outputBufferDacTime)
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
            first = self.played_samples
            if filled and out[:filled].any():
                self._sound_until = first + filled
            self.played_samples += frames
        if self.on_played is not None:
            self.on_played(out, first)

    def watch(self) -> None:
        """Called often from the event loop (each microphone frame): reopen a speaker that stopped."""
        now = time.monotonic()
        played = self.played_samples
        if self.underruns != self._seen_underruns:  # the event loop or the GIL kept the callback waiting
            self._seen_underruns = self.underruns
            log.info("the speaker ran dry (%d underruns so far), at output sample %d", self.underruns, played)
        if played != self._seen_played:
            self._seen_played, self._moved_at = played, now
            if self._stalled and played >= self._back_at:
                self._stalled = False
                self.on_status("the speaker is back")
            return
        patience = self.stall_s if played >= self._started_at else 3 * self.stall_s
        if now - self._moved_at < patience or now < self._retry_at:
            return
        if not self._stalled:
            self._stalled = True
            self.on_status("the speaker stopped playing (unplugged?); reopening it")
            self.stop()  # what was queued would play late, and so would the rest of that reply
            self._sound_until = self.played_samples  # and what the device held is lost with it
            self._announced_until = 0
            self._silenced_reply = self._last_reply
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
            first = self.played_samples + self._queued  # the callback plays the queue back to back
            self._last_reply = chunk.response_id
            if chunk.response_id != self._silenced_reply:
                self._queue.append(samples)
                self._queued += len(samples)
        start = self.position_of(first)
        end = start + len(samples) * SAMPLE_RATE // self.rate
        self._announced_until = end
        return Placed(start, end, chunk)

    def playing(self) -> bool:
        """Audio is queued, or what was handed over has not all come out yet."""
        with self._lock:
            if self._queued > 0:
                return True
            sound_until = self._sound_until
        # Playing until the end `play` announced too: those placements are what
        # the session's records count as heard, so "done" must not come before it.
        ends = max(self.position_of(sound_until), self._announced_until)
        # A device holds well under a second; a figure beyond that is a stalled
        # or suspended stream's, and its audio is not coming out.
        return 0 < ends - self.clock.now() < SAMPLE_RATE

    def stop(self) -> int:
        """Drop everything not yet handed to the device; return where the sound ends.

        What the device holds already (its output latency) still plays: the
        user hears it, so it counts as heard.
        """
        with self._lock:
            self._queue.clear()
            self._queued = 0
            handed_over = self.played_samples
        self._announced_until = self.position_of(handed_over)
        return self._announced_until
