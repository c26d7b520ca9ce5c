#!/usr/bin/env python3
"""Does echo cancellation keep the agent from hearing itself, and still hear the user?

Mixes the agent's own Piper speech into a simulated microphone at `--echo-db`
(default -10 dB) with `--delay-ms` of acoustic delay, adds real recorded user
speech over it, and reports for raw and echo-cancelled input: the echo
removed (ERLE), whether the VAD fires on echo alone, and whether it finds
the user.

    python scripts/measure_echo.py
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from voice_agent.audio.echo import EchoCanceller
from voice_agent.audio.source import read_audio
from voice_agent.core.config import Config
from voice_agent.core.events import UserStartedSpeaking
from voice_agent.measure.echo_replay import through_canceller
from voice_agent.stages.tts import Synthesizer
from voice_agent.stages.vad import Vad

ROOT = Path(__file__).resolve().parent.parent
TEXT = (
    "The old lighthouse stood on the rocks for two hundred years. Sailors trusted its light on every "
    "stormy night. Its keeper climbed the stairs each evening."
)


def starts(signal: np.ndarray, cfg: Config) -> list[int]:
    vad = Vad(cfg.vad)
    found = []
    for i in range(0, len(signal) - 320 + 1, 320):
        found += [e.position // 16 for e in vad.process(i, signal[i : i + 320]) if isinstance(e, UserStartedSpeaking)]
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--echo-db", type=float, default=-10.0)
    ap.add_argument("--delay-ms", type=int, default=60)
    args = ap.parse_args()
    cfg = Config()
    agent = Synthesizer(cfg.tts, cfg.models_dir, 16000).synthesize_sync(TEXT)
    user = read_audio(ROOT / "tests/speech/ps_cards_003.wav")
    delay = args.delay_ms * 16
    echo = np.concatenate([np.zeros(delay, np.float32), agent.astype(np.float32) / 32768])[: len(agent)]
    echo *= 10 ** (args.echo_db / 20)
    noise = np.random.default_rng(0).normal(0, 0.001, len(echo)).astype(np.float32)
    user_at = 6 * 16000
    with_user = echo + noise
    with_user[user_at : user_at + len(user)] += user

    for label, cancel in (("raw", False), ("echo-cancelled", True)):
        for name, mic in (("echo only", echo + noise), ("echo + user at 6000 ms", with_user)):
            t0 = time.perf_counter()
            settled = 16000  # from here on the ERLE counts: after the canceller's first seconds
            if cancel:
                # The speaker's sample n plays at microphone sample n (one clock, as in a test).
                aec = EchoCanceller(16000, place=lambda n: n, delay_ms=args.delay_ms)
                out = []
                for i, cleaned_frame in through_canceller(aec, agent, mic):
                    out.append(cleaned_frame)
                    if aec.learning:
                        settled = i + 320
                cleaned = np.concatenate(out)
            else:
                cleaned = mic[: len(mic) // 320 * 320]
            spent = time.perf_counter() - t0
            line = f"{label:15s} {name:24s} VAD starts at {starts(cleaned, cfg)} ms"
            if name == "echo only":
                erle = 10 * np.log10(np.mean(echo[settled : len(cleaned)] ** 2) / (np.mean(cleaned[settled:] ** 2) + 1e-12))
                line += f"; echo removed {erle:.1f} dB from {settled / 16:.0f} ms on; {spent / (len(mic) / 16000) * 100:.2f} % of real time"
            print(line)


if __name__ == "__main__":
    main()
