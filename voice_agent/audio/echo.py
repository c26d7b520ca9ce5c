"""Echo cancellation: the agent must not hear its own voice from laptop speakers.

WebRTC's audio processing module (through the `livekit` package) removes the
played signal from the microphone signal, using what the speaker played as
the reference. Chosen by measurement (scripts/measure_echo.py): on Piper
speech mixed into the microphone at -10 dB with a 60 ms delay it removes
about 44 dB of echo, so webrtcvad never fires on the agent's own voice, while
a user talking over it is still detected; it costs under 1 % of a core.

The speaker's callback hands over each block it plays (`played`, any thread);
the capture side (`process`, the event loop) feeds those blocks to the
canceller as its reference just before each microphone frame, so the
reference leads its echo by the output latency, the input latency and the
acoustic path, and the APM's own delay estimator finds that lead.

Tried and measured worse in the virtual room (speaker looped into the mic,
one Piper-free recording played through the real Speaker/Microphone/
EchoCanceller, echo removed over 3 runs per cell): laying the reference on
the input clock by its DAC time and feeding it in lockstep with the capture
(10-40 dB removed, against 50-86 dB this way), and telling the APM the
measured output + input latency instead of 60 ms (11-32 dB).
"""

from __future__ import annotations

import logging
from collections import deque

import numpy as np
import soxr

from ..core.events import SAMPLE_RATE

log = logging.getLogger(__name__)

TEN_MS = SAMPLE_RATE // 100


class EchoCanceller:
    def __init__(self, speaker_rate: int, delay_ms: int = 60) -> None:
        try:
            from livekit import rtc
        except ImportError:
            raise RuntimeError("echo cancellation needs the livekit package: pip install livekit") from None
        self._rtc = rtc
        self._apm = rtc.AudioProcessingModule(echo_cancellation=True, noise_suppression=True, high_pass_filter=True)
        self._apm.set_stream_delay_ms(delay_ms)
        self._played: deque[np.ndarray] = deque(maxlen=500)  # int16 blocks at the speaker's rate
        self._resample = None if speaker_rate == SAMPLE_RATE else soxr.ResampleStream(speaker_rate, SAMPLE_RATE, 1, dtype="float32")
        self._reference = np.zeros(0, np.float32)
        self._quiet_blocks = 0  # consecutive silent blocks the speaker played

    def played(self, block: np.ndarray) -> None:
        """What the speaker just played (called from its audio thread)."""
        self._quiet_blocks = 0 if block.any() else self._quiet_blocks + 1
        self._played.append(block.copy())

    def process(self, frame: np.ndarray) -> np.ndarray:
        """A microphone frame (16 kHz float32, a multiple of 10 ms) with the echo removed."""
        if self._quiet_blocks > 100:
            # The speaker has been silent for seconds: no echo is possible, and
            # skipping the canceller keeps idle listening cheap.
            self._played.clear()
            return frame
        self._feed_reference()
        out = np.empty_like(frame)
        for i in range(0, len(frame), TEN_MS):
            pcm = (np.clip(frame[i : i + TEN_MS], -1, 1) * 32767).astype(np.int16)
            audio = self._rtc.AudioFrame(pcm.tobytes(), SAMPLE_RATE, 1, TEN_MS)
            self._apm.process_stream(audio)
            out[i : i + TEN_MS] = np.frombuffer(audio.data, dtype=np.int16).astype(np.float32) / 32768
        return out

    def _feed_reference(self) -> None:
        while self._played:
            block = self._played.popleft().astype(np.float32) / 32768
            if self._resample is not None:
                block = self._resample.resample_chunk(block)
            self._reference = np.concatenate([self._reference, block])
        n = len(self._reference) // TEN_MS
        for k in range(n):
            pcm = (np.clip(self._reference[k * TEN_MS : (k + 1) * TEN_MS], -1, 1) * 32767).astype(np.int16)
            self._apm.process_reverse_stream(self._rtc.AudioFrame(pcm.tobytes(), SAMPLE_RATE, 1, TEN_MS))
        self._reference = self._reference[n * TEN_MS :]
