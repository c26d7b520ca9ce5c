"""Turn bookkeeping for reports: when each stage of each turn happened, on the input clock.

`TurnRecorder.observe` is a bus tap: it sees every event the moment it is
published and stamps it with the clock, so a stage's duration is the
difference of two stamps on the same clock as the audio.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..core.events import (
    SAMPLE_RATE,
    AgentSpeechSent,
    AudioChunk,
    Interruption,
    ResponseDone,
    SentenceChunk,
    TextChunk,
    Transcript,
    UserPaused,
    UserStoppedSpeaking,
)
from ..core.timeline import Clock
from ..stages.audio_cache import CacheStats


def ms(samples: int | float) -> float:
    return round(samples * 1000 / SAMPLE_RATE, 1)


def summary(values: list[float]) -> dict[str, float | None]:
    """p50, p95 and max (nearest-rank percentiles)."""
    if not values:
        return {"p50": None, "p95": None, "max": None}
    ordered = sorted(values)

    def rank(p: float) -> float:
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

    return {"p50": round(rank(50), 1), "p95": round(rank(95), 1), "max": round(ordered[-1], 1)}


@dataclass
class Turn:
    start: int  # where the user's audio for this turn starts
    speech_end: int
    decided_at: int
    user_text: str = ""
    response_id: int | None = None
    stamps: dict[str, int] = field(default_factory=dict)  # stage -> clock position
    first_audio_at: int | None = None  # where the first agent audio plays
    agent_text: str = ""
    error: str | None = None
    interrupted: bool = False
    speculative: bool = False  # the reply was prepared during the pause
    tts_cached: int = 0  # audio pieces from the TTS cache
    tts_synthesized: int = 0  # audio pieces synthesized fresh

    def report(self) -> dict[str, Any]:
        def since(a: str, b: str) -> float | None:
            if a in self.stamps and b in self.stamps:
                return ms(self.stamps[b] - self.stamps[a])
            return None

        latency = None if self.first_audio_at is None else ms(self.first_audio_at - self.speech_end)
        return {
            "user_text": self.user_text,
            "agent_text": self.agent_text,
            "response_latency_ms": latency,
            "speculative": self.speculative,
            "stages": {
                "vad_end_of_turn_ms": ms(self.decided_at - self.speech_end),
                "stt_ms": since("stt_start", "transcript"),
                "llm_first_token_ms": since("transcript", "first_token"),
                "first_sentence_ms": since("transcript", "first_sentence"),
                "tts_first_audio_ms": since("first_sentence", "first_audio"),
            },
            # Each stage's time on the timeline, from the end of the user's speech.
            "timeline_ms": {k: ms(v - self.speech_end) for k, v in self.stamps.items()}
            | ({} if self.first_audio_at is None else {"first_audio_plays": ms(self.first_audio_at - self.speech_end)})
            | {"turn_decided": ms(self.decided_at - self.speech_end)},
            "error": self.error,
            "interrupted": self.interrupted,
            "tts_cache": {"hits": self.tts_cached, "misses": self.tts_synthesized},
        }


class TurnRecorder:
    """Keeps every turn, or in a long session the latest `keep` (older ones are in the --metrics file)."""

    def __init__(self, clock: Clock, keep: int | None = None) -> None:
        self.clock = clock
        self.turns: deque[Turn] = deque(maxlen=keep)
        self.interruptions: deque[dict[str, Any]] = deque(maxlen=keep)
        self._by_response: dict[int, Turn] = {}
        self.cache = CacheStats()  # TTS cache use over the session

    def observe(self, event: Any) -> None:
        now = self.clock.now()
        if isinstance(event, (UserPaused, UserStoppedSpeaking)):
            turn = self._turn_at(event.start)
            turn.speech_end = event.end
            if isinstance(event, UserStoppedSpeaking):
                turn.decided_at = event.decided_at
            # STT starts at the pause when speculating, else at the end of the turn.
            if isinstance(event, UserPaused) or "transcript" not in turn.stamps:
                turn.stamps["stt_start"] = event.decided_at
        elif isinstance(event, Transcript):
            turn = self._turn_at(event.start)
            turn.user_text, turn.speculative = event.text, event.speculative
            turn.stamps["transcript"] = now
            turn.response_id = None  # the next reply answers this transcript
            for stage in ("first_token", "first_sentence", "first_audio"):
                turn.stamps.pop(stage, None)
        elif isinstance(event, TextChunk):
            self._turn(event.response_id).stamps.setdefault("first_token", now)
        elif isinstance(event, SentenceChunk):
            self._turn(event.response_id).stamps.setdefault("first_sentence", now)
        elif isinstance(event, AudioChunk):
            turn = self._turn(event.response_id)
            turn.stamps.setdefault("first_audio", now)
            self.cache.hits += event.cached
            self.cache.misses += not event.cached
            turn.tts_cached += event.cached
            turn.tts_synthesized += not event.cached
        elif isinstance(event, AgentSpeechSent):
            turn = self._turn(event.response_id)
            if turn.first_audio_at is None:
                turn.first_audio_at = event.position
        elif isinstance(event, ResponseDone):
            turn = self._turn(event.response_id)
            turn.agent_text, turn.error = event.text, event.error
        elif isinstance(event, Interruption):
            if event.response_id in self._by_response:
                self._by_response[event.response_id].interrupted = True
            self.interruptions.append(
                {
                    "response_id": event.response_id,
                    "user_speech_start_ms": ms(event.position),
                    "decided_at_ms": ms(now),
                    "silent_at_ms": ms(event.silenced_at),
                    # from the start of the user's speech to the agent's output going silent
                    "stop_ms": ms(event.silenced_at - event.position),
                    "heard": event.heard,
                }
            )

    def turn_of(self, response_id: int) -> Turn | None:
        """The turn a reply answers, if it has been seen."""
        return self._by_response.get(response_id)

    def _turn_at(self, start: int) -> Turn:
        if self.turns and self.turns[-1].start == start:
            return self.turns[-1]
        turn = Turn(start=start, speech_end=start, decided_at=start)
        self._append(turn)
        return turn

    def _append(self, turn: Turn) -> None:
        if self.turns.maxlen is not None and len(self.turns) == self.turns.maxlen:
            gone = self.turns[0]  # a turn may have had several replies (speculative, resumed)
            self._by_response = {rid: t for rid, t in self._by_response.items() if t is not gone}
        self.turns.append(turn)

    def _turn(self, response_id: int) -> Turn:
        if response_id not in self._by_response:
            # A reply answers the latest transcript (a resumed reply: the latest turn).
            turn = next((t for t in reversed(self.turns) if t.response_id is None), None)
            if turn is None:
                turn = Turn(start=self.clock.now(), speech_end=self.clock.now(), decided_at=self.clock.now())
                self._append(turn)
            turn.response_id = response_id
            self._by_response[response_id] = turn
        return self._by_response[response_id]

    def report(self) -> dict[str, Any]:
        turns = [t.report() for t in self.turns if t.user_text]
        out: dict[str, Any] = {"turns": turns, "interruptions": list(self.interruptions)}
        out["tts_cache"] = {"hits": self.cache.hits, "misses": self.cache.misses, "hit_rate": self.cache.hit_rate}
        if not turns:
            out["note"] = "no user turn was heard"
        return out
