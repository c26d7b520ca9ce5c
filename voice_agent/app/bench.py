"""`voice-agent bench`: the agent judged from the audio of one recorded conversation.

The agent runs its real pipeline at real-time pace, with each recording spoken
once it has been quiet for a while after the one before, as the demo does; the
conversation is recorded on one timeline (the user's recordings where they
were placed, and what the sink played). Every figure is computed by
`measure/judge.py` from that audio and the recordings themselves: where each
recording's speech ends (its own energy), whether and how soon agent audio
followed, whether any played over the user, and what the LLM server received.
The agent's own account (its turn events) is kept only as `agent_account`, a
diagnostic. The same recordings then go through the naive sequential pipeline
(baseline.py); barge-in trials start a recording while the agent speaks and
time, on the agent track, its speech onset to silence; both STT paths
transcribe every recording offline.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import resource
import statistics
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import soxr
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
from ..core.events import SAMPLE_RATE, UserStoppedSpeaking
from ..core.timeline import Placed, WallClock
from ..measure import breakdown, judge
from ..measure.baseline import naive_turn
from ..measure.wer import wer
from ..stages.vad import Vad
from .demo import run_demo

# Two sentences, 26 words, the first 13: an LLM is not obliged to open with a one-word sentence.
DEFAULT_REPLY = "I heard what you said, and I can help you with that today. Tell me if there is anything else you would like me to add."
LONG_REPLY = (
    "Here is a longer answer, so that you have time to cut in. It goes on for a few sentences. "
    "Each of them is spoken in turn, until you interrupt."
)


@dataclass
class BenchOptions:
    speech_dirs: list[Path]
    llm: str = "scripted"  # "scripted", "embedded", or an OpenAI-compatible base URL
    ttft_ms: float = 0.0
    tokens_per_s: float = 30.0
    reply: str = DEFAULT_REPLY
    bargein_trials: int = 6
    limit: int | None = None  # use only the first N recordings (quick runs)
    gap_s: float = 1.5  # the user speaks again once the agent has been quiet this long
    output: Path | None = None  # the conversation WAV (user left, agent right)


@dataclass(frozen=True)
class Item:
    name: str  # "<folder>/<file>", as reported
    path: Path
    reference: str


def load_manifest(folder: Path) -> list[Item]:
    """A folder's `manifest.tsv` (columns `file`, `transcript`; `file` may name a subfolder)."""
    manifest = folder / "manifest.tsv"
    if not manifest.is_file():
        raise ConfigError(f"no manifest.tsv in {folder} (tab-separated, header row, columns 'file' and 'transcript')")
    with manifest.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if not rows or not {"file", "transcript"} <= set(rows[0]):
        raise ConfigError(f"{manifest} needs a header row with columns 'file' and 'transcript'")
    items = [Item(f"{folder.name}/{r['file']}", folder / r["file"], r["transcript"]) for r in rows]
    missing = [str(i.path) for i in items if not i.path.is_file()]
    if missing:
        raise AudioInputError(f"{len(missing)} file(s) in {manifest} not found, e.g. {missing[0]}")
    return items


def load_manifests(folders: list[Path]) -> list[Item]:
    return [item for folder in folders for item in load_manifest(folder)]


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    model = names[0] if names else platform.processor() or "unknown"
    return {"cores": os.cpu_count(), "cpu_model": model, "python": platform.python_version()}


def agent_track(sink: TimelineSink, length: int) -> np.ndarray:
    """What the sink played, at 16 kHz on the input timeline, at least `length` samples."""
    rendered = sink.render(np.zeros(0, np.float32), stereo=True)[:, 1]
    track = soxr.resample(rendered, sink.rate, SAMPLE_RATE).astype(np.float32) if len(rendered) else rendered
    return np.concatenate([track, np.zeros(max(0, length - len(track)), np.float32)])


def reply_spans(placed: list[Placed]) -> list[tuple[int, int]]:
    """[start, end) on the timeline of everything the sink played for each reply id."""
    spans: dict[int, tuple[int, int]] = {}
    for p in placed:
        a, b = spans.get(p.chunk.response_id, (p.start, p.end))
        spans[p.chunk.response_id] = (min(a, p.start), max(b, p.end))
    return sorted(spans.values())


