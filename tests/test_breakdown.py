"""The latency breakdown: the agent's stage stamps laid on the judged timeline (measure/breakdown.py)."""

from __future__ import annotations

import numpy as np

from voice_agent.core.events import (
    AgentSpeechSent,
    AudioChunk,
    SentenceChunk,
    TextChunk,
    Transcript,
    UserStoppedSpeaking,
)
from voice_agent.measure.breakdown import STAGES, StageTap, first_heard, table

MS = 16  # samples per ms


def test_each_stage_of_the_reply_heard_is_placed_from_the_end_of_speech() -> None:
    now = [0.0]
    tap = StageTap(clock=lambda: now[0])
    t0 = 100.0  # the session clock started here (monotonic seconds)

    def at(ms: float, event: object) -> None:
        now[0] = t0 + ms / 1000
        tap.observe(event)

    end_of_speech = 1000 * MS  # the judge's, on the timeline
    # An earlier fragment and its reply (id 1): not the one heard.
    at(600, Transcript("Go forward", 200 * MS, 500 * MS, 650 * MS, speculative=True))
    at(610, TextChunk(1, "I"))
    # The turn's end: speculation at 1150 ms, transcript at 1400, reply 2.
    at(1400, Transcript("Go forward ten meters.", 200 * MS, 1010 * MS, 1150 * MS, speculative=True))
    tap.verdicts.append(t0 + 1.55)
    at(1420, TextChunk(2, "I heard"))
    at(1600, SentenceChunk(2, "I heard what you said,", 0))
    at(1230, UserStoppedSpeaking(200 * MS, 1010 * MS, 1210 * MS, np.zeros(0, np.float32)))
    at(1650, AudioChunk(2, np.zeros(10, np.int16), 22050, "I heard what you said,"))
    at(1650, AgentSpeechSent(2, "I heard what you said,", 1655 * MS, 2500 * MS))
    got = tap.stages(2, end_of_speech, heard=1665 * MS, t0=t0)
    assert set(got) == set(STAGES)
    assert got == {
        "vad_last_voiced": 10.0, "speculation_start": 150.0, "stt_done": 400.0, "turn_model_done": 550.0,
        "llm_first_token": 420.0, "first_chunk": 600.0, "tts_first_audio": 650.0, "turn_end": 210.0,
        "placed": 655.0, "heard": 665.0,
    }  # fmt: skip
    # The median table over recordings leaves out stages a recording lacks.
    assert table([got, {**got, "turn_model_done": None, "heard": 675.0}])["heard"] == 670.0
    assert table([got, {**got, "turn_model_done": None}])["turn_model_done"] == 550.0


def test_the_first_reply_heard_after_the_end_of_speech_is_the_one_explained() -> None:
    spans = [(1, 100, 200), (3, 900, 1500), (2, 500, 800)]  # (reply id, audible start, end)
    assert first_heard(spans, end=400, stop=2000) == (2, 500)
    assert first_heard(spans, end=1000, stop=2000) is None
