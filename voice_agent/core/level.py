"""The level of a stretch of audio: the one loudness measure the VAD, the echo canceller and the meter share."""

from __future__ import annotations

import numpy as np


def level_db(frame: np.ndarray) -> float:
    """Mean power in dB relative to full scale (float samples in [-1, 1]); about -120 for digital silence."""
    return float(10 * np.log10(np.mean(np.square(frame, dtype=np.float64)) + 1e-12))
