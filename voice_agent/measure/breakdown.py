"""Where a turn's latency goes: the agent's own stage stamps, laid on the judged timeline.

The judge (judge.py) says how late the agent answered, from the audio alone.
This explains it, and only explains it: for the reply that was heard first
after a recording's end of speech, it puts each stage the agent went
through on the same timeline, in ms from that end of speech (the judge's):

    vad_last_voiced   where the agent's VAD heard the last loud frame
    speculation_start the pause at which the agent began to transcribe
    stt_done          the transcript was published (the LLM is called now)
    turn_model_done   the end-of-turn model gave its verdict
    llm_first_token   the first text of the reply arrived
    first_chunk       the first words were released to synthesis
    tts_first_audio   the first synthesized audio came out
    turn_end          the agent decided the turn was over (the gate opens)
    placed            where the sink placed the first audio on the timeline
    heard             where the judge hears the agent (its latency)

Stamps come from a bus tap (`StageTap.observe`) and a timing proxy around
the turn model (`TimedTurnModel`); both stamp the monotonic clock, turned
into timeline samples with the session clock's start (`WallClock.t0`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.events import (
    SAMPLE_RATE,
    AgentSpeechSent,
    AudioChunk,
    SentenceChunk,
    TextChunk,
    Transcript,
    UserStoppedSpeaking,
)

STAGES = (
    "vad_last_voiced", "speculation_start", "stt_done", "turn_model_done", "llm_first_token",
    "first_chunk", "tts_first_audio", "turn_end", "placed", "heard",
)  # fmt: skip


@dataclass
class StageTap:
    """Stamps every event a breakdown needs, with the monotonic time it was published."""

    transcripts: list[tuple[float, Transcript]] = field(default_factory=list)
    ends: list[UserStoppedSpeaking] = field(default_factory=list)
    first: dict[tuple[str, int], float] = field(default_factory=dict)  # (kind, reply id) -> time
    placed: dict[int, int] = field(default_factory=dict)  # reply id -> first placed sample
    verdicts: list[float] = field(default_factory=list)  # turn model verdicts, by time
    clock: Callable[[], float] = time.monotonic

    def observe(self, event: Any) -> None:
        now = self.clock()
        if isinstance(event, Transcript):
            self.transcripts.append((now, event))
        elif isinstance(event, UserStoppedSpeaking):
            self.ends.append(event)
        elif isinstance(event, (TextChunk, SentenceChunk, AudioChunk)):
            self.first.setdefault((type(event).__name__, event.response_id), now)
        elif isinstance(event, AgentSpeechSent):
            self.placed.setdefault(event.response_id, event.position)

    def stages(self, rid: int, end_of_speech: int, heard: int | None, t0: float) -> dict[str, float | None]:
        """ms from `end_of_speech` (timeline samples) to each stage of reply `rid`; `t0`: the clock's start."""
        at = lambda t: (t - t0) * SAMPLE_RATE  # monotonic seconds -> timeline samples
        out: dict[str, float | None] = dict.fromkeys(STAGES)
        token = self.first.get(("TextChunk", rid))
        asked = [(t, tr) for t, tr in self.transcripts if token is not None and t <= token]
        if asked:
            t, tr = asked[-1]
            out["vad_last_voiced"], out["stt_done"] = tr.end, at(t)
            out["speculation_start"] = tr.decided_at
            verdict = next((v for v in self.verdicts if at(v) >= tr.decided_at), None)
            out["turn_model_done"] = None if verdict is None or not tr.speculative else at(verdict)
            end = next((e for e in self.ends if e.start == tr.start), None)
            out["turn_end"] = end.decided_at if end is not None else tr.decided_at
        for stage, kind in (("llm_first_token", "TextChunk"), ("first_chunk", "SentenceChunk"), ("tts_first_audio", "AudioChunk")):
            t = self.first.get((kind, rid))
            out[stage] = None if t is None else at(t)
        out["placed"], out["heard"] = self.placed.get(rid), heard
        return {k: None if v is None else round((v - end_of_speech) / SAMPLE_RATE * 1000, 1) for k, v in out.items()}


class TimedTurnModel:
    """The turn model, stamping the time of each verdict into `tap` (the agent needs only `done`)."""

    def __init__(self, model: Any, tap: StageTap) -> None:
        self.model, self.tap = model, tap

    async def done(self, audio: np.ndarray) -> float:
        p = await self.model.done(audio)
        self.tap.verdicts.append(self.tap.clock())
        return p

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)


def first_heard(replies: list[tuple[int, int, int]], end: int, stop: int) -> tuple[int, int] | None:
    """(reply id, audible start) of the first reply heard in [end, stop), from (rid, start, end) spans."""
    after = sorted((a, rid) for rid, a, _ in replies if end <= a < stop)
    return (after[0][1], after[0][0]) if after else None


def table(rows: list[dict[str, float | None]]) -> dict[str, float | None]:
    """The median of each stage over recordings (those that have it)."""
    out: dict[str, float | None] = {}
    for stage in STAGES:
        values = [r[stage] for r in rows if r.get(stage) is not None]
        out[stage] = round(float(np.median(values)), 1) if values else None
    return out
