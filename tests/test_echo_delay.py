"""The echo path measured on real recorded speech given a known synthetic delay and gain."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SPEECH

from voice_agent.audio.echo_delay import EchoPath, gcc_phat
from voice_agent.audio.source import read_audio

RATE = 16000
AGENT = ["ps_librivox_sense_and_sensibility_0870.wav", "ps_librivox_sense_and_sensibility_0890.wav"]


def agent_voice() -> np.ndarray:
    return np.concatenate([read_audio(SPEECH / name) for name in AGENT])


def echoed(reference: np.ndarray, lag_ms: int, gain_db: float, user: np.ndarray | None = None) -> np.ndarray:
    """What a microphone hears: the reference `lag_ms` later at `gain_db`, room noise, and the user."""
    lag = lag_ms * RATE // 1000
    mic = np.concatenate([np.zeros(lag, np.float32), reference])[: len(reference)] * 10 ** (gain_db / 20)
    mic += np.random.default_rng(1).normal(0, 0.003, len(mic)).astype(np.float32)
    if user is not None:
        mic[3 * RATE : 3 * RATE + len(user)] += user[: len(mic) - 3 * RATE]
    return mic


def run(path: EchoPath, reference: np.ndarray, mic: np.ndarray) -> list:
    found = []
    for i in range(0, len(mic) - 320 + 1, 320):
        path.played(reference[i : i + 320])
        if (m := path.captured(mic[i : i + 320])) is not None:
            found.append(m)
    return found


@pytest.mark.parametrize("lag_ms", [20, 150, 300, 500])
@pytest.mark.parametrize("gain_db", [-10.0, 0.0])
def test_lag_and_gain_of_speech_echoed_with_the_user_talking_over_it(lag_ms: int, gain_db: float) -> None:
    reference = agent_voice()
    user = read_audio(SPEECH / "ps_cards_003.wav")  # double talk: someone else's words over the echo
    path = EchoPath()
    found = run(path, reference, echoed(reference, lag_ms, gain_db, user))
    assert len(found) >= 20
    assert path.lag == lag_ms * RATE // 1000  # to the sample
    # All of the echo's power, never less (the guard must expect all of it); the room's noise
    # adds a little.
    assert path.coupling is not None
    assert 0.95 * 10 ** (gain_db / 10) <= path.coupling <= 2 * 10 ** (gain_db / 10)
    assert path.gain == pytest.approx(10 ** (gain_db / 20), rel=0.05)  # the correlating part: the echo alone
    # Every single measurement, not only the median, found the lag.
    assert all(abs(m.lag - lag_ms * RATE // 1000) <= 16 for m in found)


def test_the_lag_is_tracked_when_the_path_changes() -> None:
    reference = agent_voice()
    half = len(reference) // 2
    mic = np.concatenate([echoed(reference, 60, -10)[:half], echoed(reference, 260, -10)[half:]])
    path = EchoPath()
    run(path, reference, mic)
    assert path.lag == 260 * RATE // 1000


def test_speech_that_is_not_an_echo_finds_no_path() -> None:
    """Headphones: the microphone hears only the user, never the agent."""
    reference = agent_voice()
    others = ["ps_cards_003.wav", "ps_goforward.wav", "ps_forever_input_2.wav", "ps_librivox_sense_and_sensibility_0920.wav"]
    mic = np.concatenate([read_audio(SPEECH / name) for name in others])
    mic = np.tile(mic, 1 + len(reference) // len(mic))[: len(reference)]
    path = EchoPath()
    assert path.coupling is None  # before the agent has said anything, nothing is known
    assert run(path, reference, mic) == []
    assert path.lag is None
    assert path.coupling is None  # loud, but not the agent: what it would hear of it is still unknown


def test_a_microphone_that_stays_quiet_while_the_agent_speaks_hears_no_echo() -> None:
    """Headphones: the agent speaks, the microphone hears the room's noise."""
    reference = agent_voice()
    quiet = np.random.default_rng(3).normal(0, 0.001, len(reference)).astype(np.float32)
    path = EchoPath()
    assert run(path, reference, quiet) == []
    assert path.coupling == 0.0


def test_silence_measures_nothing() -> None:
    path = EchoPath()
    silence = np.zeros(3 * RATE, np.float32)
    assert run(path, silence, echoed(agent_voice(), 100, 0)[: len(silence)]) == []
    assert path.attempts == 0 and path.coupling is None


def test_gcc_phat_wants_the_reference_to_cover_every_lag() -> None:
    with pytest.raises(ValueError):
        gcc_phat(np.ones(100, np.float32), np.ones(150, np.float32), max_lag=10)


def test_samples_lost_by_the_microphone_do_not_move_the_echo_on_its_count() -> None:
    """An overrun drops 300 ms of the microphone's samples. Counted, the reference would now come
    back 300 ms early; placed by the devices' clocks (its positions) it still comes 150 ms late."""
    reference = agent_voice()
    mic = echoed(reference, 150, -10)
    drop_at, lost = 4 * RATE, 300 * RATE // 1000
    path = EchoPath()
    lags_after = []
    for i in range(0, len(reference) - 320 + 1, 320):
        shift = 0 if i < drop_at else -lost  # where reference sample n lands on the microphone's count, less n
        path.played(reference[i : i + 320], position=i + shift)
        j = i if i < drop_at else i + lost  # the microphone skips the lost samples
        if j + 320 <= len(mic):
            path.captured(mic[j : j + 320])
        if i >= drop_at:
            lags_after.append(path.lag)
    assert path.measurements >= 10
    assert set(lags_after) == {150 * RATE // 1000}


def test_clock_jitter_does_not_tear_the_reference() -> None:
    path = EchoPath()
    block = np.ones(320, np.float32)
    for k, jitter in enumerate([0, 3, -5, 40, 2]):  # samples off where the clocks place each block
        path.played(block * (k + 1), position=k * 320 + jitter)
    held = path.reference.span(0, path.reference.end)
    # Jitter within the 10 ms tolerance: each block appended whole, the signal continuous.
    assert len(held) == 5 * 320 and list(held[::320]) == [1, 2, 3, 4, 5]
    path.played(block * 6, position=path.reference.end + 1000)  # a real gap: silence, then the block
    held = path.reference.span(0, path.reference.end)
    assert len(held) == 6 * 320 + 1000 and not held[5 * 320 : 5 * 320 + 1000].any() and held[-1] == 6
    path.played(block * 7, position=path.reference.end - 2000)  # back in time: overwritten
    assert path.reference.end == 6 * 320 + 1000 - 2000 + 320 and path.reference.span(0, path.reference.end)[-1] == 7
