"""Echo cancellation: the agent must not hear its own voice from laptop speakers.

WebRTC's audio processing module (through the `livekit` package) removes the
played signal from the microphone signal, using what the speaker played as
the reference. Chosen by measurement (scripts/measure_echo.py): on Piper
speech mixed into the microphone at -10 dB it removes about 44 dB of echo, so
webrtcvad never fires on the agent's own voice, while a user talking over it
is still detected; it costs under 1 % of a core.

The reference is laid on the input clock by when it came out of the speaker
(`Speaker.position_of`, from the stream's DAC times), and each microphone
frame is processed with the reference of the same instant. So the canceller
sees the two signals in lockstep, whatever the sound server buffers and
however it moves audio in bursts, and the delay left for the APM's own delay
estimator to find is only the acoustic path (speaker to microphone: a few ms
on a laptop, 20-300 ms in the virtual room's loopback). Feeding the
reference as the speaker callback ran instead (the old way, with a fixed
60 ms hint) misaligned it by the output latency and the bursts, and the agent
answered its own voice once the path was 150 ms.
"""

from __future__ import annotations

import logging
from collections import deque

import numpy as np
import soxr

from ..core.events import SAMPLE_RATE

log = logging.getLogger(__name__)

TEN_MS = SAMPLE_RATE // 100


class ReferenceTrack:
    """What the speaker played, at 16 kHz, laid on the input clock."""

    def __init__(self, slack: int = TEN_MS) -> None:
        self.slack = slack  # placements this close to the end continue it seamlessly
        self.start = 0
        self.audio = np.zeros(0, np.float32)

    @property
    def end(self) -> int:
        return self.start + len(self.audio)

    def write(self, position: int, samples: np.ndarray) -> None:
        if not len(self.audio) or position - self.end > 2 * SAMPLE_RATE:
            self.start, self.audio = position, self.audio[:0]  # nothing to keep in between
        elif abs(position - self.end) <= self.slack:
            position = self.end  # the same run: stamps jitter by a few samples
        if position >= self.end:
            gap = np.zeros(position - self.end, np.float32)
            self.audio = np.concatenate([self.audio, gap, samples])
        else:  # placed earlier than what is there (a reopened stream): the later placement wins
            keep = max(0, position - self.start)
            self.start = min(self.start, position)
            self.audio = np.concatenate([self.audio[:keep], samples])

    def read(self, position: int, n: int) -> np.ndarray:
        """The reference over [position, position + n); silence where nothing played.
        Everything before `position + n` is then forgotten."""
        out = np.zeros(n, np.float32)
        lo, hi = max(position, self.start), min(position + n, self.end)
        if hi > lo:
            out[lo - position : hi - position] = self.audio[lo - self.start : hi - self.start]
        cut = min(max(0, position + n - self.start), len(self.audio))
        self.audio, self.start = self.audio[cut:], self.start + cut
        return out


class EchoCanceller:
    def __init__(self, speaker_rate: int, delay_ms: int = 0) -> None:
        try:
            from livekit import rtc
        except ImportError:
            raise RuntimeError("echo cancellation needs the livekit package: pip install livekit") from None
        self._rtc = rtc
        self._apm = rtc.AudioProcessingModule(echo_cancellation=True, noise_suppression=True, high_pass_filter=True)
        # The reference is aligned to the capture already; the APM finds the acoustic delay itself.
        self._apm.set_stream_delay_ms(delay_ms)
        self._played: deque[tuple[int, np.ndarray]] = deque(maxlen=500)  # (input position, int16 block)
        self._resample = None if speaker_rate == SAMPLE_RATE else soxr.ResampleStream(speaker_rate, SAMPLE_RATE, 1, dtype="float32")
        self._track = ReferenceTrack()
        self._quiet_blocks = 0  # consecutive silent blocks the speaker played

    def played(self, block: np.ndarray, position: int) -> None:
        """What the speaker handed to the device, and where it plays on the input clock (audio thread)."""
        self._quiet_blocks = 0 if block.any() else self._quiet_blocks + 1
        self._played.append((position, block.copy()))

    def process(self, frame: np.ndarray, position: int) -> np.ndarray:
        """The microphone frame at input `position` (16 kHz float32, a multiple of 10 ms), echo removed."""
        if self._quiet_blocks > 100:
            # The speaker has been silent for seconds: no echo is possible, and
            # skipping the canceller keeps idle listening cheap.
            self._played.clear()
            self._track.read(position, len(frame))
            return frame
        self._lay_reference()
        reference = self._track.read(position, len(frame))
        out = np.empty_like(frame)
        for i in range(0, len(frame), TEN_MS):
            self._apm.process_reverse_stream(self._frame(reference[i : i + TEN_MS]))
            audio = self._frame(frame[i : i + TEN_MS])
            self._apm.process_stream(audio)
            out[i : i + TEN_MS] = np.frombuffer(audio.data, dtype=np.int16).astype(np.float32) / 32768
        return out

    def _frame(self, samples: np.ndarray) -> object:
        pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16)
        return self._rtc.AudioFrame(pcm.tobytes(), SAMPLE_RATE, 1, TEN_MS)

    def _lay_reference(self) -> None:
        while self._played:
            position, block = self._played.popleft()
            samples = block.astype(np.float32) / 32768
            if self._resample is not None:
                samples = self._resample.resample_chunk(samples)
            self._track.write(position, samples)
