"""A recording through the echo canceller frame by frame, as live (tests and scripts replay rooms with it)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..audio.echo import EchoCanceller

FRAME = 320  # 20 ms at 16 kHz, the microphone's block


def through_canceller(
    echo: EchoCanceller, played: np.ndarray, mic: np.ndarray, handed_early: int = 3 * FRAME
) -> Iterator[tuple[int, np.ndarray]]:
    """(position, the canceller's output) for each microphone frame; `played` (int16, on the
    microphone's clock) is handed over `handed_early` before it plays, as the speaker does. Handed
    over as it plays, it came after the canceller had read its reference past it: nothing was
    cancelled (scripts/measure_echo.py measured so for some rounds)."""
    handed = 0
    for i in range(0, len(mic) - FRAME + 1, FRAME):
        while handed < min(len(played), i + FRAME + handed_early):
            echo.played(played[handed : handed + FRAME], handed)
            handed += FRAME
        yield i, echo.process(mic[i : i + FRAME], i)
