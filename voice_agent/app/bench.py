"""`voice-agent bench`: latency, barge-in and STT figures from one reproducible run.

The agent runs its real pipeline in timeline mode at real-time pace over a
folder of recorded speech; the same turns then go through the naive
sequential pipeline (baseline.py); barge-in trials start a recording while
the agent speaks; and both STT paths transcribe every utterance.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import resource
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from ..audio.sink import TimelineSink
from ..audio.source import (
    AudioInputError,
    Pause,
    Say,
    ScriptedSource,
    Until,
    read_audio,
)
from ..conversation.agent import Agent, Parts
from ..conversation.history import History
from ..conversation.metrics import summary
from ..core.config import Config, ConfigError
from ..core.events import UserStoppedSpeaking
from ..core.timeline import Placed, WallClock
from ..measure.baseline import naive_turn
from ..measure.wer import wer
from ..stages.vad import Vad
from .demo import run_demo

DEFAULT_REPLY = "Sure. Here is a short answer for you."
LONG_REPLY = (
    "Here is a longer answer, so that you have time to cut in. It goes on for a few sentences. "
    "Each of them is spoken in turn, until you interrupt."
)
STAGES = ("vad_end_of_turn_ms", "stt_ms", "llm_first_token_ms", "first_sentence_ms", "tts_first_audio_ms")


@dataclass
class BenchOptions:
    speech_dir: Path
    llm: str = "scripted"  # "scripted", "embedded", or an OpenAI-compatible base URL
    ttft_ms: float = 0.0
    bargein_trials: int = 6
    limit: int | None = None  # use only the first N utterances (quick runs)


def load_manifest(folder: Path) -> list[tuple[Path, str]]:
    manifest = folder / "manifest.tsv"
    if not manifest.is_file():
        raise ConfigError(f"no manifest.tsv in {folder} (tab-separated, header row, columns 'file' and 'transcript')")
    with manifest.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if not rows or not {"file", "transcript"} <= set(rows[0]):
        raise ConfigError(f"{manifest} needs a header row with columns 'file' and 'transcript'")
    items = [(folder / r["file"], r["transcript"]) for r in rows]
    missing = [str(p) for p, _ in items if not p.is_file()]
    if missing:
        raise AudioInputError(f"{len(missing)} file(s) in {manifest} not found, e.g. {missing[0]}")
    return items


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    model = names[0] if names else platform.processor() or "unknown"
    return {"cores": os.cpu_count(), "cpu_model": model, "python": platform.python_version()}


async def latency_run(cfg: Config, parts: Parts, clips: list[np.ndarray], console: Console) -> tuple[dict[str, Any], float, list[float]]:
    """The demo's report, CPU seconds per turn, and the silences between the pieces of each reply."""
    cpu0 = time.process_time()
    result = await run_demo(cfg, parts, clips, fast=False, console=console)
    turns = [t for t in result.report["turns"] if t["response_latency_ms"] is not None]
    gaps = sentence_gaps(result.agent.sink.placed)  # type: ignore[attr-defined]  # the demo's sink is a TimelineSink
    return result.report, (time.process_time() - cpu0) / max(1, len(turns)), gaps


def sentence_gaps(placed: list[Placed]) -> list[float]:
    """Silence between consecutive pieces of one reply, in ms: 0 when each was ready before the one before ended."""
    gaps: list[float] = []
    by_reply: dict[int, list[Placed]] = {}
    for p in placed:
        by_reply.setdefault(p.chunk.response_id, []).append(p)
    for pieces in by_reply.values():
        pieces.sort(key=lambda p: p.start)
        gaps += [round(max(0, b.start - a.planned_end) / 16, 1) for a, b in zip(pieces, pieces[1:])]
    return gaps


async def baseline_run(cfg: Config, parts: Parts, clips: list[np.ndarray]) -> list[dict[str, Any]]:
    out = []
    history = History.for_config(cfg.llm)
    for clip in clips:
        vad = Vad(cfg.vad)
        padded = np.concatenate([np.zeros(8000, np.float32), clip, np.zeros(16000, np.float32)])
        turns = [
            e
            for i in range(0, len(padded) - vad.frame_len + 1, vad.frame_len)
            for e in vad.process(i, padded[i : i + vad.frame_len])
            if isinstance(e, UserStoppedSpeaking)
        ]
        if turns:
            done = await naive_turn(parts, turns[-1], history.messages())
            out.append({"response_latency_ms": done.response_latency_ms, "stages": done.stages})
    return out


