#!/usr/bin/env python3
"""The short window's padding, compared: zero features (what the agent does) or N s of silent audio.

Over every recording of tests/speech and the pause set, each cut 200 ms after
its end of speech (as the agent hands it over): the agent's whole STT path
(short window, the stock 30 s window when it doubts), its word error rate
against the manifests, its time, and how often the short window doubted.

    python scripts/stt_padding.py [--silence-s 0 4 8]
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np

from voice_agent.audio.source import read_audio
from voice_agent.core.config import STTConfig
from voice_agent.measure.judge import speech_extent
from voice_agent.measure.wer import wer
from voice_agent.stages.stt import Transcriber

ROOT = Path(__file__).resolve().parent.parent
SETS = [ROOT / "tests" / "speech", ROOT / "tests" / "speech" / "pauses"]


def recordings() -> list[tuple[np.ndarray, str]]:
    out = []
    for folder in SETS:
        for row in csv.DictReader(open(folder / "manifest.tsv"), delimiter="\t"):
            audio = read_audio(folder / row["file"])
            extent = speech_extent(audio)
            if extent is not None:
                out.append((audio[: extent[1] + 3200], row["transcript"]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--silence-s", type=float, nargs="+", default=[0.0, 4.0, 8.0], help="0: zero features, as the agent")
    args = ap.parse_args()
    stt = Transcriber(STTConfig(), str(ROOT / "models"))
    clips = recordings()
    stt.transcribe_sync(clips[0][0])  # warm
    for silence in args.silence_s:
        texts, seconds, doubts = [], [], 0
        for audio, _ in clips:
            t0 = time.perf_counter()
            text, doubt = stt._short_window(audio, silence_s=silence)
            if doubt:
                doubts += 1
                text = stt.transcribe_stock(audio).text
            seconds.append(time.perf_counter() - t0)
            texts.append(text)
        name = f"{silence:g} s of silence" if silence else "zero features (the agent)"
        print(
            f"{name:26} WER {wer([r for _, r in clips], texts):.3f}  mean {np.mean(seconds) * 1000:.0f} ms"
            f"  p95 {np.percentile(seconds, 95) * 1000:.0f} ms  stock redos {doubts}/{len(clips)}"
        )


if __name__ == "__main__":
    main()
