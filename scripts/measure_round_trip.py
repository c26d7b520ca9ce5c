#!/usr/bin/env python3
"""How long a sound takes from a speaker callback back into a microphone callback, per stream setting.

In the virtual room (voice_agent/measure/room.py) with the speaker looped into
the microphone (20 ms, full volume), an output stream at 22050 Hz writes a
click every 40 blocks and an input stream at 16 kHz finds it: the time from
the callback that wrote it to the sample that heard it, on time.monotonic().
That is the speaker's latency, the loopback's 20 ms and the microphone's
latency: what a barge-in's stop waits for after the decision, and more. Each
setting is "output block (samples), output latency, input block, input
latency" (a latency is "low", "high" or seconds, as sounddevice takes it).

    python scripts/measure_round_trip.py 441,high,320,high 220,low,320,high
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from voice_agent.measure.room import VirtualRoom

CLICK_EVERY = 40  # blocks: well apart, so each click is told from the next


def latency(text: str) -> str | float:
    return text if text in ("low", "high") else float(text)


def round_trips(sd: object, setting: str, seconds: float) -> tuple[list[float], int]:
    out_block, out_latency, in_block, in_latency = setting.split(",")
    sent: list[float] = []
    heard: list[float] = []
    blocks, underruns = [0], [0]

    def speaker(outdata: np.ndarray, frames: int, t: object, status: object) -> None:
        underruns[0] += bool(status.output_underflow)  # type: ignore[attr-defined]
        outdata[:] = 0
        blocks[0] += 1
        if blocks[0] % CLICK_EVERY == 0:
            outdata[0, 0] = 0.9
            sent.append(time.monotonic())

    def microphone(indata: np.ndarray, frames: int, t: object, status: object) -> None:
        loud = np.abs(indata[:, 0]) > 0.3
        if loud.any():
            heard.append(time.monotonic() - (frames - int(np.argmax(loud))) / 16000)

    with (
        sd.OutputStream(device="pulse", samplerate=22050, channels=1, blocksize=int(out_block),  # type: ignore[attr-defined]
                        latency=latency(out_latency), callback=speaker),
        sd.InputStream(device="pulse", samplerate=16000, channels=1, blocksize=int(in_block),  # type: ignore[attr-defined]
                       latency=latency(in_latency), callback=microphone),
    ):  # fmt: skip
        time.sleep(seconds)
    # Each click with the first sound heard after it.
    first_after = [next((h for h in heard if h > s), None) for s in sent]
    return [(h - s) * 1000 for s, h in zip(sent, first_after) if h is not None and h - s < 0.3], underruns[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("settings", nargs="+", help='"out_block,out_latency,in_block,in_latency", e.g. 441,high,320,high')
    ap.add_argument("--seconds", type=float, default=8.0)
    args = ap.parse_args()
    room = VirtualRoom(one_clock=True).start()
    try:
        room.echo(100, 20)
        os.environ["XDG_RUNTIME_DIR"] = room.runtime  # before PortAudio starts: it finds the room's server here
        import sounddevice as sd

        for setting in args.settings:
            trips, underruns = round_trips(sd, setting, args.seconds)
            median = f"{np.median(trips):.0f} ms" if trips else "none heard"
            print(f"{setting:24} round trip median {median} (of {len(trips)} clicks), {underruns} output underruns")
    finally:
        room.stop()


if __name__ == "__main__":
    main()
