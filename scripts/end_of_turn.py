"""Which end-of-turn decision is best? A comparison table on real recordings.

At a pause the agent must guess: is this the end of the user's turn, or will
they go on? Every pause inside a recording (a gap of at least --min-gap-ms
between runs of speech, found from the recording's own energy) is a point
where the right answer is "not yet"; the end of the last run of speech is
where it is "done". At each point the decision sees what the agent sees: the
audio up to that point plus 150 ms of what follows (the silence at which the
agent speculates), and its Whisper transcript.

Energy rule (the judge's): 10 ms windows, threshold max(peak - 25 dB,
10th percentile + 15 dB), runs of at least 50 ms above it are speech.

    python scripts/end_of_turn.py --speech-dir tests/speech --speech-dir tests/speech/pauses --min-gap-ms 250 \
        --pipeline-ms 500 --pipeline-ms 700

Each policy turns the signs into the silence after which the agent takes the
turn. `premature`: pauses longer than that silence (the agent would speak
into them); `end wait`: that silence at the true ends (what latency pays).
With `--pipeline-ms`, the agent is heard no sooner than that after the pause
starts (its STT, LLM and TTS time): the figure to compare with the bench.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from voice_agent.audio.source import read_audio
from voice_agent.core.config import STTConfig, VADConfig
from voice_agent.stages import turn_model
from voice_agent.stages.endpointing import DANGLING, end_of_turn_ms, looks_complete
from voice_agent.stages.stt import Transcriber

RATE = 16_000
WIN = 160  # 10 ms
AFTER = RATE * 150 // 1000


def speech_runs(audio: np.ndarray, min_run_ms: int = 50) -> list[tuple[int, int]]:
    """(start, end) sample spans of speech by the energy rule above."""
    n = len(audio) // WIN
    db = 10 * np.log10(np.mean(audio[: n * WIN].reshape(n, WIN).astype(np.float64) ** 2, axis=1) + 1e-12)
    threshold = max(db.max() - 25, np.percentile(db, 10) + 15)
    above = db > threshold
    runs: list[tuple[int, int]] = []
    i = 0
    while i < n:
        if above[i]:
            j = i
            while j < n and above[j]:
                j += 1
            if (j - i) * 10 >= min_run_ms:
                runs.append((i * WIN, j * WIN))
            i = j
        else:
            i += 1
    return runs


@dataclass
class Point:
    file: str
    at: int  # sample where the words stop
    done: bool  # the true answer: the end of the recording's speech
    gap_ms: int  # the silence that follows (0 at the end)
    audio: np.ndarray  # what the agent has at its pause
    text: str = ""
    p_turn: float = 0.0
    p_gemma: float | None = None  # the embedded Gemma's probability that the line ends here (--gemma)


def points(path: Path, min_gap_ms: int) -> list[Point]:
    audio = read_audio(path)
    runs = speech_runs(audio)
    if not runs:
        return []
    out = []
    for (_, end), (nxt, _) in itertools.pairwise(runs):
        if nxt - end >= min_gap_ms * RATE // 1000:
            out.append(Point(str(path), end, False, (nxt - end) * 1000 // RATE, audio[: end + AFTER]))
    end = runs[-1][1]
    out.append(Point(str(path), end, True, 0, audio[: end + AFTER]))
    return out


def last_word_finishes(text: str) -> bool:
    words = re.findall(r"[\w']+", text.lower())
    return bool(words) and words[-1] not in DANGLING


Policy = Callable[[Point], int]  # the silence (ms) after which the agent takes the turn


def policies() -> dict[str, Policy]:
    table: dict[str, Policy] = {
        "fixed 500 ms": lambda p: 500,
        "full stop 200, else 500 (before)": lambda p: 200 if looks_complete(p.text) else 500,
    }
    for th in (0.5, 0.7):
        for slow in (500, 1000):
            table[f"smart-turn p>{th} 200, else {slow}"] = lambda p, th=th, slow=slow: 200 if p.p_turn > th else slow
    for fixed in (700, 900):
        table[f"fixed {fixed} ms"] = lambda p, fixed=fixed: fixed
    for quick, usual, hold in ((200, 500, 1000), (200, 700, 1000), (200, 900, 900)):
        for th in (0.5, 0.7, 0.9):
            name = f"mix p>{th}: both {quick}, one {usual}, neither {hold}"
            table[name] = lambda p, th=th, q=quick, u=usual, h=hold: mix(p, th, q, u, h)
    table["gemma p>0.5 200, else 900"] = lambda p: 900 if p.p_gemma is None else 200 if p.p_gemma > 0.5 else 900
    table["gemma p>0.5 and smart-turn p>0.7 200, else 900"] = lambda p: (
        200 if (p.p_gemma or 0) > 0.5 and p.p_turn > 0.7 else 900
    )
    cfg = VADConfig()
    table["THE AGENT'S: no model (transcript alone)"] = lambda p: end_of_turn_ms(p.text, None, cfg)
    table["THE AGENT'S: with the model (defaults)"] = lambda p: end_of_turn_ms(p.text, p.p_turn, cfg)
    before = replace(cfg, unfinished_end_of_turn_ms=0)
    table["the agent's before the 1500 ms tier"] = lambda p: end_of_turn_ms(p.text, p.p_turn, before)
    return table


def mix(p: Point, th: float, quick: int, usual: int, hold: int) -> int:
    """Both signs agree it is over: quick; one does: the usual silence; neither: a long one."""
    audio_done = p.p_turn > th
    if audio_done and last_word_finishes(p.text):
        return quick
    if audio_done or looks_complete(p.text):
        return usual
    return hold


def table(pts: list[Point], pipeline_ms: int = 0) -> None:
    """Per recording, as the judge counts: premature if the agent would be heard inside any
    of its pauses; the wait at its end is what its latency pays. The agent is heard at the
    later of the policy's silence and `pipeline_ms` (Whisper, the LLM's first words and the
    first audio, from the start of the pause): a faster pipeline exposes more pauses."""
    files = sorted({p.file for p in pts})
    with_gemma = any(p.p_gemma is not None for p in pts)
    heard = lambda policy, p: max(policy(p), pipeline_ms)
    print(f"{'policy':50s} {'premature recordings':>21s} {'pauses':>7s}   end wait p50  p95 ms   (heard >= {pipeline_ms} ms)")
    for name, policy in policies().items():
        if name.startswith("gemma") and not with_gemma:
            continue
        early = {p.file for p in pts if not p.done and heard(policy, p) <= p.gap_ms}
        pauses = sum(not p.done and heard(policy, p) <= p.gap_ms for p in pts)
        waits = np.array([heard(policy, p) for p in pts if p.done])
        print(f"{name:50s} {len(early):10d}/{len(files):<10d} {pauses:7d}   {np.percentile(waits, 50):12.0f} {np.percentile(waits, 95):4.0f}")


GEMMA_PROMPT = (
    "User: What time is it?\nAssistant: It is ten past three.\n"
    "User: Can you check the number and dial again for me?\nAssistant: Sure, dialing again.\nUser: "
)


def gemma_end_probability() -> Callable[[str], float]:
    """P(the user's line ends here) from the embedded Gemma 3 270M: the chance of a newline next."""
    import math

    from llama_cpp import Llama

    from voice_agent.stages.models import find_gguf

    llm = Llama(model_path=str(find_gguf(None, "models")), n_threads=2, n_ctx=512, logits_all=True, verbose=False)

    def p_end(text: str) -> float:
        out = llm.create_completion(GEMMA_PROMPT + text.strip(), max_tokens=1, logprobs=20, temperature=0)
        top = out["choices"][0]["logprobs"]["top_logprobs"][0]
        return sum(math.exp(v) for k, v in top.items() if "\n" in k)

    return p_end


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--speech-dir", type=Path, action="append", help="(repeatable) default: tests/speech")
    ap.add_argument("--min-gap-ms", type=int, default=150)
    ap.add_argument("--show", action="store_true", help="print every point")
    ap.add_argument("--pipeline-ms", type=int, action="append",
                    help="(repeatable) also tables where the agent cannot be heard sooner than this after the pause starts")
    ap.add_argument("--gemma", action="store_true", help="also the embedded Gemma's P(line ends) (slow; needs the embedded extra)")
    args = ap.parse_args()
    files: list[Path] = []
    for folder in args.speech_dir or [Path("tests/speech")]:
        manifest = folder / "manifest.tsv"
        if not manifest.is_file():
            print(f"no manifest.tsv in {folder}", file=sys.stderr)
            return 2
        with manifest.open() as f:
            files += [folder / row["file"] for row in csv.DictReader(f, delimiter="\t")]
    model = turn_model.load()
    if model is None:
        print("smart-turn model not installed (pip install pipecat-ai)", file=sys.stderr)
        return 2
    stt = Transcriber(STTConfig(), "models")
    pts = [p for path in files for p in points(path, args.min_gap_ms)]
    costs = []
    gemma = gemma_end_probability() if args.gemma else None
    for p in pts:
        p.text = stt.transcribe_sync(p.audio).text
        p.p_gemma = gemma(p.text) if gemma else None
        t0 = time.perf_counter()
        p.p_turn = model.probability(p.audio)
        costs.append(time.perf_counter() - t0)
        if args.show:
            where = "end" if p.done else f"{p.gap_ms} ms pause"
            print(f"{p.file:44s} {p.at / RATE:6.2f}s {where:>14s} p={p.p_turn:.2f} {p.text!r}")
    n_gaps = sum(not p.done for p in pts)
    print(f"\n{len(files)} recordings, {n_gaps} pauses of >= {args.min_gap_ms} ms inside them")
    print(f"smart-turn inference: median {np.median(costs) * 1000:.0f} ms (1 thread)\n")
    for pipeline_ms in [0, *(args.pipeline_ms or [])]:
        table(pts, pipeline_ms)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
