"""`voice-agent bench --soak N`: a long session in fast timeline mode, watched for leaks.

N user turns from recorded speech, answered by the scripted LLM; at random,
the user cuts the agent off mid-reply. After a warm-up the run samples the
process (resident memory, open file descriptors, live asyncio tasks, Python
objects) and samples again at the end; in between, a bus tap counts stale
audio: agent audio of an older reply handed to the speaker after a newer
reply began, or after its own reply was cut off.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..audio.sink import TimelineSink
from ..audio.source import Pause, Say, ScriptedSource, Step, Until
from ..conversation.agent import Agent, Parts
from ..conversation.history import History
from ..conversation.metrics import TurnRecorder
from ..conversation.progress import ProgressTracker
from ..core.config import Config
from ..core.events import AgentResponse, AgentSpeechSent, AudioChunk, Interruption
from ..core.timeline import FrameClock
from ..stages.vad import Vad


@dataclass
class Sample:
    rss_mb: float
    fds: int
    tasks: int
    objects: int


def sample() -> Sample:
    gc.collect()
    with open("/proc/self/statm") as f:
        rss_pages = int(f.read().split()[1])
    return Sample(
        rss_mb=round(rss_pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1),
        fds=len(os.listdir("/proc/self/fd")),
        tasks=len(asyncio.all_tasks()),
        objects=len(gc.get_objects()),
    )


class StaleAudio:
    """A bus tap counting audio that should never reach the speaker."""

    def __init__(self) -> None:
        self.newest = 0
        self.cut: set[int] = set()
        self.count = 0

    def observe(self, event: Any) -> None:
        if isinstance(event, Interruption) and event.response_id is not None:
            self.cut.add(event.response_id)
        elif isinstance(event, AgentSpeechSent):
            if event.response_id < self.newest or event.response_id in self.cut:
                self.count += 1
        elif isinstance(event, AgentResponse) and not isinstance(event, AudioChunk):
            self.newest = max(self.newest, event.response_id)


@dataclass
class SoakReport:
    turns: int
    interruptions: int
    seconds: float
    start: Sample
    end: Sample
    stale_audio: int
    history_tokens: int
    history_messages: int
    tts_cache_entries: int
    held: dict[str, int]  # what the session's buffers hold at the end

    @property
    def rss_growth_pct(self) -> float:
        return round(100 * (self.end.rss_mb - self.start.rss_mb) / self.start.rss_mb, 2)

    def summary(self) -> dict[str, Any]:
        return {
            "turns": self.turns,
            "rss_growth_pct": self.rss_growth_pct,
            "fd_growth": self.end.fds - self.start.fds,
            "task_growth": self.end.tasks - self.start.tasks,
            "stale_audio": self.stale_audio,
            "object_growth": self.end.objects - self.start.objects,
            "interruptions": self.interruptions,
            "seconds": self.seconds,
            "rss_mb": {"after_warmup": self.start.rss_mb, "end": self.end.rss_mb},
            "history": {"tokens": self.history_tokens, "messages": self.history_messages},
            "tts_cache_entries": self.tts_cache_entries,
            "held": self.held,
        }


async def run_soak(
    cfg: Config, parts: Parts, clips: list[np.ndarray], turns: int, seed: int = 0, cut_share: float = 0.3, warmup: int | None = None
) -> SoakReport:
    clock = FrameClock()
    sink = TimelineSink(clock, cfg.audio.output_rate, keep=False)
    agent = Agent(parts, History.for_config(cfg.llm), sink, cfg)
    vad = Vad(cfg.vad)
    stale = StaleAudio()
    recorder = TurnRecorder(clock, keep=100)
    agent.bus.tap(recorder.observe)
    agent.bus.tap(ProgressTracker(clock, lambda record: None).observe)
    agent.bus.tap(stale.observe)
    if warmup is None:
        warmup = max(1, turns // 4)  # by then the bounded buffers (history, recorder) are mostly full
    samples: list[Sample] = []
    rng = random.Random(seed)

    def script() -> Iterator[Step]:
        yield Pause(0.5)
        for i in range(turns):
            if i == warmup:
                samples.append(sample())
            yield Say(rng.choice(clips))
            if rng.random() < cut_share:
                yield Until(sink.playing, max_s=10)  # the reply is playing: cut in after a moment
                yield Pause(rng.uniform(0.2, 1.5))
            else:
                yield Until(lambda: not agent.replying, hold_s=0.3)
        yield Until(lambda: not agent.replying, hold_s=0.3)
        samples.append(sample())  # still inside the session: its routes' tasks are alive in both samples

    t0 = time.perf_counter()
    source = ScriptedSource(script(), vad.frame_len, clock, keep=False)
    async with agent.bus:
        await agent.listen(source, vad, fast=True)
    if len(samples) < 2:
        raise ValueError(f"a soak needs at least 2 turns, got {turns}")
    return SoakReport(
        turns=turns,
        interruptions=len(stale.cut),
        seconds=round(time.perf_counter() - t0, 1),
        start=samples[0],
        end=samples[-1],
        stale_audio=stale.count,
        history_tokens=agent.history.tokens,
        history_messages=len(agent.history.turns),
        tts_cache_entries=len(parts.tts.cache),
        held={
            "recorder_turns": len(recorder.turns),
            "agent_interruptions": len(agent.interruptions),
            "sink_placed": len(sink.placed),
            "source_fed": len(source.fed),
            "tts_cache_bytes": parts.tts.cache.nbytes,
        },
    )


def report_dict(report: SoakReport) -> dict[str, Any]:
    return {"soak": report.summary(), "samples": {"after_warmup": asdict(report.start), "end": asdict(report.end)}}
