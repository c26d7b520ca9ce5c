"""Progress of each reply as it streams, and a rate limit on reporting it.

`ProgressTracker` is a bus tap. For every reply it counts text chunks and
characters streamed, sentences released to speech, sentences spoken and
seconds of audio played, and reports a snapshot at most every `interval_s`
(a fast token stream makes hundreds of chunks a second; nobody needs a line
for each). A reply's last snapshot is always reported: when it is cut off,
when the next reply starts, or when the session ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from ..core.events import (
    SAMPLE_RATE,
    AgentSpeechSent,
    Interruption,
    ReplyPaused,
    ResponseDone,
    SentenceChunk,
    TextChunk,
)
from ..core.timeline import Clock


class RateLimiter:
    """At most one `ready()` per `interval_s` (forced calls always pass and restart the interval)."""

    def __init__(self, interval_s: float, now: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self._now = now
        self._last = -float("inf")

    def ready(self, force: bool = False) -> bool:
        t = self._now()
        if force or t - self._last >= self.interval_s:
            self._last = t
            return True
        return False


@dataclass
class Progress:
    response_id: int
    chunks: int = 0  # text chunks streamed from the LLM
    chars: int = 0
    sentences: int = 0  # released to speech
    sentences_spoken: int = 0  # whose audio has played to the end
    audio_s_sent: float = 0.0
    audio_s_played: float = 0.0
    streaming_done: bool = False
    interrupted: bool = False
    final: bool = False
    _spans: list[tuple[int, int, bool]] = field(default_factory=list, repr=False)  # start, end, ends a sentence

    def played_until(self, now: int) -> None:
        """Update the played figures to the output position `now` (input clock)."""
        self.audio_s_played = round(sum(max(0, min(end, now) - start) for start, end, _ in self._spans) / SAMPLE_RATE, 3)
        self.sentences_spoken = sum(1 for _, end, last in self._spans if last and end <= now)
        self.audio_s_sent = round(sum(end - start for start, end, _ in self._spans) / SAMPLE_RATE, 3)

    def silenced_at(self, at: int) -> None:
        """The reply paused at `at`: what was placed after it did not play (it is placed again if it goes on)."""
        self._spans = [(start, min(end, at), last and end <= at) for start, end, last in self._spans if start < at]

    def record(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}


class ProgressTracker:
    def __init__(self, clock: Clock, emit: Callable[[dict[str, Any]], None], interval_s: float = 0.25, now: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.emit = emit
        self.limit = RateLimiter(interval_s, now)
        self.current: Progress | None = None

    def observe(self, event: Any) -> None:
        rid = getattr(event, "response_id", None)
        if isinstance(event, Interruption):
            if self.current is not None and self.current.response_id == rid:
                self.current.interrupted = True
                self._finish(at=event.silenced_at)
            return
        if isinstance(event, ReplyPaused):
            if self.current is not None and self.current.response_id == rid:
                self.current.silenced_at(event.silenced_at)
            return
        if not isinstance(event, (TextChunk, SentenceChunk, AgentSpeechSent, ResponseDone)):
            return
        if self.current is None or self.current.response_id != rid:
            self._finish()
            self.current = Progress(rid)
        p = self.current
        if isinstance(event, TextChunk):
            p.chunks += 1
            p.chars += len(event.text)
        elif isinstance(event, SentenceChunk):
            p.sentences += 1
        elif isinstance(event, AgentSpeechSent):
            p._spans.append((event.position, event.end, event.ends_sentence))
        else:
            p.streaming_done = True
        self._report(force=isinstance(event, ResponseDone))

    def close(self) -> None:
        """End of the session: the last reply's final snapshot."""
        self._finish()

    def _report(self, force: bool = False) -> None:
        if self.current is not None and self.limit.ready(force):
            self.current.played_until(self.clock.now())
            self.emit(self.current.record())

    def _finish(self, at: int | None = None) -> None:
        if self.current is None:
            return
        p, self.current = self.current, None
        p.final = True
        p.played_until(self.clock.now() if at is None else at)
        self.limit.ready(force=True)
        self.emit(p.record())