def logged_requests(server: Any, clock: WallClock) -> list[judge.Request]:
    """The LLM server's request log on the session's timeline."""
    return [
        judge.Request(round((t - clock.t0) * SAMPLE_RATE), list(body.get("messages", [])))
        for body, t in zip(list(server.requests), list(server.request_times), strict=True)
    ]


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


@dataclass
class Session:
    verdicts: list[judge.Verdict]
    agent_account: dict[str, Any]
    gaps: list[float]
    cpu_s: float
    judged_words: bool  # False: no server log (an outside or embedded LLM), so no session WER
    extra: dict[str, Any] = field(default_factory=dict)
    stages: list[dict[str, float | None]] = field(default_factory=list)  # per recording, breakdown.py


async def session_run(cfg: Config, parts: Parts, items: list[Item], clips: list[np.ndarray], opts: BenchOptions, console: Console, server: Any) -> Session:
    """One conversation over every recording, judged from its audio."""
    if server is not None:
        server.requests.clear()
        server.request_times.clear()
    tap = breakdown.StageTap()
    model = parts.turn_model
    parts.turn_model = breakdown.TimedTurnModel(model, tap) if model is not None else None  # type: ignore[assignment]
    cpu0 = time.process_time()
    try:
        result = await run_demo(cfg, parts, clips, output=opts.output, fast=False, console=console, gap_s=opts.gap_s, tap=tap.observe)
    finally:
        parts.turn_model = model
    cpu = time.process_time() - cpu0
    user = result.source.recorded()
    agent = agent_track(result.sink, len(user))
    placements = [judge.Placement(i.name, at, clip, i.reference) for i, at, clip in zip(items, result.source.said, clips, strict=True)]
    clock = result.sink.clock
    requests = logged_requests(server, clock) if server is not None and isinstance(clock, WallClock) else []
    verdicts = judge.judge(placements, agent, requests, reply_spans(result.sink.placed))
    stages = stage_breakdown(tap, verdicts, result.source.said, agent, result.sink.placed, clock)
    return Session(verdicts, result.report, sentence_gaps(result.sink.placed), cpu, server is not None, stages=stages)


def stage_breakdown(
    tap: breakdown.StageTap, verdicts: list[judge.Verdict], starts: list[int], agent: np.ndarray, placed: list[Placed], clock: Any
) -> list[dict[str, float | None]]:
    """Per recording, where the time to the first reply heard after its end of speech went (breakdown.py)."""
    by_reply: dict[int, list[Placed]] = {}
    for p in placed:
        by_reply.setdefault(p.chunk.response_id, []).append(p)
    heard = []
    for rid, pieces in by_reply.items():
        spans = judge.audible_spans(agent, [(min(p.start for p in pieces), max(p.end for p in pieces))])
        heard += [(rid, a, b) for a, b in spans]
    t0 = clock.t0 if isinstance(clock, WallClock) else 0.0
    out = []
    for i, v in enumerate(verdicts):
        stop = starts[i + 1] if i + 1 < len(starts) else len(agent)
        first = breakdown.first_heard(heard, v.end, stop) if v.end is not None else None
        out.append({} if first is None or v.end is None else tap.stages(first[0], v.end, first[1], t0))
    return out


async def baseline_run(cfg: Config, parts: Parts, clips: list[np.ndarray], names: list[str]) -> list[dict[str, Any]]:
    """The naive pipeline on each recording: its VAD's end of turn, then every stage in turn.

    Latency is from the recording's end of speech (the judge's rule) to the
    end of the naive pipeline's work, when it would start to play.
    """
    out = []
    history = History.for_config(cfg.llm)
    lead = 8000
    for clip, name in zip(clips, names, strict=True):
        vad = Vad(cfg.vad)
        padded = np.concatenate([np.zeros(lead, np.float32), clip, np.zeros(16000, np.float32)])
        turns = [
            e
            for i in range(0, len(padded) - vad.frame_len + 1, vad.frame_len)
            for e in vad.process(i, padded[i : i + vad.frame_len])
            if isinstance(e, UserStoppedSpeaking)
        ]
        extent = judge.speech_extent(clip)
        if not turns or extent is None:
            out.append({"file": name, "response_latency_ms": None, "stages": {}})
            continue
        done = await naive_turn(parts, turns[-1], history.messages())
        waited = (turns[-1].decided_at - (lead + extent[1])) / SAMPLE_RATE * 1000
        work = sum(v for k, v in done.stages.items() if k != "vad_end_of_turn_ms")
        out.append({"file": name, "response_latency_ms": round(waited + work, 1), "stages": done.stages | {"waited_after_speech_ms": round(waited, 1)}})
    return out


