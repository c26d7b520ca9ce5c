"""Silero's word on a barge-in, on real recordings: speech is confirmed, noises are not.

`SpeechConfirmer` is run directly, as the agent runs it: fed 20 ms frames as
they arrive, asked after each whether the sound since its start holds speech.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import SPEECH

from voice_agent.audio.source import read_audio
from voice_agent.core.config import BargeInConfig, ConfigError
from voice_agent.measure.judge import speech_extent
from voice_agent.stages.speech_check import (
    NoConfirmation,
    RecentAudio,
    SpeechConfirmer,
    StaggeredConfirmer,
    pause_confirmer,
    speech_confirmer,
    voiced_ms,
)

FRAME = 320
NOISES = SPEECH / "noises"
SPEECH_CLIPS = sorted(SPEECH.glob("*.wav")) + sorted((SPEECH / "pauses").glob("*.wav"))
NOISE_CLIPS = sorted(NOISES.glob("*.wav"))


def first_confirmed(confirmer: SpeechConfirmer, audio: np.ndarray, start: int = 0) -> int | None:
    """Feed `audio` frame by frame (asking from `start` on); where it was first confirmed, if ever."""
    audio = np.concatenate([audio, np.zeros(-len(audio) % FRAME, np.float32)])
    for position in range(0, len(audio), FRAME):
        confirmer.feed(position, audio[position : position + FRAME])
        now = position + FRAME
        if now > start and confirmer.confirms(start, now):
            return now
    return None


def speech_and_start(path: Path) -> tuple[np.ndarray, int]:
    """A speech recording and where webrtcvad would date its start (three frames before its first word)."""
    audio = read_audio(path)
    extent = speech_extent(audio)
    assert extent is not None
    return audio, max(0, extent[0] // FRAME * FRAME - 3 * FRAME)


def test_the_noise_set_is_there_with_its_licences() -> None:
    names = {p.name for p in NOISE_CLIPS}
    listed = {line.split("\t")[0] for line in (NOISES / "manifest.tsv").read_text().splitlines()[1:]}
    assert len(names) >= 10 and names == listed


@pytest.mark.parametrize("path", SPEECH_CLIPS, ids=lambda p: p.name)
def test_real_speech_is_confirmed_from_its_onset(path: Path) -> None:
    audio, start = speech_and_start(path)
    assert first_confirmed(SpeechConfirmer(), audio, start) is not None


@pytest.mark.parametrize("path", [p for p in NOISE_CLIPS if p.name != "breathing.wav"], ids=lambda p: p.name)
def test_real_noises_are_not_confirmed(path: Path) -> None:
    confirmer = SpeechConfirmer()
    assert first_confirmed(confirmer, read_audio(path)) is None
    assert confirmer.speech_ms() < 64


# The pause's bar is lower (one window at 0.15): breathing, the instrument notes, the door
# opening (a creak), typing and the crash (a window at 0.29) can pause the agent (it goes on
# after them); the other bangs and knocks do not.
PAUSING_NOISES = ("breathing.wav", "music.wav", "door_open.wav", "typing.wav", "crash.wav")


@pytest.mark.parametrize("path", [p for p in NOISE_CLIPS if p.name not in PAUSING_NOISES], ids=lambda p: p.name)
def test_bangs_and_knocks_do_not_pause_the_agent(path: Path) -> None:
    assert first_confirmed(pause_confirmer(BargeInConfig()), read_audio(path)) is None


def test_a_voice_pauses_the_agent_no_later_than_it_cuts_it_off() -> None:
    later = []
    for path in SPEECH_CLIPS:
        audio, start = speech_and_start(path)
        paused = first_confirmed(pause_confirmer(BargeInConfig()), audio, start)
        cut = first_confirmed(SpeechConfirmer(), audio, start)
        assert paused is not None and cut is not None and paused <= cut, path.name
        later.append(cut - paused)
    assert sum(later) > 0, "and sooner on some"


def test_windows_half_a_window_apart_hear_some_first_words_sooner() -> None:
    """Where Silero's 32 ms windows fall on a first word matters: the pause asks two grids."""
    sooner = []
    for path in SPEECH_CLIPS:
        audio, start = speech_and_start(path)
        one_grid = pause_confirmer(BargeInConfig()).first
        both, alone = first_confirmed(pause_confirmer(BargeInConfig()), audio, start), first_confirmed(one_grid, audio, start)
        assert both is not None and alone is not None and both <= alone, path.name
        sooner.append(alone - both)
    # Clean, nearly every first word passes 0.15 in its first window either way (one here is
    # sooner); through the canceller, more are (scripts/replay_room.py on room recordings, README).
    assert any(d > 0 for d in sooner), sooner


