"""Faults in a live-like session: what the user hears, and that the session goes on.

Real speech, real models, a real HTTP LLM server that misbehaves on cue.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from conftest import SPEECH, free_port
from timeline import Seen, converse

from voice_agent.audio.source import Pause, Say, Step, Until, read_audio
from voice_agent.conversation.agent import Agent
from voice_agent.core.config import Config
from voice_agent.core.events import AgentSpeechSent, ResponseDone, Transcript
from voice_agent.core.timeline import WallClock
from voice_agent.measure.scripted_llm import Reply, ScriptedLLM
from voice_agent.stages.stt import Transcriber
from voice_agent.stages.tts import Synthesizer

# One request per turn: no speculative requests to consume scripted replies out of order.
CFG = replace(Config(), vad=replace(Config().vad, speculate_ms=0, quick_end_of_turn_ms=0))
CFG = replace(CFG, llm=replace(CFG.llm, first_token_timeout_s=1.5, inter_token_timeout_s=1.0))
APOLOGY = CFG.apology
Q = read_audio(SPEECH / "ps_cards_003.wav")


@pytest.fixture(scope="module")
def models() -> tuple[Transcriber, Synthesizer]:
    tts = Synthesizer(CFG.tts, CFG.models_dir, CFG.audio.output_rate)
    tts.warm_up([APOLOGY])
    return Transcriber(CFG.stt, CFG.models_dir), tts


def turns(agent: Agent, seen: Seen, n: int) -> list[Step]:
    """The user asks `n` times, each time once the agent has finished."""
    steps: list[Step] = [Pause(0.3)]
    for i in range(n):
        steps += [Say(Q), Until(lambda i=i: seen.count(ResponseDone) > i and not agent.replying, hold_s=0.3, max_s=30)]
    return steps


def replies_heard(seen: Seen) -> list[str]:
    """What the user heard, reply by reply."""
    heard: dict[int, list[str]] = {}
    for e in seen.of(AgentSpeechSent):
        heard.setdefault(e.response_id, []).append(e.text)
    return [" ".join(texts) for _, texts in sorted(heard.items())]


async def test_each_llm_fault_is_apologised_for_and_the_next_turn_works(models) -> None:
    script = [
        Reply(fault="500"), Reply(fault="500"),  # retried once, then the turn fails
        "First answer.",
        Reply("One two three four five six.", fault="drop", drop_after=3),  # breaks after words were said
        "Second answer.",
        Reply("Never shown.", fault="garbage"),
        Reply("Too late.", fault="hang"),  # no first token within the timeout
        Reply(fault="401"),
        "Third answer.",
    ]
    async with ScriptedLLM() as server:
        server.push(*script)
        agent, seen, _ = await converse(server, models, lambda a, s, c: turns(a, s, 8), CFG)
    assert replies_heard(seen) == [
        APOLOGY,
        "First answer.",
        f"One two three {APOLOGY}",  # what was said is said, then the apology
        "Second answer.",
        f"Never {APOLOGY}",
        APOLOGY,
        APOLOGY,
        "Third answer.",
    ]
    errors = [e.error for e in seen.of(ResponseDone) if e.error]
    assert len(errors) == 5 and "HTTP 500" in errors[0] and "ended before" in errors[1] and "malformed" in errors[2]
    assert "did not answer" in errors[3] and "API key" in errors[4]
    # Failed turns leave no trace in the history; the answered ones are all there.
    assert [m["content"] for m in agent.history.turns if m["role"] == "assistant"] == ["First answer.", "Second answer.", "Third answer."]
    assert all(m["role"] == "user" for m in agent.history.turns[::2])


async def test_an_llm_that_is_down_comes_back(models) -> None:
    port = free_port()
    server = ScriptedLLM("Back online.")
    server.port = port  # the agent is configured for it before it runs

    def script(agent: Agent, seen: Seen, clock: WallClock) -> list[Step]:
        def start_server() -> bool:
            server.start_in_thread(port)
            return True

        first_failed = lambda: seen.count(ResponseDone) > 0 and not agent.replying  # noqa: E731
        return [Pause(0.3), Say(Q), Until(first_failed, hold_s=0.3), Until(start_server), Say(Q),
                Until(lambda: seen.count(ResponseDone) > 1 and not agent.replying, hold_s=0.3)]

    try:
        agent, seen, _ = await converse(server, models, script, CFG)
    finally:
        server.stop_thread()
    assert replies_heard(seen) == [APOLOGY, "Back online."]
    (refused,) = [e.error for e in seen.of(ResponseDone) if e.error]
    assert refused == f"cannot reach the LLM at http://127.0.0.1:{port}/v1 (is it running? check OPENAI_BASE_URL)"
    assert [m["role"] for m in agent.history.turns] == ["user", "assistant"]


# --- not speech: no turn ------------------------------------------------------------------


def noise(seconds: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.1, int(16000 * seconds)).astype(np.float32)


def music(seconds: float) -> np.ndarray:
    """Chords with a beat: tonal, loud and rhythmic, like a song playing in the room."""
    t = np.arange(int(16000 * seconds)) / 16000
    chords = [(261.6, 329.6, 392.0), (220.0, 261.6, 329.6), (174.6, 220.0, 261.6), (196.0, 246.9, 293.7)]
    out = np.zeros_like(t)
    for i, chord in enumerate(chords * int(seconds)):
        part = (t >= i * 0.5) & (t < (i + 1) * 0.5)
        for f in chord:
            out[part] += np.sin(2 * np.pi * f * t[part]) * np.exp(-3 * (t[part] - i * 0.5))
    beat = np.sin(2 * np.pi * 60 * t) * (np.mod(t, 0.5) < 0.05)
    return (0.15 * out + 0.3 * beat).astype(np.float32)


@pytest.mark.parametrize("kind", ["silence", "noise", "music"])
async def test_sounds_that_are_not_speech_make_no_turn(models, kind: str) -> None:
    sound = {"silence": np.zeros(16000 * 4, np.float32), "noise": noise(4), "music": music(4)}[kind]
    async with ScriptedLLM("Should not be asked.") as server:
        agent, seen, _ = await converse(server, models, lambda a, s, c: [Pause(0.3), Say(sound), Pause(1.5)], CFG)
    assert seen.of(Transcript) == [] and not server.requests


@pytest.mark.parametrize("clip", ["ps_cards_001.wav", "ps_cards_004.wav", "ps_tidigits_dhd_2934z.wav"])
async def test_short_real_answers_still_make_a_turn(models, clip: str) -> None:
    async with ScriptedLLM("Got it.") as server:
        agent, seen, _ = await converse(server, models, lambda a, s, c: [Pause(0.3), Say(read_audio(SPEECH / clip)), Pause(1.5)], CFG)
    assert [t.text for t in seen.of(Transcript)] and len(server.requests) == 1


# --- text the voice cannot say ---------------------------------------------------------------


async def test_text_the_voice_cannot_say_is_skipped_and_the_rest_is_said(models) -> None:
    from voice_agent.app.demo import run_demo
    from voice_agent.conversation.parts import Parts
    from voice_agent.core.events import ErrorEvent
    from voice_agent.stages.llm import OpenAIChat

    unpunctuated = " ".join(f"word{i % 10}" for i in range(90))  # about 600 characters, no punctuation
    text = f"🎉🎉 {unpunctuated} `def f(x): return x[0]` 你好世界 Привет done."
    async with ScriptedLLM(text) as server:
        llm = OpenAIChat(replace(CFG.llm, base_url=server.base_url, api_key="k", model="scripted", backend="openai"))
        events: list[object] = []
        result = await run_demo(CFG, Parts(*models, llm=llm), [Q], fast=True, tap=events.append)
        await llm.aclose()
    assert not [e for e in events if isinstance(e, ErrorEvent)]
    said = " ".join(e.text for e in events if isinstance(e, AgentSpeechSent))
    assert said.count("word") == 90 and said.endswith("done.")
    assert "def f(x): return x zero" in said
    assert not any(ord(ch) > 0x2000 for ch in said), "no emoji or other scripts reach the voice"
    assert result.report["turns"][0]["agent_text"] == text, "the history keeps what the LLM wrote"
