"""The echo canceller on real recorded speech: the agent's voice comes back 20-300 ms after it
played (a room, a sound server's buffers the clocks did not see), at -10 and 0 dB; the VAD must
hear the user, never the agent. And the reference track that lays what played on the
microphone's clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np
import pytest
import soundfile as sf
from conftest import SPEECH
from livekit import rtc

from voice_agent.audio.echo import EchoCanceller, ReferenceTrack
from voice_agent.audio.source import read_audio
from voice_agent.core.config import Config
from voice_agent.core.events import UserStartedSpeaking
from voice_agent.core.level import level_db
from voice_agent.measure.echo_replay import through_canceller
from voice_agent.measure.judge import speech_extent
from voice_agent.stages.vad import Vad

T = TypeVar("T")
RATE = 16000
FRAME = 320
REPLY = ["ps_librivox_sense_and_sensibility_0870.wav", "ps_librivox_sense_and_sensibility_0890.wav"]
USER = "ps_cards_003.wav"


def speech_starts(signal: np.ndarray) -> list[int]:
    vad = Vad(Config().vad)
    found = []
    for i in range(0, len(signal) - FRAME + 1, FRAME):
        found += [e.position for e in vad.process(i, signal[i : i + FRAME]) if isinstance(e, UserStartedSpeaking)]
    return found


def conversation(lag_ms: int, gain_db: float, user_at_s: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Two replies 2 s apart (the agent's voice as played, int16) and the microphone: their echo
    `lag_ms` after they played, and the user cutting in at `user_at_s`."""
    reply = np.concatenate([read_audio(SPEECH / name) for name in REPLY])
    gap = np.zeros(2 * RATE, np.float32)
    played = np.concatenate([gap[: RATE // 2], reply, gap, reply, gap])
    lag = lag_ms * RATE // 1000
    mic = np.concatenate([np.zeros(lag, np.float32), played])[: len(played)] * 10 ** (gain_db / 20)
    mic += np.random.default_rng(2).normal(0, 0.001, len(mic)).astype(np.float32)
    if user_at_s is not None:
        user = read_audio(SPEECH / USER)
        at = int(user_at_s * RATE)
        mic[at : at + len(user)] += user
    return (played * 32767).astype(np.int16), mic


def each_frame(
    played: np.ndarray,
    mic: np.ndarray,
    look: Callable[[EchoCanceller, np.ndarray], T],
    handed_early: int = 3 * FRAME,
    place: Callable[[int], int] = lambda n: n,
) -> list[T]:
    """Through the canceller as live, `look(canceller, output)` after each frame: the speaker hands each
    block over `handed_early` before it plays, and says where it plays (`place`; by default its own
    sample number: the clocks are one)."""
    aec = EchoCanceller(RATE, place=place)
    return [look(aec, out) for _, out in through_canceller(aec, played, mic, handed_early)]


def cancel(
    played: np.ndarray, mic: np.ndarray, handed_early: int = 3 * FRAME, place: Callable[[int], int] = lambda n: n
) -> np.ndarray:
    """The canceller's output (see `each_frame`)."""
    return np.concatenate(each_frame(played, mic, lambda aec, out: out, handed_early, place))


def room_recording(name: str) -> tuple[np.ndarray, np.ndarray]:
    """A room recording in tests/speech/room: (what the speaker played, int16; the microphone)."""
    audio, _ = sf.read(str(SPEECH / "room" / name), dtype="float32")
    return (audio[:, 1] * 32767).astype(np.int16), audio[:, 0].copy()


@pytest.mark.parametrize("lag_ms", [20, 150, 300])
@pytest.mark.parametrize("gain_db", [-10.0, 0.0])
def test_the_echo_alone_is_never_speech(lag_ms: int, gain_db: float) -> None:
    played, mic = conversation(lag_ms, gain_db)
    assert speech_starts(mic)  # without the canceller the VAD hears the agent
    assert speech_starts(cancel(played, mic)) == []


@pytest.mark.parametrize("gain_db", [-10.0, 0.0])
def test_near_end_tells_the_users_voice_from_the_agents_echo(gain_db: float) -> None:
    """What pauses the agent: in the second reply, frames of its echo alone are not the near end,
    and the user's cut-in is, within 100 ms of its first word."""
    user_at = 19.0  # 4 s into the second reply
    played, mic = conversation(150, gain_db, user_at_s=user_at)
    said = each_frame(played, mic, lambda aec, out: aec.near_end())
    second = int(16.0 * RATE) // FRAME  # the second reply's echo, before the user
    echo_only = [said[f] for f in range(second, int(user_at * RATE) // FRAME) if 10 * np.log10(np.mean(mic[f * FRAME : (f + 1) * FRAME] ** 2)) > -45]
    assert echo_only and sum(echo_only) <= len(echo_only) // 20, f"{sum(echo_only)} of {len(echo_only)} echo frames taken for a voice"
    onset = int(user_at * RATE) + speech_extent(read_audio(SPEECH / USER))[0]
    assert any(said[onset // FRAME : onset // FRAME + 5])


def test_at_0_db_the_pause_hears_the_users_first_words_whole_where_the_apm_takes_them_down() -> None:
    """Once the canceller trusts its linear filter (in the second reply), the pause hears that
    filter's output: the user's cut-in as loud as alone from its first 20 ms, where the APM's
    suppressor, with the echo as loud as the user, takes the start down (in the room: 100-250 ms
    of it, and the pause came that much later)."""
    user_at = 19.0
    played, mic = conversation(150, 0.0, user_at_s=user_at)
    alone = conversation(150, -200.0, user_at_s=user_at)[1]  # the user (and the noise) without the echo
    heard, apm, trusted = zip(*each_frame(played, mic, lambda aec, out: (aec.pause_hears(out), out, aec.linear_trusted)))
    assert all(trusted[int(17.0 * RATE) // FRAME : int(user_at * RATE) // FRAME])
    onset = (int(user_at * RATE) + speech_extent(read_audio(SPEECH / USER))[0]) // FRAME
    for f in range(onset, onset + 5):
        assert abs(level_db(heard[f]) - level_db(alone[f * FRAME : (f + 1) * FRAME])) < 3, f - onset
    assert min(level_db(apm[f]) - level_db(alone[f * FRAME : (f + 1) * FRAME]) for f in range(onset, onset + 5)) < -10


@pytest.mark.parametrize("gain_db", [-10.0, 0.0])
def test_the_linear_filter_calls_the_echo_alone_echo_and_never_the_users_voice(gain_db: float) -> None:
    """`is_echo` keeps a sound the APM let through from cutting the agent off: in the second reply
    it says so for the echo alone (most frames of it), and never while the user talks over it."""
    user_at = 19.0
    played, mic = conversation(150, gain_db, user_at_s=user_at)
    said = each_frame(played, mic, lambda aec, out: aec.is_echo())
    echo_only = [said[f] for f in range(int(16.0 * RATE) // FRAME, int(user_at * RATE) // FRAME) if level_db(mic[f * FRAME : (f + 1) * FRAME]) > -40]
    assert sum(echo_only) >= 0.8 * len(echo_only), f"{sum(echo_only)} of {len(echo_only)}"
    onset = int(user_at * RATE) + speech_extent(read_audio(SPEECH / USER))[0]
    assert not any(said[(onset + RATE // 25) // FRAME : (onset + RATE // 4) // FRAME])  # its first word


@pytest.mark.parametrize("handed_early_ms", [20, 500])
def test_how_early_the_speaker_hands_audio_over_does_not_matter(handed_early_ms: int) -> None:
    """Fed as it came, a reference half a second ahead of its echo let it through; laid on the clock it does not."""
    played, mic = conversation(150, 0.0)
    assert speech_starts(cancel(played, mic, handed_early=handed_early_ms * RATE // 1000)) == []


@pytest.mark.parametrize("lag_ms", [20, 150, 300])
@pytest.mark.parametrize("gain_db", [-10.0, 0.0])
def test_the_user_talking_over_the_start_of_a_reply_is_heard(lag_ms: int, gain_db: float) -> None:
    """0.3 s into the second reply's echo, where a canceller that had to converge again would leak."""
    reply_s = sum(len(read_audio(SPEECH / name)) for name in REPLY) / RATE
    user_at = 0.5 + reply_s + 2.0 + lag_ms / 1000 + 0.3
    played, mic = conversation(lag_ms, gain_db, user_at_s=user_at)
    starts = speech_starts(cancel(played, mic))
    user = read_audio(SPEECH / USER)
    assert len(starts) == 1
    assert int(user_at * RATE) <= starts[0] < int(user_at * RATE) + len(user) // 2


@pytest.mark.parametrize("gain_db", [-10.0, 0.0])
def test_a_path_beyond_the_apms_reach_is_measured_and_held_back(gain_db: float) -> None:
    """600 ms: the APM alone lets the echo through. The path is measured during the first reply
    and the reference held back to just before its echo; from then on only the user is speech.
    (Before that, the first reply's echo can get through: the microphone is muted only 300 ms
    past the agent's voice while the path is unknown, so a user answering a short first reply
    at once is heard.)"""
    reply_s = sum(len(read_audio(SPEECH / name)) for name in REPLY) / RATE
    first_reply_end = 0.5 + reply_s
    user_at = first_reply_end + 2.0 + 0.6 + 0.3
    played, mic = conversation(600, gain_db, user_at_s=user_at)
    starts = speech_starts(cancel(played, mic))
    assert all(s < (first_reply_end + 1.0) * RATE for s in starts[:-1])
    assert int(user_at * RATE) <= starts[-1] < int(user_at * RATE) + RATE // 2


@pytest.mark.parametrize("gain_db", [-10.0, 0.0])
def test_an_echo_that_comes_before_where_the_clocks_put_its_sound_is_cancelled(gain_db: float) -> None:
    """In the room the clocks placed the agent's voice 40 ms later than it came out, so its echo
    (20 ms of loopback) was measured 18-20 ms *before* its reference. With the reference fed no
    earlier than where it was laid, the APM got it as its echo came, and at 0 dB the echo of
    reply after reply cut the agent off (5 extra starts in 10 turns). The reference is now read
    ahead of where it was laid, as far as the speaker has handed it over."""
    played, mic = conversation(20, gain_db)
    starts = speech_starts(cancel(played, mic, place=lambda n: n + 40 * RATE // 1000))
    assert starts == []


def test_the_microphone_stays_muted_until_the_apm_is_seen_to_remove_the_echo() -> None:
    """A real room run (-10 dB, 150 ms; tests/speech/room): in the first reply the loopback slid its
    delay from 164 to 151 ms (its rate being adjusted), and the APM, settled on the path for a
    moment, let the echo through again (0-3 dB of it kept): the VAD heard it at 6.56 s, and in the
    room the first reply was cut by its own voice. Learning now ends only once the APM has taken
    20 dB or more off every 10 ms of echo for 1 s: here the user's words alone are speech."""
    played, mic = room_recording("first_reply_sliding_echo_-10dB_150ms.wav")
    starts = speech_starts(cancel(played, mic))
    assert len(starts) == 1 and abs(starts[0] - int(1.5 * RATE)) < RATE // 10, starts  # "Go forward ten meters"


def test_after_the_speakers_stream_moves_the_microphone_is_muted_until_the_apm_has_settled_again() -> None:
    """Between replies the clocks put the speaker's stream 112 ms earlier (an underrun, a restarted
    stream), and its echo moved by 18 ms less: the APM had a new echo path, and in the room the
    echo of the next reply's "The" cut it off. The canceller learns the path again, as at the start."""
    played, mic = conversation(150, -10.0)
    second = len(played) // 2  # in the gap between the replies
    moved = -112 * RATE // 1000
    mic = np.concatenate([mic[:second], mic[second - 18 * RATE // 1000 :]])[: len(mic)]  # its echo 18 ms later
    out = cancel(played, mic, place=lambda n: n + (moved if n >= second else 0))
    assert speech_starts(out) == []


def test_the_path_is_measured_on_the_reference_as_the_apm_gets_it_when_the_clocks_jitter() -> None:
    """The clocks put 20 ms blocks up to 20 ms off where they play (seen in the room). Measured
    against blocks placed where the clocks said, the reference was torn: here the path came out
    19 ms off, and in a room run the lags of successive windows spread over 120-154 ms and the
    path was found only in the third reply. Measured against the reference as laid back to
    back for the APM, it is where the APM needs it, in the first 1.5 s of the agent's voice."""
    played, mic = conversation(150, -10.0)
    jitter = [0, 100, 200, 300, -300, -200, -100]  # samples off, block after block
    aec = EchoCanceller(RATE, place=lambda n: n + jitter[(n // FRAME) % len(jitter)])
    found_at, handed = None, 0
    for i in range(0, len(mic) - FRAME + 1, FRAME):
        while handed < min(len(played), i + 4 * FRAME):
            aec.played(played[handed : handed + FRAME], handed)
            handed += FRAME
        aec.process(mic[i : i + FRAME], i)
        if aec.path.lag is not None:
            found_at = i
            break
    assert found_at is not None and found_at < (0.5 + 1.5) * RATE, found_at
    assert abs(aec.path.lag - 150 * RATE // 1000) <= 5 * RATE // 1000, aec.path.lag


def test_the_onset_of_a_reply_after_a_cut_in_leaves_nothing_the_vad_hears() -> None:
    """A real room run (0 dB, 300 ms; tests/speech/room): the user cut into the first reply, and the
    agent resumed. A canceller that had settled on the path after four measurements let 60 ms of
    the resumed reply's onset through 20-25 dB down: at 0 dB loud enough for the VAD, and in the
    room that echo cut the agent off and was answered as the user's "for two head.". Replayed
    frame by frame (the speaker channel is the reference, on the same clock, handed over 60 ms
    before it plays as the speaker does: `cancel`), the VAD hears the user's own words before
    the first reply and nothing in the onset. It passes because the canceller has not been seen
    to remove the echo for 1 s yet (the cut-in came first), so it is still learning and the
    microphone is muted under the echo; the cut-in's words are lost with it."""
    played, mic = room_recording("reply_after_a_cut_in_0dB_300ms.wav")
    out, cfg = cancel(played, mic), Config()
    vad, pause_frames = Vad(cfg.vad), cfg.bargein.pause_ms * RATE // 1000 // FRAME
    sounding = []
    for i in range(0, len(out), FRAME):
        vad.process(i, out[i : i + FRAME])
        sounding.append(bool(vad.detector.sounding(i + FRAME, pause_frames, RATE // 5)))
    loud = np.flatnonzero(np.abs(played) > 3000) // FRAME
    replies = [int(f) for k, f in enumerate(loud) if k == 0 or f - loud[k - 1] > RATE // FRAME]  # frames where each reply began
    assert len(replies) == 2, replies
    assert any(sounding[: replies[0]]), "the user's first words were heard"
    onset = replies[1] + (300 * RATE // 1000) // FRAME  # where its echo arrives
    assert not any(sounding[onset - 5 : onset + 25]), [round(f * FRAME / RATE, 2) for f in range(onset - 5, onset + 25) if sounding[f]]


def test_with_headphones_the_user_can_cut_into_the_first_reply_after_its_first_seconds() -> None:
    """No echo at all: the canceller rules the echo path out within the first 3 s of the agent
    speaking, and stops taking the microphone down."""
    played, _ = conversation(150, -10.0)
    mic = np.random.default_rng(3).normal(0, 0.001, len(played)).astype(np.float32)
    user = read_audio(SPEECH / USER)
    at = int(4.0 * RATE)
    mic[at : at + len(user)] += user
    starts = speech_starts(cancel(played, mic))
    assert len(starts) == 1 and at <= starts[0] < at + len(user) // 2


@pytest.mark.parametrize("early_ms", [0, 40])
def test_with_no_echo_a_user_answering_a_short_first_reply_at_once_is_heard_from_the_first_word(early_ms: int) -> None:
    """The path is not ruled out yet 1.5 s into the agent's first voice, so the microphone is muted
    while an echo may come; but one that stayed quiet all along that voice has no echo to come
    after it. Muted 300 ms past it regardless, the room's "seven of clubs" said at once after a
    short first reply was heard as "have enough clothes" in half the runs; and again when the
    user began a little before the speaker's last sample (`early_ms`: its clock and theirs)."""
    reply = read_audio(SPEECH / REPLY[0])[: 3 * RATE // 2]
    played = np.concatenate([np.zeros(RATE // 2, np.float32), reply, np.zeros(2 * RATE, np.float32)])
    mic = np.random.default_rng(5).normal(0, 0.001, len(played)).astype(np.float32)
    user, at = read_audio(SPEECH / USER), RATE // 2 + len(reply) - early_ms * RATE // 1000
    mic[at : at + len(user)] += user
    out = cancel((played * 32767).astype(np.int16), mic)
    onset = slice(at + RATE // 10, at + 3 * RATE // 10)  # "se-" of "seven"
    assert level_db(out[onset]) > level_db(mic[onset]) - 10, (level_db(out[onset]), level_db(mic[onset]))
    starts = speech_starts(out)
    assert len(starts) == 1 and at <= starts[0] < at + RATE // 4, starts


@pytest.mark.parametrize("reply_ms, lag_ms", [(1500, 150), (700, 300)])
def test_an_echo_heard_during_a_short_first_reply_keeps_the_microphone_muted_after_it(reply_ms: int, lag_ms: int) -> None:
    """The same, with the agent's voice coming back `lag_ms` later at -10 dB: its echo outlasts it,
    so the 300 ms after it stay muted (and the VAD hears nothing of the agent); also when that echo
    begins late in a short voice."""
    reply = read_audio(SPEECH / REPLY[0])[: reply_ms * RATE // 1000]
    played = np.concatenate([np.zeros(RATE // 2, np.float32), reply, np.zeros(2 * RATE, np.float32)])
    lag = lag_ms * RATE // 1000
    mic = np.concatenate([np.zeros(lag, np.float32), played])[: len(played)] * 10 ** (-10 / 20)
    mic += np.random.default_rng(6).normal(0, 0.001, len(mic)).astype(np.float32)
    out = cancel((played * 32767).astype(np.int16), mic)
    end = RATE // 2 + len(reply)
    assert not out[end : end + lag].any()  # the echo of the voice's last 150 ms
    assert speech_starts(out) == []


def test_with_no_echo_the_users_voice_skips_the_canceller_once_the_path_is_ruled_out() -> None:
    """The APM with a reference and no echo still works on the microphone (it cannot know there is
    no echo); in the room with a 200 ms sound server, cut-ins were then missed in 4 of 5 runs."""
    played, _ = conversation(150, -10.0)
    mic = np.random.default_rng(4).normal(0, 0.001, len(played)).astype(np.float32)
    user = read_audio(SPEECH / USER)
    at = int(4.0 * RATE)
    mic[at : at + len(user)] += user
    out = cancel(played, mic)
    plain = rtc.AudioProcessingModule(echo_cancellation=False, noise_suppression=True, high_pass_filter=True)
    expected = np.zeros_like(mic)
    for i in range(0, len(out), 160):  # the same microphone through noise suppression alone
        frame = rtc.AudioFrame((np.clip(mic[i : i + 160], -1, 1) * 32767).astype(np.int16).tobytes(), RATE, 1, 160)
        plain.process_stream(frame)
        expected[i : i + 160] = np.frombuffer(frame.data, dtype=np.int16).astype(np.float32) / 32768
    assert np.array_equal(out[at : at + len(user)], expected[at : at + len(user)])
    assert not np.array_equal(out[: RATE // 2], expected[: RATE // 2])  # before the agent spoke: the canceller's


def test_blocks_a_little_off_on_the_clock_are_laid_back_to_back() -> None:
    """The clocks put successive 20 ms blocks 246-320 samples apart here: that is jitter, not gaps."""
    track = ReferenceTrack()
    jitter = [0, 40, -30, 60, 10, -50, 70, 0, 30, -20, 50, 0]
    for k, off in enumerate(jitter):
        track.write(1000 + 320 * k + off, np.full(320, k + 1, np.float32))
    out = track.read(1000 + 320 * len(jitter))
    assert not out[:1000].any()
    assert out[1000:].tolist() == [float(k + 1) for k in range(len(jitter)) for _ in range(320)]


def test_a_stream_that_moved_is_laid_where_the_clocks_put_it_once_they_agree() -> None:
    track = ReferenceTrack()
    for k in range(10):
        track.write(320 * k, np.ones(320, np.float32))
    for k in range(10, 30):  # an underrun: from here on the blocks come out 40 ms later
        track.write(320 * k + 640, 2 * np.ones(320, np.float32))
    out = track.read(320 * 31)
    assert (out[:3200] == 1).all()
    moved_at = 320 * 14  # the fifth late block: most of the last nine agree
    assert (out[3200:moved_at] == 2).all() and not out[moved_at : moved_at + 640].any()
    assert (out[moved_at + 640 : 320 * 30 + 640] == 2).all()


def test_the_track_reads_on_in_order_and_gives_silence_for_what_the_ring_no_longer_holds() -> None:
    track = ReferenceTrack(keep=4000)
    track.write(0, np.ones(1000, np.float32))
    assert (track.read(800) == 1).all()
    track.write(1000, 3 * np.ones(400, np.float32))
    out = track.read(1400)
    assert (out[:200] == 1).all() and (out[200:] == 3).all()
    out = track.read(9400)  # more than the ring holds, unread for long: silence, every sample of it
    assert len(out) == 8000 and not out.any()


def test_the_reference_moves_only_when_the_path_has_moved_past_what_the_apm_follows() -> None:
    """The path is re-measured all the time and wanders by a few ms; each move of the reference
    is an echo path change the APM must learn again at the next reply's first words."""
    class Path:
        lag = 0
        attempts = 0

    aec = EchoCanceller(RATE, place=lambda n: n)
    aec.path = Path()  # type: ignore[assignment]
    ms = RATE // 1000
    held = []
    for lag_ms in [150, 157, 143, 150, 162, 195, 125, 125, -18]:
        aec.path.lag = lag_ms * ms
        held.append(aec._held_back() // ms)
    # 30 ms before the echo; held through a wander of -7..+12 ms; moved when the reference would
    # come more than 70 ms before its echo (195) or less than 10 ms (125); an echo that comes
    # before where the clocks lay the reference (-18) has it read ahead instead.
    assert held == [120, 120, 120, 120, 120, 165, 95, 95, -48]