@dataclass
class OverReply:
    """A sound played over the agent's reply, as recorded on the timeline."""

    track: np.ndarray  # what the agent played, 16 kHz, on the input timeline
    placed: int  # where the sound began
    audible: bool  # the agent was audible then
    sink: TimelineSink  # what was placed, piece by piece


async def over_reply(cfg: Config, parts: Parts, question: np.ndarray, sound: np.ndarray) -> OverReply | None:
    """Ask `question`, then play `sound` half a second into the reply; None if the sound was never played."""
    clock = WallClock()
    sink = TimelineSink(clock, cfg.audio.output_rate)
    agent = Agent(parts, History.for_config(cfg.llm), sink, cfg)
    vad = Vad(cfg.vad)
    steps = [Pause(0.3), Say(question), Until(sink.playing, hold_s=0.5), Say(sound)]
    steps += [Until(lambda: not agent.replying, hold_s=1.0, max_s=30)]
    source = ScriptedSource(steps, vad.frame_len, clock)
    async with agent.bus:
        clock.start()
        await agent.listen(source, vad)
    if len(source.said) < 2:
        return None
    placed = source.said[1]
    track = agent_track(sink, len(source.recorded()))
    audible = any(a <= placed < b for a, b in judge.audible_spans(track, reply_spans(sink.placed)))
    return OverReply(track, placed, audible, sink)


