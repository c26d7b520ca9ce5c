"""Where the agent's voice comes back in the microphone: the echo path, measured.

The speaker hands over each block as it plays it; the sound server, the
room and the microphone's buffers then take 20-500 ms (depending on the
machine) before that sound is captured. Both signals are kept as streams
counted in samples (16 kHz, nothing dropped), so reference sample `i` comes
back at microphone sample `i + lag`. The lag is found by GCC-PHAT (the
cross-spectrum whitened, so the peak is sharp on speech and does not follow
its pitch) over ~1 s windows while the agent speaks, and tracked as the
median of the last few confident measurements: a real machine's lag drifts
and jumps when the sound server restarts a stream. The echo's gain (the
coupling) is measured at that lag by regression, which the user's voice, not
being correlated with the reference, does not bias.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from ..core.events import SAMPLE_RATE

EDGE = SAMPLE_RATE // 200  # 5 ms
QUIET = 1e-3  # a microphone 30 dB below what the agent plays hears no echo that matters


@dataclass(frozen=True)
class Measurement:
    lag: int  # samples: reference sample i is heard at microphone sample i + lag
    gain: float  # amplitude of the echo over that of the reference (the part that correlates)
    confidence: float  # the correlation peak over the spread of the rest
    power: float = 0.0  # the microphone's power over the aligned reference's: all the echo, and more


def gcc_phat(mic: np.ndarray, ref: np.ndarray, max_lag: int) -> Measurement | None:
    """The lag (0..max_lag) at which `ref` best explains `mic`.

    `mic` is a window of the microphone stream ending at sample j; `ref` is the
    reference stream over the same samples and `max_lag` more before them
    (len(ref) == len(mic) + max_lag). None when the reference is silent.
    """
    w = len(mic)
    if len(ref) != w + max_lag:
        raise ValueError(f"the reference must be {max_lag} samples longer than the microphone window")
    if not ref.any() or not mic.any():
        return None
    n = 1 << int(np.ceil(np.log2(w + len(ref))))
    cross = np.conj(np.fft.rfft(mic, n)) * np.fft.rfft(ref, n)
    cross /= np.abs(cross) + 1e-12 * np.abs(cross).max()
    # Only the band speech carries: below it hum and DC, above it little of the agent's voice,
    # and whitened they would weigh as much as the speech.
    bins = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    cross[(bins < 200) | (bins > 4000)] = 0
    corr = np.fft.irfft(cross, n)[: max_lag + 1]  # corr[k]: mic[t] against ref[t + k]
    # Partly silent windows peak at the ends of the range whatever they hold; no real
    # echo path is that short (k = max_lag), and one that long is out of range anyway.
    edge = EDGE if max_lag > 4 * EDGE else 0
    k = edge + int(np.argmax(corr[edge : len(corr) - edge]))
    spread = float(np.std(corr)) + 1e-12
    lag = max_lag - k
    aligned = ref[k : k + w]
    energy = float(aligned @ aligned)
    gain = abs(float(mic @ aligned)) / energy if energy > 0 else 0.0
    power = float(mic @ mic) / energy if energy > 0 else 0.0
    return Measurement(lag, gain, float(corr[k]) / spread, power)


class _Stream:
    """The latest samples of a stream that is counted from its start, kept as the chunks that
    came (appending is then cheap every frame; only a measurement joins them)."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.end = 0  # samples ever appended
        self._chunks: deque[np.ndarray] = deque()
        self._held = 0  # samples in _chunks

    def append(self, samples: np.ndarray) -> None:
        self._chunks.append(samples.astype(np.float32, copy=False))
        self._held += len(samples)
        self.end += len(samples)
        while self._chunks and self._held - len(self._chunks[0]) >= self.keep:
            self._held -= len(self._chunks.popleft())

    def place(self, samples: np.ndarray, at: int, tolerance: int) -> None:
        """`samples` from sample `at` on: appended if `at` is within `tolerance` of the end (the
        clocks' jitter must not tear a continuous signal), else laid where they belong (a gap
        is silence; going back overwrites)."""
        if abs(at - self.end) > tolerance:
            if at > self.end:
                self.append(np.zeros(at - self.end, np.float32))
            else:
                self._drop_after(at)
        self.append(samples)

    def _drop_after(self, at: int) -> None:
        drop = self.end - at
        while drop > 0 and self._chunks:
            last = self._chunks.pop()
            if len(last) > drop:
                self._chunks.append(last[: len(last) - drop])
                self._held -= drop
                break
            self._held -= len(last)
            drop -= len(last)
        self.end = at

    def span(self, start: int, stop: int) -> np.ndarray:
        """Samples [start, stop) of the stream; zeros for what is not (or no longer) held."""
        out = np.zeros(max(0, stop - start), np.float32)
        at = self.end - self._held  # the first held sample
        for chunk in self._chunks:
            lo, hi = max(start, at), min(stop, at + len(chunk))
            if hi > lo:
                out[lo - start : hi - start] = chunk[lo - at : hi - at]
            at += len(chunk)
            if at >= stop:
                break
        return out


