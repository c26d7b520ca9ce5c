"""Audio sinks: where the agent's voice goes.

Every sink places audio on the input clock and can tell how far it has
played, so latency is a subtraction and barge-in knows what was heard.
This module has the headless sink that records the conversation as a
listener would hear it; the speaker lives in speaker.py.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from ..core.events import SAMPLE_RATE, AudioChunk
from ..core.timeline import Clock, Placed


class TimelineSink:
    """Lays agent audio on the input timeline: it plays when it arrives, or
    right after the audio before it, exactly as a speaker would."""

    def __init__(self, clock: Clock, rate: int, keep: bool = True) -> None:
        self.clock = clock
        self.rate = rate
        self.keep = keep  # keep everything played, for `write`; False in long sessions
        self.placed: list[Placed] = []
        self.cursor = 0  # input-clock position where queued audio runs out

    def play(self, chunk: AudioChunk) -> Placed:
        if chunk.sample_rate != self.rate:
            raise ValueError(f"sink plays {self.rate} Hz, got {chunk.sample_rate} Hz")
        start = max(self.clock.now(), self.cursor)
        end = start + round(len(chunk.samples) * SAMPLE_RATE / self.rate)
        placed = Placed(start, end, chunk)
        if not self.keep:
            self.placed = [p for p in self.placed if p.end > self.clock.now()]
        self.placed.append(placed)
        self.cursor = end
        return placed

    def playing(self) -> bool:
        return self.cursor > self.clock.now()

    def stop(self) -> int:
        """Silence now (barge-in): audio not yet played is dropped. Returns the stop position."""
        now = self.clock.now()
        kept: list[Placed] = []
        for p in self.placed:
            if p.start >= now:
                continue
            if p.end > now:
                cut = round((now - p.start) * self.rate / SAMPLE_RATE)
                p = Placed(p.start, now, _truncated(p.chunk, cut), planned_end=p.end)
            kept.append(p)
        self.placed = kept
        self.cursor = min(self.cursor, now)
        return now

    def render(self, user: np.ndarray, stereo: bool = True) -> np.ndarray:
        """The conversation at the sink's rate: user left and agent right, or a mono mix."""
        user_out = soxr.resample(user, SAMPLE_RATE, self.rate) if len(user) else np.zeros(0, np.float32)
        end = max([len(user_out)] + [round(p.start * self.rate / SAMPLE_RATE) + len(p.chunk.samples) for p in self.placed])
        agent = np.zeros(end, np.float32)
        for p in self.placed:
            at = round(p.start * self.rate / SAMPLE_RATE)
            samples = p.chunk.samples.astype(np.float32) / 32768
            agent[at : at + len(samples)] += samples
        user_track = np.zeros(end, np.float32)
        user_track[: len(user_out)] = user_out
        if stereo:
            return np.stack([user_track, agent], axis=1)
        return np.clip(user_track + agent, -1, 1)

    def write(self, path: str | Path, user: np.ndarray, stereo: bool = True) -> None:
        sf.write(str(path), self.render(user, stereo), self.rate, subtype="PCM_16")


def _truncated(chunk: AudioChunk, n: int) -> AudioChunk:
    return replace(chunk, samples=chunk.samples[:n])
