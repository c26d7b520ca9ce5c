"""Progress tracking and its rate limit: pure, on a hand-driven clock."""

from __future__ import annotations

from typing import Any

from voice_agent.conversation.progress import ProgressTracker, RateLimiter
from voice_agent.core.events import (
    AgentSpeechSent,
    Interruption,
    ReplyPaused,
    ResponseDone,
    SentenceChunk,
    TextChunk,
)
from voice_agent.core.timeline import FrameClock


class Wall:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_rate_limiter() -> None:
    wall = Wall()
    limit = RateLimiter(0.25, wall)
    passed = []
    for i in range(100):  # 10 ms apart: one second
        wall.t = i * 0.01
        passed.append(limit.ready())
    assert sum(passed) == 4
    assert limit.ready(force=True)


def run(events: list[Any], clock: FrameClock, wall: Wall, step_s: float = 0.001) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    tracker = ProgressTracker(clock, out.append, interval_s=0.25, now=wall)
    for e in events:
        wall.t += step_s
        tracker.observe(e)
    return out


def test_a_fast_stream_is_reported_a_few_times_with_exact_totals() -> None:
    clock, wall = FrameClock(), Wall()
    tokens = [TextChunk(1, "word ") for _ in range(2000)]  # 2000 chunks in 2 s
    events: list[Any] = [*tokens, SentenceChunk(1, "word " * 5, 0), AgentSpeechSent(1, "w", 0, 16_000), ResponseDone(1, "")]
    out = run(events, clock, wall)
    assert 8 <= len(out) <= 10, "about four a second, not one per chunk"
    last = out[-1]
    assert (last["chunks"], last["chars"], last["sentences"], last["streaming_done"]) == (2000, 10_000, 1, True)
    assert last["audio_s_sent"] == 1.0 and last["audio_s_played"] == 0.0 and not last["final"]


def test_the_final_record_counts_what_played_and_what_was_cut() -> None:
    clock, wall = FrameClock(), Wall()
    out: list[dict[str, Any]] = []
    tracker = ProgressTracker(clock, out.append, interval_s=0.25, now=wall)
    for e in [TextChunk(1, "One. Two."), SentenceChunk(1, "One.", 0), SentenceChunk(1, "Two.", 1),
              AgentSpeechSent(1, "One.", 0, 8000), AgentSpeechSent(1, "Two.", 8000, 24_000), ResponseDone(1, "One. Two.")]:
        tracker.observe(e)
    clock.position = 12_000  # 0.75 s later the user cuts in
    tracker.observe(Interruption(1, position=9000, silenced_at=12_000))
    final = out[-1]
    assert final["final"] and final["interrupted"]
    assert (final["sentences"], final["sentences_spoken"], final["audio_s_played"], final["audio_s_sent"]) == (2, 1, 0.75, 1.5)
    # The next reply starts fresh; closing the session reports its final record.
    tracker.observe(TextChunk(2, "Hi."))
    tracker.close()
    assert out[-1]["response_id"] == 2 and out[-1]["final"] and out[-1]["chars"] == 3


def test_a_reply_that_paused_and_went_on_counts_each_sample_once() -> None:
    clock, wall = FrameClock(), Wall()
    out: list[dict[str, Any]] = []
    tracker = ProgressTracker(clock, out.append, interval_s=0.25, now=wall)
    for e in [SentenceChunk(1, "One.", 0), SentenceChunk(1, "Two.", 1),
              AgentSpeechSent(1, "One.", 0, 8000), AgentSpeechSent(1, "Two.", 8000, 24_000),
              ReplyPaused(1, silenced_at=12_000),  # a voice over "Two." at 0.75 s ...
              AgentSpeechSent(1, "Two.", 16_000, 28_000)]:  # ... and 0.25 s later its unheard 0.75 s plays
        tracker.observe(e)
    clock.position = 40_000
    tracker.close()
    final = out[-1]
    assert (final["sentences_spoken"], final["audio_s_played"], final["audio_s_sent"]) == (2, 1.5, 1.5)
