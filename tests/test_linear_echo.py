"""The linear echo filter the pause listens to (audio/linear_echo.py), on real recorded speech."""

from __future__ import annotations

import numpy as np
from conftest import SPEECH

from voice_agent.audio.linear_echo import BLOCK, LinearEcho
from voice_agent.audio.source import read_audio
from voice_agent.core.level import level_db
from voice_agent.measure.judge import speech_extent

RATE = 16000
AGENT = "ps_librivox_sense_and_sensibility_0870.wav"
USER = "ps_cards_003.wav"


def run(reference: np.ndarray, mic: np.ndarray) -> np.ndarray:
    f = LinearEcho()
    n = len(mic) // BLOCK * BLOCK
    return np.concatenate([f.process(reference[i : i + BLOCK], mic[i : i + BLOCK]) for i in range(0, n, BLOCK)])


def room(delay_ms: int, user_at_s: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The agent's voice (reference), and a microphone hearing it `delay_ms` later at 0 dB through a
    short reverberant path, and the user from `user_at_s`. Also the user alone, as the microphone has it."""
    reference = read_audio(SPEECH / AGENT)
    rng = np.random.default_rng(7)
    path = np.zeros(delay_ms * RATE // 1000 + 400, np.float32)
    path[delay_ms * RATE // 1000] = 1.0
    path[-400:] += rng.normal(0, 0.02, 400).astype(np.float32) * np.exp(-np.arange(400) / 80)  # 25 ms of room
    mic = np.convolve(reference, path)[: len(reference)] + rng.normal(0, 0.001, len(reference)).astype(np.float32)
    user = np.zeros_like(mic)
    if user_at_s is not None:
        clip = read_audio(SPEECH / USER)
        at = int(user_at_s * RATE)
        user[at : at + len(clip)] = clip[: len(mic) - at]
    return reference, mic + user, user


def test_it_takes_a_linear_echo_off_and_keeps_it_off_after_the_user_talked_over_it() -> None:
    """At 0 dB, through a path with 25 ms of room: 20 dB or more off the echo once converged; the
    user's words over it come through whole, from the first of them; and talking over it (which
    drags an adapting filter off) leaves the echo as far down after as before (the background
    filter is reset to the foreground)."""
    user_at = 3.0
    reference, mic, user = room(30, user_at)
    left = run(reference, mic)
    before, after = slice(2 * RATE, int(2.9 * RATE)), slice(5 * RATE, 6 * RATE)  # the echo alone
    assert level_db(mic[before]) - level_db(left[before]) >= 20
    assert level_db(mic[after]) - level_db(left[after]) >= 20
    onset = int(user_at * RATE) + speech_extent(read_audio(SPEECH / USER))[0]
    for k in range(5):  # its first 100 ms, 20 ms at a time
        frame = slice(onset + k * 320, onset + (k + 1) * 320)
        assert abs(level_db(left[frame]) - level_db(user[frame])) < 3, k


def test_with_no_reference_it_passes_the_microphone_through() -> None:
    _, mic, _ = room(30, 1.0)
    left = run(np.zeros_like(mic), mic)
    assert np.allclose(left, mic[: len(left)], atol=1e-6)
