"""Audio sources: where the user's voice comes from, as 16 kHz mono frames.

Every source yields `(position, frame)` pairs: `position` is the index of the
frame's first sample on the input clock that the whole session shares.
This module has the file-based source; the microphone lives in microphone.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from ..core.events import SAMPLE_RATE
from ..core.timeline import FrameClock, WallClock


class AudioInputError(ValueError):
    """A bad input file: reported as one line."""


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


@dataclass(frozen=True)
class Say:
    """The user speaks this audio (16 kHz mono)."""

    audio: np.ndarray


@dataclass(frozen=True)
class Pause:
    seconds: float


@dataclass(frozen=True)
class Until:
    """Silence until `condition()` has held for `hold_s` (at most `max_s`)."""

    condition: Callable[[], bool]
    hold_s: float = 0.0
    max_s: float = 60.0


Step = Say | Pause | Until


def turn_taking(clips: list[np.ndarray], agent_done: Callable[[], bool], lead_s: float = 0.5, gap_s: float = 0.6) -> list[Step]:
    """Each clip spoken once the agent has finished answering the one before, as a polite person would."""
    steps: list[Step] = [Pause(lead_s), Until(agent_done, hold_s=0)]  # after any greeting
    for clip in clips:
        steps += [Say(clip), Until(agent_done, hold_s=gap_s)]
    return steps


class ScriptedSource:
    """A user following a script, on the session's timeline.

    In real-time mode frames arrive at the pace of the clock; in fast mode
    they come as fast as the session takes them (the session lets the
    pipeline settle after each frame, so processing takes no time on the
    timeline). `Until` steps let a test speak at a chosen stage of a reply.
    """

    def __init__(self, steps: Iterable[Step], frame_len: int, clock: WallClock | FrameClock, keep: bool = True) -> None:
        self.steps = steps
        self.frame_len = frame_len
        self.clock = clock
        self.keep = keep  # keep what was fed (for the output's user track); False in long sessions
        self.fed: list[np.ndarray] = []
        self.said: list[int] = []  # where each `Say` started on the timeline, in order
        self.position = 0

    def recorded(self) -> np.ndarray:
        return np.concatenate(self.fed) if self.fed else np.zeros(0, np.float32)

    async def frames(self) -> AsyncIterator[tuple[int, np.ndarray]]:
        silence = np.zeros(self.frame_len, np.float32)
        for step in self.steps:
            if isinstance(step, Say):
                self.said.append(self.position)
                padded = np.concatenate([step.audio, np.zeros(-len(step.audio) % self.frame_len, np.float32)])
                for i in range(0, len(padded), self.frame_len):
                    yield await self._emit(padded[i : i + self.frame_len])
            elif isinstance(step, Pause):
                for _ in range(int(step.seconds * SAMPLE_RATE) // self.frame_len):
                    yield await self._emit(silence)
            else:
                held = 0
                for _ in range(int(step.max_s * SAMPLE_RATE) // self.frame_len):
                    held = held + self.frame_len if step.condition() else 0
                    if held > step.hold_s * SAMPLE_RATE:
                        break
                    yield await self._emit(silence)

    async def _emit(self, frame: np.ndarray) -> tuple[int, np.ndarray]:
        position = self.position
        await self.clock.advance(position + len(frame))
        if self.keep:
            self.fed.append(frame)
        self.position += len(frame)
        return position, frame