def test_the_tests_synthetic_cough_is_not_confirmed() -> None:
    from test_bargein import cough

    assert first_confirmed(SpeechConfirmer(), np.concatenate([np.zeros(8000, np.float32), cough()])) is None


def test_breathing_is_near_the_line() -> None:
    """A breath is the hardest noise of the set: Silero gives it 0.5-0.64 in a few windows
    (speech gets 0.99), so it passes the 2-window rule; it is reported in the figures."""
    confirmer = SpeechConfirmer()
    first_confirmed(confirmer, read_audio(NOISES / "breathing.wav"))
    assert 0 < confirmer.speech_ms() <= 4 * 32


def test_run_frame_by_frame_it_agrees_with_the_whole_clip_call() -> None:
    audio = read_audio(SPEECH / "ps_goforward.wav")
    confirmer = SpeechConfirmer(min_speech_ms=10**6, recent=RecentAudio(keep_s=len(audio) / 16000 + 1))
    first_confirmed(confirmer, audio)
    assert confirmer.speech_ms() == voiced_ms(audio[: len(audio) // 512 * 512]) > 0


def test_a_new_start_is_judged_afresh() -> None:
    speech, noise = read_audio(SPEECH / "ps_cards_003.wav"), read_audio(NOISES / "applause.wav")
    both = np.concatenate([speech, noise])
    confirmer = SpeechConfirmer()
    assert first_confirmed(confirmer, both) is not None
    assert not confirmer.confirms(len(speech) // FRAME * FRAME, len(both) // FRAME * FRAME), "the applause after it is no speech"


def test_asked_late_it_judges_the_audio_it_kept() -> None:
    speech = read_audio(SPEECH / "ps_cards_005.wav")  # longer than the 1 s kept
    confirmer = SpeechConfirmer(recent=RecentAudio(keep_s=1.0))
    assert not confirmer.confirms(0, 0)
    n = len(speech) // FRAME * FRAME
    for position in range(0, n, FRAME):
        confirmer.feed(position, speech[position : position + FRAME])
    assert confirmer.confirms(0, n) and confirmer.speech_ms() <= 1000


def test_the_config_chooses_the_confirmer() -> None:
    assert isinstance(speech_confirmer(BargeInConfig()), SpeechConfirmer)
    none = speech_confirmer(BargeInConfig(confirm="none"))
    assert isinstance(none, NoConfirmation) and none.confirms(0, 320)
    with pytest.raises(ConfigError, match="confirm must be"):
        BargeInConfig(confirm="whisper")


def test_the_config_chooses_what_pauses_the_agent() -> None:
    assert isinstance(pause_confirmer(BargeInConfig()), StaggeredConfirmer)
    for cfg in (BargeInConfig(pause_for="sound"), BargeInConfig(confirm="none")):
        assert isinstance(pause_confirmer(cfg), NoConfirmation)
    with pytest.raises(ConfigError, match="pause_for must be"):
        BargeInConfig(pause_for="music")
    staggered = pause_confirmer(BargeInConfig(pause_voice_threshold=0.3))
    assert staggered.first.threshold == staggered.second.threshold == 0.3
    with pytest.raises(ConfigError, match="pause_voice_threshold must be"):
        BargeInConfig(pause_voice_threshold=1.5)
