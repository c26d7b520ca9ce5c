#!/usr/bin/env python3
"""When should the end-of-turn model run: beside Whisper, or after it?

The agent's critical path at a pause is Whisper -> the LLM's first words
(no CPU here: the LLM streams, at 30 tokens/s about 170 ms for the first
five words) -> Piper's first audio. The smart-turn model (about 100-250 ms
of one core) must run somewhere in it. This times that path on real
recordings for each placement, alternating them so both see the same load:

- beside:  the turn model starts with Whisper (the agent before);
- after:   it starts when Whisper is done, during the LLM's stream;
- none:    no turn model (the floor).

    python scripts/turn_model_order.py [--rounds 3] [--llm-ms 170]

Prints the median time from the pause to Piper's first audio per placement.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import statistics
import time
from pathlib import Path

import numpy as np

from voice_agent.audio.source import read_audio
from voice_agent.conversation.parts import build_parts
from voice_agent.core.config import Config

ROOT = Path(__file__).resolve().parent.parent
FIRST_WORDS = "I heard what you said,"


async def path(parts, clip: np.ndarray, order: str, llm_s: float) -> float:
    t0 = time.perf_counter()
    model = parts.turn_model
    judged = asyncio.ensure_future(model.done(clip)) if order == "beside" else None
    await parts.stt.transcribe(clip)
    if order == "after":
        judged = asyncio.ensure_future(model.done(clip))
    await asyncio.sleep(llm_s)  # the LLM streaming its first words: time passes, no CPU is used here
    async for _ in parts.tts.speak(FIRST_WORDS, 1, 0):
        break
    elapsed = time.perf_counter() - t0
    if judged is not None:
        await judged
    return elapsed


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--llm-ms", type=float, default=170)
    args = ap.parse_args()
    parts, _ = build_parts(Config())
    parts.tts.cache.max_bytes = 0  # fresh synthesis every time
    with (ROOT / "tests/speech/manifest.tsv").open() as f:
        clips = [read_audio(ROOT / "tests/speech" / r["file"]) for r in csv.DictReader(f, delimiter="\t")]
    times: dict[str, list[float]] = {"beside": [], "after": [], "none": []}
    for _ in range(args.rounds):
        for clip in clips:
            for order, values in times.items():
                values.append(await path(parts, clip, order, args.llm_ms / 1000))
    for order, values in times.items():
        print(f"turn model {order:7s}: pause -> first audio median {statistics.median(values) * 1000:.0f} ms, "
              f"mean {statistics.mean(values) * 1000:.0f} ms over {len(values)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
