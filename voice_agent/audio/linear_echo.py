"""A linear echo canceller: what the pause listens to while the agent speaks.

WebRTC's APM (echo.py) ends in a suppressor that, when the agent's echo is as
loud as the user, takes the first 100-250 ms of the user's voice down with it
(up to 40 dB in room replays), so a cut-in was heard late. The APM's output is
right for the recogniser; for *noticing* a voice over the agent's, the linear
stage alone is better: it subtracts its estimate of the echo and leaves
everything else whole.

This is a partitioned-block frequency-domain adaptive filter (10 ms blocks,
`parts` of them: the echo may come up to `parts` x 10 ms after its reference)
in two copies (Ochiai's two-path scheme): the background adapts on every
block, and replaces the foreground, whose output is used, only when it
removes more; a background that diverged (the user talking is not echo, and
drags an adapting filter off) is reset to the foreground. So no double-talk
detector is needed.
"""

from __future__ import annotations

import numpy as np

BLOCK = 160  # 10 ms at 16 kHz
FFT = 2 * BLOCK
REGULARISE = 1e-3  # keeps the step finite when the reference is silent
SMOOTH = 0.8  # of the error powers the two filters are compared on (~50 ms)


class LinearEcho:
    def __init__(self, parts: int = 10, step: float = 0.5) -> None:
        bins = FFT // 2 + 1
        self.step = step
        self._x = np.zeros((parts, bins), complex)  # the reference's recent blocks, newest first
        self._background = np.zeros((parts, bins), complex)
        self._foreground = np.zeros((parts, bins), complex)
        self._previous = np.zeros(BLOCK)
        self._power = np.zeros(bins)  # the reference's power per bin, over all partitions
        self._back_error = self._fore_error = self._mic_power = 1e-9

    def process(self, reference: np.ndarray, mic: np.ndarray) -> np.ndarray:
        """One 10 ms block: the microphone less the echo of the reference's recent blocks."""
        x, d = reference.astype(np.float64), mic.astype(np.float64)
        self._x = np.roll(self._x, 1, axis=0)
        self._x[0] = np.fft.rfft(np.concatenate([self._previous, x]))
        self._previous = x
        self._power = 0.9 * self._power + 0.1 * (np.abs(self._x) ** 2).sum(axis=0)
        back = d - self._echo(self._background)
        fore = d - self._echo(self._foreground)
        error = np.fft.rfft(np.concatenate([np.zeros(BLOCK), back]))
        gradient = np.fft.irfft(np.conj(self._x) * error / (self._power + REGULARISE), axis=1)
        gradient[:, BLOCK:] = 0  # constrained: each partition stays one block long
        self._background += self.step * np.fft.rfft(gradient, axis=1)
        self._back_error = SMOOTH * self._back_error + (1 - SMOOTH) * float(back @ back)
        self._fore_error = SMOOTH * self._fore_error + (1 - SMOOTH) * float(fore @ fore)
        self._mic_power = SMOOTH * self._mic_power + (1 - SMOOTH) * float(d @ d)
        if self._back_error < 0.5 * self._fore_error and self._back_error < self._mic_power:
            self._foreground, self._fore_error = self._background.copy(), self._back_error
        elif self._back_error > 4 * self._fore_error and self._back_error > self._mic_power:
            self._background, self._back_error = self._foreground.copy(), self._fore_error
        return fore.astype(np.float32)

    def _echo(self, weights: np.ndarray) -> np.ndarray:
        return np.fft.irfft((weights * self._x).sum(axis=0))[BLOCK:]
