#!/usr/bin/env python3
"""Where a barge-in's stop time goes: a room recording replayed through the live input path.

`scripts/measure_live.py` records the microphone and the speaker on one clock.
This replays such a recording frame by frame through what the agent runs on
its microphone (the echo canceller fed with the speaker channel, the VAD, the
pause's Silero check) and prints, for each cut-in (a recording of
measure_live's CUT_INS found in the microphone track while the agent spoke),
how long after the cut-in's first word each condition of the pause first held:

- sound: 60 ms of voice-like sound over the agent (`TurnDetector.sounding`), in what
  the pause hears (`EchoCanceller.pause_hears`: the linear filter's output once trusted);
- near: and the canceller kept enough of it to be a voice in the room (`near_end`);
- silero (all): and one Silero window at `--threshold` (the pause's bar): the pause decision;

then the speaker's silence on the recording itself.

The canceller starts cold here, as in a session, but its state is not the
live one's: the figures explain the room's stop times, they are not them.

    python scripts/replay_room.py out/room_echo-10dB_150ms.wav [more recordings] [--threshold 0.15]
    python scripts/replay_room.py --apm-only ...   # the pause hearing the APM's output, as before the linear filter

With several recordings it ends with the pooled figures: the decision's
p50/p95 after the first word, and how often the conditions held while only
the agent's echo was there (a pause the listener hears as a gap).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure_live import CUT_INS, SPEECH  # noqa: E402

from voice_agent.audio.echo import EchoCanceller  # noqa: E402
from voice_agent.audio.source import read_audio  # noqa: E402
from voice_agent.core.config import Config  # noqa: E402
from voice_agent.measure.echo_replay import through_canceller  # noqa: E402
from voice_agent.measure.judge import silent_from, speech_extent  # noqa: E402
from voice_agent.stages.pause import PauseDetector  # noqa: E402
from voice_agent.stages.speech_check import pause_confirmer  # noqa: E402

RATE = 16000
FRAME = 320
CFG = Config()
PAUSE_FRAMES = CFG.bargein.pause_ms * RATE // 1000 // FRAME


def replay(
    mic: np.ndarray, agent: np.ndarray, threshold: float, one_grid: bool = False, apm_only: bool = False
) -> list[tuple[int, bool, bool, bool]]:
    """Per 20 ms frame: (its end, sound, near_end, Silero's bar met), as the live pause has them."""
    echo = EchoCanceller(RATE, place=lambda n: n, linear=not apm_only)
    confirm = pause_confirmer(replace(CFG.bargein, pause_voice_threshold=threshold))
    if one_grid:  # as the pause did before it asked two grids of Silero windows
        confirm = confirm.first
    pause = PauseDetector(CFG, confirm)
    rows = []
    for p, out in through_canceller(echo, (agent * 32767).astype(np.int16), mic):
        pause.feed(p, echo.pause_hears(out))
        sound = pause.sounding(p + FRAME, PAUSE_FRAMES, RATE // 5)
        heard = bool(sound) and pause.confirms(p + FRAME)
        rows.append((p + FRAME, bool(sound), echo.near_end(), heard))
    return rows


def cut_ins(mic: np.ndarray, agent: np.ndarray) -> list[tuple[int, str]]:
    """(first word, name) of each cut-in recording found in the microphone track while the agent spoke."""
    energy = np.concatenate([[0.0], np.cumsum(mic.astype(np.float64) ** 2)])
    found = []
    for name in sorted(set(CUT_INS)):
        clip = read_audio(SPEECH / name)
        extent = speech_extent(clip)
        n, length = len(mic) + len(clip), len(clip)
        corr = np.fft.irfft(np.fft.rfft(mic, n) * np.conj(np.fft.rfft(clip, n)), n)[: len(mic) - length]
        window = (energy[length:] - energy[:-length])[: len(corr)]
        score = corr / (np.sqrt(window * float(clip @ clip)) + 1e-9)
        score[window < 1e-5 * length] = 0  # digital silence correlates with anything
        for _ in range(4):
            k = int(np.argmax(score))
            if extent is None or score[k] < 0.3:
                break
            onset = k + extent[0]
            if np.sqrt(np.mean(agent[onset - RATE // 10 : onset] ** 2)) > 0.003:
                found.append((onset, name))
            score[max(0, k - RATE) : k + RATE] = 0
    return sorted(found)


def echo_only_pauses(rows: list[tuple[int, bool, bool, bool]], agent: np.ndarray, cuts: list[tuple[int, str]]) -> int:
    """How often the pause's conditions came to hold while only the agent's echo was there: the
    agent audible in the last 300 ms, no cut-in from 300 ms before its first word to 4 s after."""

    def echo_only(end: int) -> bool:
        agent_audible = np.sqrt(np.mean(agent[max(0, end - RATE * 3 // 10) : end] ** 2)) > 0.003
        return agent_audible and not any(onset - RATE * 3 // 10 <= end <= onset + 4 * RATE for onset, _ in cuts)

    count, held = 0, False
    for end, *conditions in rows:
        now = all(conditions)
        count += now and not held and echo_only(end)  # judged only where a pause would begin
        held = now
    return count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("recordings", type=Path, nargs="+", help="measure_live room recordings (microphone, speaker)")
    ap.add_argument("--threshold", type=float, default=CFG.bargein.pause_voice_threshold, help="the pause's Silero bar")
    ap.add_argument("--one-grid", action="store_true", help="Silero's windows on one grid only (StaggeredConfirmer.first)")
    ap.add_argument("--apm-only", action="store_true", help="the pause hears the APM's output (the linear filter never trusted)")
    args = ap.parse_args()
    decisions, false_pauses = [], 0
    for recording in args.recordings:
        audio, rate = sf.read(str(recording), dtype="float32")
        if rate != RATE or audio.ndim != 2:
            raise SystemExit(f"error: {recording} is not a 16 kHz two-channel room recording")
        print(recording)
        mic, agent = audio[:, 0].copy(), audio[:, 1].copy()
        rows = replay(mic, agent, args.threshold, args.one_grid, args.apm_only)
        cuts = cut_ins(mic, agent)
        for onset, name in cuts:

            def first(held: int, onset: int = onset) -> int | None:
                return next((round((r[0] - onset) / 16) for r in rows if r[0] > onset - RATE // 10 and all(r[1 : 1 + held])), None)

            silent = silent_from(agent, onset)
            stop = round((silent - onset) / 16) if silent is not None else None
            decisions.append(decided := first(3))
            print(f"{onset / RATE:7.2f} s {name:28} sound {first(1)}  near {first(2)}  silero (all) {decided}  | speaker silent {stop} ms")
        false_pauses += echo_only_pauses(rows, agent, cuts)
    found = [d for d in decisions if d is not None]
    if found:
        p50, p95 = np.percentile(found, [50, 95])
        print(f"pause decided, {len(found)} cut-ins: p50 {p50:.0f} / p95 {p95:.0f} / max {max(found)} ms after the first word, "
              f"{sum(d > 150 for d in found)} later than 150 ms, {len(decisions) - len(found)} never; "
              f"on the agent's echo alone: {false_pauses} times")


if __name__ == "__main__":
    main()