class EchoPath:
    """Tracks the echo path's lag and gain from the played and captured streams."""

    def __init__(
        self,
        window_ms: int = 1000,
        max_lag_ms: int = 1500,
        every_ms: int = 250,
        min_confidence: float = 12.0,  # speech not echoed peaks below 9 (tests/test_echo_delay.py)
        history: int = 5,
        give_up_after: int = 8,
        min_gain: float = 0.01,
    ) -> None:
        self.min_gain = min_gain  # an echo 40 dB down is no echo (and digital silence peaks anywhere)
        self.give_up_after = give_up_after
        self.window = window_ms * SAMPLE_RATE // 1000
        self.max_lag = max_lag_ms * SAMPLE_RATE // 1000
        self.every = every_ms * SAMPLE_RATE // 1000
        self.min_confidence = min_confidence
        keep = self.window + self.max_lag + SAMPLE_RATE
        self.reference = _Stream(keep)
        self.microphone = _Stream(keep)
        self._measured_at = 0
        self._recent: list[Measurement] = []
        self.history = history
        self.agree = SAMPLE_RATE // 200  # 5 ms
        self.early = SAMPLE_RATE // 20  # 50 ms: how far the clocks may place the sound too late
        self._candidate: Measurement | None = None
        self.tolerance = SAMPLE_RATE // 100  # 10 ms: the clocks' jitter, placing a block
        self.measurements = 0  # confident ones, ever
        self.attempts = 0  # windows in which the agent spoke
        self.quiet = 0  # of those, windows in which the microphone heard 30 dB less

    @property
    def lag(self) -> int | None:
        """Reference sample i is heard at microphone sample i + lag."""
        if not self._recent:
            return None
        return int(np.median([m.lag for m in self._recent]))

    @property
    def gain(self) -> float | None:
        if not self._recent:
            return None
        return float(np.median([m.gain for m in self._recent]))

    @property
    def coupling(self) -> float | None:
        """Echo power over reference power: None while unknown, 0 once the agent has
        spoken for a while into a microphone that stayed quiet (headphones).

        From the powers, not the correlation: where the devices' clocks place the reference
        a few ms off here and there (a sound server under load), the correlating part is
        less than all of the echo, and the guard must expect all of it."""
        if self._recent:
            return float(np.median([max(m.power, m.gain**2) for m in self._recent]))
        return 0.0 if self.quiet >= self.give_up_after else None

    def played(self, samples: np.ndarray, position: int | None = None) -> None:
        """Reference samples; `position`: where the first of them comes out on the microphone's
        count, when known. Counting the samples is not enough: a sound server drops what it holds
        when its client is late (an underrun), and a microphone can lose samples. The canceller
        passes where its ReferenceTrack laid them (the devices' clocks, smoothed), so the lag is
        the one the APM's reference has."""
        if position is None:
            self.reference.append(samples)
        else:
            self.reference.place(samples, position, self.tolerance)

    def captured(self, samples: np.ndarray) -> Measurement | None:
        """A raw microphone frame; a new measurement when one was due and confident."""
        self.microphone.append(samples)
        j = self.microphone.end
        if j - self._measured_at < self.every or j < self.window:
            return None
        self._measured_at = j
        # Lags from a little before where the clocks say the reference comes out.
        lo = -self.early
        ref = self.reference.span(j - lo - self.window - self.max_lag, j - lo)
        if float(np.mean(ref**2)) < 1e-6:  # the agent hardly spoke: nothing to learn
            return None
        self.attempts += 1
        mic = self.microphone.span(j - self.window, j)
        if float(mic @ mic) < QUIET * float(ref @ ref) * self.window / len(ref):
            self.quiet += 1  # the agent spoke and the microphone stayed quiet: evidence of no echo
        found = gcc_phat(mic, ref, self.max_lag)
        if found is None or found.confidence < self.min_confidence or found.gain < self.min_gain:
            return None
        found = Measurement(found.lag + lo, found.gain, found.confidence, found.power)
        # A peak is believed once a second window finds it too (or it is where the path is
        # already known to be): a chance peak of unrelated sounds lands elsewhere each time.
        agrees = [m.lag for m in (self._candidate, *self._recent[-1:]) if m is not None]
        self._candidate = found
        if not any(abs(found.lag - lag) <= self.agree for lag in agrees):
            return None
        self._recent = [*self._recent, found][-self.history :]
        self.measurements += 1
        return found
