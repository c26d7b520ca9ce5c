#!/usr/bin/env python3
"""What the echo canceller costs, with and without its linear filter, on a room recording.

    python scripts/echo_cpu.py ROOM.wav     # a measure_live recording (microphone, speaker)

Runs the first 30 s through `EchoCanceller` frame by frame (20 ms), as live, and prints
the CPU time as a share of one core.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import soundfile as sf

from voice_agent.audio.echo import EchoCanceller
from voice_agent.measure.echo_replay import through_canceller

SECONDS = 30


def share_of_a_core(mic: np.ndarray, agent: np.ndarray, linear: bool) -> float:
    echo = EchoCanceller(16000, place=lambda n: n, linear=linear)
    started = time.process_time()
    for _ in through_canceller(echo, agent, mic):
        pass
    return (time.process_time() - started) / (len(mic) / 16000)


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit("usage: python scripts/echo_cpu.py ROOM.wav")
    try:
        audio, rate = sf.read(sys.argv[1], dtype="float32", frames=16000 * SECONDS)
    except (OSError, sf.LibsndfileError) as e:
        raise SystemExit(f"error: cannot read {sys.argv[1]}: {e}") from None
    if rate != 16000 or audio.ndim != 2:
        raise SystemExit(f"error: {sys.argv[1]} is not a 16 kHz two-channel room recording")
    mic, agent = audio[:, 0].copy(), (audio[:, 1] * 32767).astype(np.int16)
    for label, linear in (("with the linear filter", True), ("without it", False)):
        print(f"{label}: {100 * share_of_a_core(mic, agent, linear):.1f} % of a core")


if __name__ == "__main__":
    main()
