"""When a stream's samples meet the air: PortAudio's ADC/DAC times made steady.

PortAudio stamps each callback with the time its first sample was captured
(`inputBufferAdcTime`) or will reach the speaker (`outputBufferDacTime`), on
one clock shared by all streams. Through PulseAudio (ALSA's pulse plugin) one
stamp alone jitters by up to a fragment (20-60 ms here) because the server
moves audio in fragments, but the stamps minus the samples already moved are
steady: the mean of the middle half of the last 200 of them (4 s of 20 ms
blocks) places a sample within a few milliseconds. (A plain median flips
between the fragments' clusters, 20 ms apart.) (Measured in the virtual room: a click played at a predicted DAC
time was captured from `speaker.monitor` 1-3 ms from it, at output latencies
of 40 to 360 ms.) So "sample n of this stream" <-> "stream time t" is one
anchor, `t = anchor + n / rate`.
"""

from __future__ import annotations

from collections import deque

import numpy as np


class StreamTime:
    """The anchor of one stream: stream time of its sample 0, from the callbacks' stamps."""

    def __init__(self, rate: int, keep: int = 200) -> None:
        self.rate = rate
        self._offsets: deque[float] = deque(maxlen=keep)
        self.anchor: float | None = None

    def stamp(self, samples_before: int, stream_time: float) -> None:
        """A callback whose first sample is number `samples_before` meets the air at `stream_time`.

        Called from the audio thread; `anchor` is replaced in one assignment.
        """
        if stream_time <= 0:
            return  # the host API gives no time: keep what we have
        self._offsets.append(stream_time - samples_before / self.rate)
        self.anchor = middle_mean(self._offsets)

    def reset(self) -> None:
        """A reopened stream counts from zero again."""
        self._offsets.clear()
        self.anchor = None

    def time_of(self, sample: int) -> float | None:
        anchor = self.anchor
        return None if anchor is None else anchor + sample / self.rate

    def sample_at(self, stream_time: float) -> int | None:
        anchor = self.anchor
        return None if anchor is None else round((stream_time - anchor) * self.rate)


def middle_mean(values: deque[float]) -> float:
    """The mean of the middle half: robust to outliers, and smooth as values come and go."""
    ordered = np.sort(np.fromiter(values, float, len(values)))
    quarter = len(ordered) // 4
    return float(ordered[quarter : len(ordered) - quarter].mean())
