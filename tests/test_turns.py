"""One answer per utterance, to all of its words, judged from the audio.

Real recordings joined with a pause of the recording's own background (a user
who pauses mid-utterance), real models, the real loopback LLM server streaming
at 30 tokens/s, real-time pace. Each conversation is judged by
`measure.judge` from the user recordings, the agent track and the server's
request log, never from the agent's events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest
import soxr
from conftest import SPEECH
from timeline import Seen, converse

from voice_agent.audio.sink import TimelineSink
from voice_agent.audio.source import Pause, Say, Step, Until, read_audio
from voice_agent.conversation.agent import Agent
from voice_agent.conversation.turns import Utterance, goes_on
from voice_agent.core.config import Config
from voice_agent.core.events import (
    SAMPLE_RATE,
    AgentSpeechSent,
    ResponseDone,
    SentenceChunk,
    TextChunk,
    Transcript,
)
from voice_agent.core.timeline import WallClock
from voice_agent.measure.judge import Placement, Request, judge, speech_extent
from voice_agent.measure.scripted_llm import ScriptedLLM
from voice_agent.measure.wer import normalize
from voice_agent.stages.stt import Transcriber
from voice_agent.stages.tts import Synthesizer
from voice_agent.stages.turn_model import SmartTurn
from voice_agent.stages.turn_model import load as load_turn_model

REPLY = "Sure, I heard you clearly and I can help with that right away. Tell me a little more about what you need today."
LEAD_S = 0.5


# --- pure: the utterance's words ---------------------------------------------------


def test_carried_words_are_set_never_appended() -> None:
    u = Utterance()
    first = u.words("This is Diane in New Jersey.")
    u.unanswered(first)  # its reply was cut before it was heard
    second = u.words("I have a question.")
    u.unanswered(second)  # and again
    assert u.words("About my bill.") == "This is Diane in New Jersey. I have a question. About my bill."
    u.answered()
    assert u.words("Thanks.") == "Thanks."


def test_a_whole_that_lost_the_carried_words_is_refused() -> None:
    u = Utterance()
    audio = np.zeros(1600, np.float32)
    assert u.transcribed("two nine three", audio) == "two nine three"
    u.unanswered("two nine three")
    assert u.carried_audio is audio
    assert u.transcribed("4 0.", audio) is None  # Whisper dropped the first part of the whole
    assert u.transcribed("two nine three four zero", audio) == "two nine three four zero"


def test_a_committed_transcript_carried_again_keeps_its_audio() -> None:
    """The reply began, then the user went on: the next transcription hears the whole utterance."""
    u = Utterance()
    audio = np.ones(1600, np.float32)
    text = u.transcribed("The number you have dialed is not in service.", audio)
    u.answered()  # committed: its reply is playing
    assert u.words("Please check.") == "Please check."
    u.unanswered(text)  # they went on within continue_ms: it was not the end
    assert u.carried_audio is audio and u.words("Please check.") == f"{text} Please check."


def test_a_speculation_goes_stale_when_the_user_goes_on() -> None:
    u = Utterance()
    t = Transcript("with only like four games to go", 100, 200, speculative=True)
    u.speculate(t)
    assert u.fresh(t)
    u.went_on(300)
    assert not u.fresh(t) and u.speculated is None
    assert u.gone_on_since(250) and not u.gone_on_since(400)


def test_goes_on_within_the_window_only() -> None:
    assert goes_on(speech_start=16_000, first_audible=10_000, window=8_000)
    assert not goes_on(speech_start=30_000, first_audible=10_000, window=8_000)
    assert not goes_on(speech_start=16_000, first_audible=None, window=8_000)


# --- real speech ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def models() -> tuple[Transcriber, Synthesizer, SmartTurn | None]:
    cfg = Config()
    stt = Transcriber(cfg.stt, cfg.models_dir)
    tts = Synthesizer(cfg.tts, cfg.models_dir, cfg.audio.output_rate)
    turn_model = load_turn_model(cfg.models_dir)
    assert turn_model is not None, "pipecat-ai (the smart-turn model) is a dependency"
    stt.warm_up()
    tts.warm_up()
    turn_model.warm_up()
    return stt, tts, turn_model


def background(audio: np.ndarray, seconds: float) -> np.ndarray:
    """The recording's own quietest 100 ms, tiled: its real background, no speech."""
    n = 1600
    frames = audio[: len(audio) // n * n].reshape(-1, n)
    quiet = frames[int(np.argmin(np.mean(frames.astype(np.float64) ** 2, axis=1)))]
    return np.tile(quiet, int(seconds * SAMPLE_RATE) // n + 1)[: int(seconds * SAMPLE_RATE)]


def joined(first: str, second: str, pause_s: float) -> np.ndarray:
    """`first` up to the end of its words, a pause of its background, `second` from its first word."""
    a, b = read_audio(SPEECH / first), read_audio(SPEECH / second)
    (_, a_end), (b_on, _) = speech_extent(a), speech_extent(b)
    keep = SAMPLE_RATE // 20  # 50 ms either side: the words' own edges
    return np.concatenate([a[: a_end + keep], background(a, pause_s), b[max(0, b_on - keep) :]]).astype(np.float32)


def agent_track(sink: TimelineSink, length: int) -> np.ndarray:
    """What the agent played, at 16 kHz on the input timeline."""
    agent = sink.render(np.zeros(length, np.float32), stereo=True)[:, 1]
    return soxr.resample(agent, sink.rate, SAMPLE_RATE).astype(np.float32)


def requests_of(server: ScriptedLLM, clock: WallClock) -> list[Request]:
    """The server's log, each request placed on the session's timeline."""
    return [
        Request(int((t - clock.t0) * SAMPLE_RATE), list(r["messages"]))
        for t, r in zip(server.request_times, server.requests)
    ]


async def session(models, utterances: list[np.ndarray], cfg: Config, server: ScriptedLLM):
    """Each utterance said once the agent has finished with the one before; judged from the audio."""
    starts: list[int] = []
    clocks: list[WallClock] = []

    def script(agent: Agent, seen: Seen, clock: WallClock) -> list[Step]:
        clocks.append(clock)
        def answered(n: int) -> Callable[[], bool]:
            return lambda: seen.count(ResponseDone) >= n and not agent.replying

        steps: list[Step] = [Pause(LEAD_S)]
        for i, audio in enumerate(utterances):
            steps += [Until(lambda: starts.append(clock.now()) is None), Say(audio), Until(answered(i + 1), hold_s=0.8)]
        return steps

    stt, tts, turn_model = models
    agent, _seen, sink = await converse(server, (stt, tts), script, cfg, turn_model=turn_model)
    placements = [Placement(f"u{i}", s, a) for i, (s, a) in enumerate(zip(starts, utterances))]
    length = max(s + len(a) for s, a in zip(starts, utterances)) + 5 * SAMPLE_RATE
    verdicts = judge(placements, agent_track(sink, length), requests_of(server, clocks[0]))
    return agent, verdicts


def user_lines(agent: Agent) -> list[str]:
    return [m["content"] for m in agent.history.turns if m["role"] == "user"]


async def test_a_pause_mid_utterance_is_answered_once_with_every_word(models) -> None:
    """A user who pauses 350 ms inside an utterance (the agent has answered before,
    so its last reply is still the current one): the speculation made at the pause
    goes stale when they go on, and one answer follows, to all of their words."""
    first = read_audio(SPEECH / "ps_goforward.wav")
    second = joined("ps_librivox_sense_and_sensibility_0880.wav", "ps_librivox_sense_and_sensibility_0930.wav", 0.35)
    async with ScriptedLLM(REPLY, tokens_per_s=30) as server:
        agent, verdicts = await session(models, [first, second], Config(), server)
    for v in verdicts:
        print(v.as_dict())
    assert all(v.answered and v.answers == 1 for v in verdicts), [v.as_dict() for v in verdicts]
    assert not any(v.repeated for v in verdicts)
    # The history: one user line per utterance, the second holding both halves once.
    lines = user_lines(agent)
    assert len(lines) == 2, lines
    words = normalize(lines[1])
    assert words.count("young") == 1 and words.count("himself") == 1, lines


async def test_going_on_right_after_the_agent_started_is_one_utterance(models) -> None:
    """The agent takes the turn in a long pause (a short end-of-turn silence forces it)
    and the user goes on while it has just begun: the reply stops, neither the fragment
    nor the cut reply stays in the history, and all the words are answered once."""
    cfg = Config()
    cfg.vad = replace(cfg.vad, end_of_turn_ms=300, quick_end_of_turn_ms=300, hold_end_of_turn_ms=300)
    cfg.bargein = replace(cfg.bargein, continue_ms=2500)
    utterance = joined("ps_librivox_sense_and_sensibility_0880.wav", "ps_librivox_sense_and_sensibility_0930.wav", 2.0)
    async with ScriptedLLM(REPLY, tokens_per_s=30) as server:
        agent, verdicts = await session(models, [utterance], cfg, server)
    (v,) = verdicts
    print(v.as_dict(), agent.interruptions)
    assert v.premature, "the setup must make the agent speak in the pause"
    assert any(cut.heard for cut in agent.interruptions), "a reply was cut after it was heard"
    assert v.answered
    turns = agent.history.turns
    assert [m["role"] for m in turns] == ["user", "assistant"], turns
    words = normalize(turns[0]["content"])
    assert words.count("young") == 1 and words.count("himself") == 1, turns
    assert not v.repeated
    assert turns[1]["content"] == REPLY, "the answer to the whole utterance, not the cut one"


async def test_the_first_words_go_to_synthesis_before_the_first_sentence_has_streamed(models) -> None:
    """An LLM at 30 tokens/s with a 13-word first sentence: the first words are
    synthesized while the rest of that sentence is still streaming, and every
    word is spoken once, in order."""
    first = read_audio(SPEECH / "ps_goforward.wav")
    async with ScriptedLLM(REPLY, tokens_per_s=30) as server:
        stt, tts, turn_model = models

        def script(agent: Agent, seen: Seen, clock: WallClock) -> list[Step]:
            return [Pause(LEAD_S), Say(first), Until(lambda: seen.count(ResponseDone) > 0 and not agent.replying, hold_s=0.3)]

        agent, seen, sink = await converse(server, (stt, tts), script, Config(), turn_model=turn_model)
    order = [e for _, e in seen.events if isinstance(e, (SentenceChunk, TextChunk))]
    first_chunk = next(i for i, e in enumerate(order) if isinstance(e, SentenceChunk))
    streamed = "".join(e.text for e in order[:first_chunk] if isinstance(e, TextChunk))
    assert "away." not in streamed, f"synthesis waited for the whole first sentence: {streamed!r}"
    assert 4 <= len(order[first_chunk].text.split()) <= 7 and REPLY.startswith(order[first_chunk].text), order[first_chunk].text
    spoken = " ".join(e.text for _, e in seen.events if isinstance(e, AgentSpeechSent))
    assert normalize(spoken) == normalize(REPLY), "every word once, in order"


# --- a reply whose first audio comes as the user starts again ------------------------


def _held_reply(models, frames_of_speech: int):
    """An agent whose reply (to "Ten of clubs.") has its first audio ready just as a sound
    begins: `frames_of_speech` VAD frames of a real recording's first words, after its background."""
    from voice_agent.conversation.history import History
    from voice_agent.conversation.parts import Parts
    from voice_agent.conversation.turns import ReplyState
    from voice_agent.core.timeline import FrameClock
    from voice_agent.stages.vad import Vad

    stt, tts, _turn_model = models
    cfg = Config()
    clock = FrameClock()
    sink = TimelineSink(clock, cfg.audio.output_rate)
    agent = Agent(Parts(stt, tts, llm=None), History.for_config(cfg.llm), sink, cfg)  # type: ignore[arg-type]
    agent._vad = vad = Vad(cfg.vad)
    speech = read_audio(SPEECH / "ps_cards_001.wav")
    onset, _ = speech_extent(speech)
    n = vad.frame_len
    position = 0
    for position in range(0, onset // n * n + frames_of_speech * n, n):
        assert not vad.process(position, speech[position : position + n])
    agent.history.add_user("Ten of clubs.")
    agent.reply = ReplyState(1, "Ten of clubs.", [], [])
    agent.reply.committed.set()

    async def first_audio():
        async for chunk in tts.speak("I heard you, and I can help.", 1, 0):
            return chunk

    import asyncio

    audio = asyncio.run(first_audio())
    return agent, vad, sink, speech, position + n, audio


def _feed(agent: Agent, vad, audio: np.ndarray, start: int, frames: int) -> list:
    """Feed frames as `listen` does (its VAD events, then the onset check); what the check decided."""
    from voice_agent.core.events import UserStartedSpeaking, UserStoppedSpeaking

    settled = []
    for position in range(start, start + frames * vad.frame_len, vad.frame_len):
        for event in vad.process(position, audio[position : position + vad.frame_len]):
            if isinstance(event, (UserStartedSpeaking, UserStoppedSpeaking)):
                agent._track_user(event)
        settled += agent._settle_onset()
    return settled


def test_the_user_starting_again_as_the_first_audio_comes_drops_the_reply_unheard(models) -> None:
    """The race behind a premature answer: the reply's first audio is ready 40 ms into the
    user's next words, before the VAD can call them speech (120 ms). It waits to hear; the
    words go on, so it is dropped before a sound of it plays, and its words stay unanswered."""
    from voice_agent.core.events import Interruption

    agent, vad, sink, speech, at, audio = _held_reply(models, frames_of_speech=2)
    assert vad.detector.stirring and not vad.detector.in_speech
    assert agent._play(audio) is None and agent.reply.onset_hold and not sink.placed
    settled = _feed(agent, vad, speech, at, 15)
    assert [type(e) for e in settled] == [Interruption] and settled[0].heard == ""
    assert not sink.placed and agent.reply is None
    assert [m for m in agent.history.turns if m["role"] == "user"] == []  # the fragment is no turn
    assert agent._utterance.carried == "Ten of clubs."  # answered with what follows


def test_a_click_as_the_first_audio_comes_only_delays_it(models) -> None:
    """Not speech (two frames of sound, then the background): the held reply plays."""
    from voice_agent.core.events import AgentSpeechSent

    agent, vad, sink, speech, at, audio = _held_reply(models, frames_of_speech=2)
    assert agent._play(audio) is None and agent.reply.onset_hold
    lead = speech[: len(speech[:at]) // 320 * 320].reshape(-1, 320)
    db = 10 * np.log10(np.mean(lead.astype(np.float64) ** 2, axis=1) + 1e-12)
    hush = lead[db <= db.min() + 3].reshape(-1)  # the quietest of its own lead-in: what set the noise floor
    quiet = np.concatenate([speech[:at], np.tile(hush, 16000 // len(hush) + 1)])  # after the click
    settled = _feed(agent, vad, quiet, at, 15)
    assert [type(e) for e in settled] == [AgentSpeechSent] and len(sink.placed) == 1
    assert not agent.reply.gated and agent.reply.spoken
