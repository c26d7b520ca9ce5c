"""Audio sources: where the user's voice comes from, as 16 kHz mono frames.

Every source yields `(position, frame)` pairs: `position` is the index of the
frame's first sample on the input clock that the whole session shares.
This module has the file-based source; the microphone lives in microphone.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import soundfile as sf
import soxr

from .events import SAMPLE_RATE


class AudioInputError(ValueError):
    """A bad input file: reported as one line."""


class Clock(Protocol):
    def now(self) -> int:
        """The current position on the input clock, in samples at 16 kHz."""
        ...


class WallClock:
    """Real-time pace: position follows the monotonic clock from `start()`."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def start(self) -> None:
        self.t0 = time.monotonic()

    def now(self) -> int:
        return int((time.monotonic() - self.t0) * SAMPLE_RATE)

    async def wait_until(self, position: int) -> None:
        delay = self.t0 + position / SAMPLE_RATE - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing to the audio clock, not a race


class FrameClock:
    """Faster than real time: position is what the source has fed so far."""

    def __init__(self) -> None:
        self.position = 0

    def now(self) -> int:
        return self.position


def read_audio(path: str | Path) -> np.ndarray:
    """Any file soundfile reads, as 16 kHz mono float32. Bad files raise AudioInputError."""
    p = Path(path)
    if not p.is_file():
        raise AudioInputError(f"input file not found: {p}")
    try:
        audio, rate = sf.read(str(p), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AudioInputError(f"cannot read {p}: not a supported audio file ({reason})") from None
    if audio.shape[0] == 0:
        raise AudioInputError(f"{p} holds no audio (0 samples)")
    mono = audio.mean(axis=1).astype(np.float32)
    if rate != SAMPLE_RATE:
        mono = soxr.resample(mono, rate, SAMPLE_RATE).astype(np.float32)
    return mono


class TurnTakingSource:
    """User turns from audio clips, each spoken once the agent has finished.

    Between clips it feeds silence until `agent_done()` says the agent has
    nothing left to say, then `gap_s` more, as a polite person would. In
    real-time mode frames arrive at the pace of the clock; in fast mode they
    come as fast as the session takes them (the session lets the pipeline
    settle after each frame, so processing takes no time on the timeline).
    """

    def __init__(
        self,
        clips: list[np.ndarray],
        frame_len: int,
        agent_done: Callable[[], bool],
        clock: WallClock | FrameClock,
        lead_s: float = 0.5,
        gap_s: float = 0.6,
        max_wait_s: float = 60.0,
    ) -> None:
        self.clips = clips
        self.frame_len = frame_len
        self.agent_done = agent_done
        self.clock = clock
        self.lead = int(lead_s * SAMPLE_RATE)
        self.gap = int(gap_s * SAMPLE_RATE)
        self.max_wait = int(max_wait_s * SAMPLE_RATE)
        self.fed: list[np.ndarray] = []  # everything fed, for the output's user track
        self.position = 0

    def recorded(self) -> np.ndarray:
        return np.concatenate(self.fed) if self.fed else np.zeros(0, np.float32)

    async def frames(self) -> AsyncIterator[tuple[int, np.ndarray]]:
        silence = np.zeros(self.frame_len, np.float32)
        async for item in self._feed_silence(self.lead, silence):
            yield item
        for clip in self.clips:
            padded = np.concatenate([clip, np.zeros(-len(clip) % self.frame_len, np.float32)])
            for i in range(0, len(padded), self.frame_len):
                yield await self._emit(padded[i : i + self.frame_len])
            async for item in self._wait_for_agent(silence):
                yield item

    async def _wait_for_agent(self, silence: np.ndarray) -> AsyncIterator[tuple[int, np.ndarray]]:
        waited = 0
        quiet_since = None
        while waited < self.max_wait:
            if self.agent_done():
                quiet_since = self.position if quiet_since is None else quiet_since
                if self.position - quiet_since >= self.gap:
                    return
            else:
                quiet_since = None
            yield await self._emit(silence)
            waited += self.frame_len

    async def _feed_silence(self, n: int, silence: np.ndarray) -> AsyncIterator[tuple[int, np.ndarray]]:
        for _ in range(0, n, self.frame_len):
            yield await self._emit(silence)

    async def _emit(self, frame: np.ndarray) -> tuple[int, np.ndarray]:
        position = self.position
        if isinstance(self.clock, WallClock):
            await self.clock.wait_until(position + len(frame))
        else:
            self.clock.position = position + len(frame)
        self.fed.append(frame)
        self.position += len(frame)
        return position, frame