def _trimmed(audio: np.ndarray, frame: int = 320) -> tuple[np.ndarray, int]:
    """The clip from its first word (15 dB over its background), and that word's offset (0).

    Cutting the recording's own background off keeps the trial honest: the
    timeline's silence is digital, and a recording's hiss would otherwise be
    the first thing the VAD hears, before the word the stop time is measured from.
    """
    frames = audio[: len(audio) // frame * frame].reshape(-1, frame)
    db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    onset = int(np.argmax(db > np.percentile(db, 10) + 15)) * frame
    return audio[onset:], 0


async def bargein_trial(cfg: Config, parts: Parts, question: np.ndarray, cut_in: np.ndarray) -> float | None:
    """The user speaks over the agent's reply: ms from their first word to silence."""
    clock = WallClock()
    sink = TimelineSink(clock, cfg.audio.output_rate)
    agent = Agent(parts, History.for_config(cfg.llm), sink, cfg)
    vad = Vad(cfg.vad)
    user, onset = _trimmed(cut_in)
    said_at: list[int] = []

    def mark() -> bool:
        said_at.append(clock.now())
        return True

    steps = [Pause(0.3), Say(question), Until(sink.playing, hold_s=0.5), Until(mark), Say(user)]
    steps += [Until(lambda: not agent.replying and len(agent.interruptions) > 0, hold_s=0.3, max_s=20)]
    source = ScriptedSource(steps, vad.frame_len, clock)
    async with agent.bus:
        clock.start()
        await agent.listen(source, vad)
    cut = [i for i in agent.interruptions if said_at and i.silenced_at >= said_at[0]]
    if not cut:
        return None
    return round((cut[0].silenced_at - (said_at[0] + onset)) / 16, 1)


def stt_compare(parts: Parts, clips: list[np.ndarray], refs: list[str]) -> dict[str, dict[str, float]]:
    out = {}
    for name, fn in (("agent", parts.stt.transcribe_sync), ("stock", parts.stt.transcribe_stock)):
        results = [fn(c) for c in clips]
        out[name] = {
            "wer": round(wer(refs, [r.text for r in results]), 3),
            "mean_ms": round(statistics.mean(r.seconds for r in results) * 1000, 1),
        }
    return out


async def run_bench(cfg: Config, parts: Parts, opts: BenchOptions, llm_desc: str, console: Console, server: Any = None) -> dict[str, Any]:
    items = load_manifest(opts.speech_dir)[: opts.limit]
    clips = [read_audio(p) for p, _ in items]
    console.print(f"[bold]latency[/]: {len(items)} utterances at real-time pace, LLM: {llm_desc}")
    # The scripted reply repeats word for word, a real LLM's rarely do: measure
    # fresh synthesis, not the audio cache (pinned fillers stay).
    parts.tts.cache.max_bytes = 0
    report, cpu_per_turn, gaps = await latency_run(cfg, parts, clips, console)
    turns = report["turns"]
    latencies = [t["response_latency_ms"] for t in turns if t["response_latency_ms"] is not None]
    console.print("[bold]baseline[/]: the same turns through the naive sequential pipeline")
    baseline = await baseline_run(cfg, parts, clips)
    console.print(f"[bold]barge-in[/]: {opts.bargein_trials} trials")
    if server is not None:
        server.default_reply = LONG_REPLY
    stops = []
    for i in range(min(opts.bargein_trials, len(clips))):
        stop = await bargein_trial(cfg, parts, clips[i], clips[(i + 1) % len(clips)])
        if stop is not None:
            stops.append(stop)
    if server is not None:
        server.default_reply = DEFAULT_REPLY
    console.print("[bold]stt[/]: agent path and stock transcribe()")
    stt = stt_compare(parts, clips, [t for _, t in items])
    stages = {s: [t["stages"][s] for t in turns if t["stages"].get(s) is not None] for s in STAGES}
    return {
        "response_latency_ms": summary(latencies),
        "baseline_response_latency_ms": summary([b["response_latency_ms"] for b in baseline]),
        "bargein_stop_ms": summary(stops),
        "sentence_gap_ms": summary(gaps),
        "sentence_gaps": len(gaps),
        "audio_block_ms": cfg.audio.block_ms,
        "stt": stt,
        "stages_p50_ms": {s: (round(statistics.median(v), 1) if v else None) for s, v in stages.items()},
        "turns": turns,
        "baseline_turns": baseline,
        "bargein_trials": stops,
        "end_of_turn_silence_ms": cfg.vad.end_of_turn_ms,
        "speculate_ms": cfg.vad.speculate_ms,
        "cpu_s_per_turn": round(cpu_per_turn, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "llm": llm_desc,
        "machine": machine(),
    }


def print_table(result: dict[str, Any], console: Console) -> None:
    table = Table(title="voice-agent bench")
    table.add_column("measure")
    for col in ("p50", "p95", "max"):
        table.add_column(col, justify="right")
    for key in ("response_latency_ms", "baseline_response_latency_ms", "bargein_stop_ms", "sentence_gap_ms"):
        row = result[key]
        table.add_row(key, *(f"{row[c]:.0f}" if row[c] is not None else "-" for c in ("p50", "p95", "max")))
    console.print(table)
    stt = result["stt"]
    console.print(
        f"STT  agent: WER {stt['agent']['wer']:.3f}, {stt['agent']['mean_ms']:.0f} ms/utterance   "
        f"stock: WER {stt['stock']['wer']:.3f}, {stt['stock']['mean_ms']:.0f} ms/utterance"
    )
    console.print(f"stages p50 (ms): {result['stages_p50_ms']}")
    console.print(
        f"end-of-turn silence {result['end_of_turn_silence_ms']} ms; CPU {result['cpu_s_per_turn']} s/turn; "
        f"peak RSS {result['peak_rss_mb']} MB; {result['machine']['cores']} cores, {result['machine']['cpu_model']}"
    )


def save(result: dict[str, Any], json_path: Path | None, plot_path: Path | None) -> None:
    if json_path:
        json_path.write_text(json.dumps(result, indent=2))
    if plot_path:
        from ..measure.plot import plot

        plot(result, plot_path)


def scripted_config(cfg: Config, base_url: str) -> Config:
    return replace(cfg, llm=replace(cfg.llm, base_url=base_url, api_key="scripted", model="scripted", backend="openai"))