async def bargein_trial(cfg: Config, parts: Parts, question: np.ndarray, cut_in: np.ndarray) -> float | None:
    """The user speaks over the agent's reply: ms from their speech onset to the agent track going silent.

    None if the agent was not audible when the recording started (nothing to cut);
    negative if it went silent before the words began (on the recording's background).
    """
    extent = judge.speech_extent(cut_in)
    if extent is None:
        return None
    run = await over_reply(cfg, parts, question, cut_in)
    if run is None or not run.audible:
        return None
    silent = judge.silent_from(run.track, run.placed)
    return None if silent is None else round((silent - (run.placed + extent[0])) / SAMPLE_RATE * 1000, 1)


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
    items = load_manifests(opts.speech_dirs)[: opts.limit]
    clips = [read_audio(i.path) for i in items]
    console.print(f"[bold]session[/]: {len(items)} recordings at real-time pace, LLM: {llm_desc}")
    # The scripted reply repeats word for word, a real LLM's rarely do: measure
    # fresh synthesis, not the audio cache (pinned fillers stay).
    parts.tts.cache.max_bytes = 0
    session = await session_run(cfg, parts, items, clips, opts, console, server)
    figures = judge.summarize(session.verdicts)
    if not session.judged_words:
        figures["session_wer"] = None  # no server log to read what the LLM received
    console.print("[bold]baseline[/]: the same recordings through the naive sequential pipeline")
    baseline = await baseline_run(cfg, parts, clips, [i.name for i in items])
    console.print(f"[bold]barge-in[/]: {opts.bargein_trials} trials")
    if server is not None:
        server.default_reply = LONG_REPLY
    stops = []
    for i in range(min(opts.bargein_trials, len(clips))):
        stop = await bargein_trial(cfg, parts, clips[i], clips[(i + 1) % len(clips)])
        if stop is not None:
            stops.append(stop)
    if server is not None:
        server.default_reply = opts.reply
    console.print("[bold]stt[/]: agent path and stock transcribe(), offline on each whole recording")
    stt = stt_compare(parts, clips, [i.reference for i in items])
    return figures | {
        "stt": stt,
        "baseline": {
            "response_latency_ms": summary([b["response_latency_ms"] for b in baseline if b["response_latency_ms"] is not None]),
            "per_recording": baseline,
        },
        "bargein_stop_ms": summary(stops),
        "bargein_trials": stops,
        "sentence_gap_ms": summary(session.gaps),
        "sentence_gaps": len(session.gaps),
        "per_recording": [v.as_dict() | {"stages_ms": st} for v, st in zip(session.verdicts, session.stages, strict=True)],
        "stages_ms_median": breakdown.table([st for st in session.stages if st]),
        "agent_account": session.agent_account,
        "settings": {
            "end_of_turn_silence_ms": cfg.vad.end_of_turn_ms,
            "speculate_ms": cfg.vad.speculate_ms,
            "audio_block_ms": cfg.audio.block_ms,
            "user_waits_after_agent_s": opts.gap_s,
            "scripted_reply": opts.reply if server is not None else None,
            "tokens_per_s": opts.tokens_per_s if server is not None else None,
            "ttft_ms": opts.ttft_ms if server is not None else None,
        },
        "speech_dirs": [str(d) for d in opts.speech_dirs],
        "cpu_s_per_recording": round(session.cpu_s / max(1, len(items)), 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "llm": llm_desc,
        "machine": machine(),
    }


def print_table(result: dict[str, Any], console: Console) -> None:
    console.print(
        f"answered {result['answered']} of {result['recordings']} recordings; "
        f"unanswered {len(result['unanswered'])}, premature {len(result['premature'])}, "
        f"answered more than once {len(result['answered_more_than_once'])}, words passed twice {len(result['words_passed_twice'])}, "
        f"words of the recording before {len(result['words_carried_from_before'])}"
    )
    for key in ("unanswered", "premature", "answered_more_than_once", "words_passed_twice", "words_carried_from_before"):
        if result[key]:
            console.print(f"  {key}: {', '.join(result[key])}")
    table = Table(title="voice-agent bench (judged from the audio)")
    table.add_column("measure (ms)")
    for col in ("p50", "p95", "max"):
        table.add_column(col, justify="right")
    rows = {
        "response_latency_ms": result["response_latency_ms"],
        "baseline response_latency_ms": result["baseline"]["response_latency_ms"],
        "bargein_stop_ms": result["bargein_stop_ms"],
        "sentence_gap_ms": result["sentence_gap_ms"],
    }
    for key, row in rows.items():
        table.add_row(key, *(f"{row[c]:.0f}" if row[c] is not None else "-" for c in ("p50", "p95", "max")))
    console.print(table)
    stages = result.get("stages_ms_median") or {}
    if any(v is not None for v in stages.values()):
        console.print("median ms from the end of speech: " + ", ".join(f"{k} {v:.0f}" for k, v in stages.items() if v is not None))
    stt = result["stt"]
    session_wer = "-" if result["session_wer"] is None else f"{result['session_wer']:.3f}"
    console.print(
        f"WER  session (what the LLM received): {session_wer}   offline agent path: {stt['agent']['wer']:.3f} "
        f"({stt['agent']['mean_ms']:.0f} ms/recording)   stock transcribe(): {stt['stock']['wer']:.3f} ({stt['stock']['mean_ms']:.0f} ms/recording)"
    )
    console.print(
        f"CPU {result['cpu_s_per_recording']} s/recording; peak RSS {result['peak_rss_mb']} MB; "
        f"{result['machine']['cores']} cores, {result['machine']['cpu_model']}; LLM: {result['llm']}"
    )


def save(result: dict[str, Any], json_path: Path | None, plot_path: Path | None) -> None:
    if json_path:
        json_path.write_text(json.dumps(result, indent=2))
    if plot_path:
        from ..measure.plot import plot

        plot(result, plot_path)


def scripted_config(cfg: Config, base_url: str) -> Config:
    return replace(cfg, llm=replace(cfg.llm, base_url=base_url, api_key="scripted", model="scripted", backend="openai"))
