"""What the pause listens with: is someone making a voice over the agent's?

The pause (barge-in's first, reversible step: the agent goes silent at the
first voice over its own, and goes on if it was not a cut) has its own VAD and
Silero windows, so that it can hear a different signal from the turn
detector's: live, the linear echo filter's output, which keeps a user's
onset whole where the echo canceller's suppressor takes it down
(audio/linear_echo.py). Elsewhere it hears the same input as the turn
detector.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ..core.config import Config
from .speech_check import NoConfirmation, SpeechConfirmer, StaggeredConfirmer, pause_confirmer
from .vad import Vad


class Echo(Protocol):
    """What the agent asks of the echo canceller (audio/echo.py) about the frame just processed."""

    def near_end(self) -> bool: ...  # is the sound someone in the room rather than the agent's echo?
    def tail(self) -> int: ...  # samples its echo goes on after the agent's voice stops
    def pause_hears(self, frame: np.ndarray) -> np.ndarray: ...  # the frame (the canceller's output) for the pause
    def is_echo(self) -> bool: ...  # is the sound surely the agent's own echo (whatever the canceller let through)?


class NoEcho:
    """No canceller (a WAV file, headphones, a test): every sound is someone in the room."""

    def near_end(self) -> bool:
        return True

    def tail(self) -> int:
        return 0

    def pause_hears(self, frame: np.ndarray) -> np.ndarray:
        return frame

    def is_echo(self) -> bool:
        return False


class PauseDetector:
    def __init__(self, cfg: Config, confirm: StaggeredConfirmer | SpeechConfirmer | NoConfirmation | None = None) -> None:
        """`confirm`: Silero's check (default: `pause_confirmer`; scripts/replay_room.py tries others)."""
        self._vad = Vad(cfg.vad)
        self._confirm = confirm or pause_confirmer(cfg.bargein)

    def feed(self, position: int, frame: np.ndarray) -> None:
        self._vad.process(position, frame)
        self._confirm.feed(position, frame)

    def sounding(self, now: int, min_frames: int, quiet_samples: int) -> bool | None:
        """As `TurnDetector.sounding`, on what the pause hears."""
        return self._vad.detector.sounding(now, min_frames, quiet_samples)

    def confirms(self, now: int) -> bool:
        """Silero hears a voice in the sound in progress (or no voice is asked for)."""
        return self._confirm.confirms(self._vad.detector.sound_start or 0, now)
