#!/usr/bin/env python3
"""How much CPU does `voice-agent` use while it just listens?

Starts a private virtual room (PulseAudio: a null-sink microphone hearing a
quiet room), runs `voice-agent` in it against a scripted LLM, lets it warm
up, then measures the process's CPU time over `--minutes` of idle listening.

    python scripts/measure_idle_cpu.py --minutes 10
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from virtual_room import AgentProcess, VirtualRoom  # noqa: E402

from voice_agent.measure.scripted_llm import ScriptedLLM  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


async def measure(minutes: float) -> None:
    room = VirtualRoom().start()
    try:
        async with ScriptedLLM() as server:
            agent = await AgentProcess(
                room, "--model", "scripted", env={"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "k"}
            ).start()
            try:
                await agent.wait_for(r"\[listening", seconds=120)
                await asyncio.sleep(5)  # warm-up: let start-up work finish
                assert agent.proc is not None
                c0, t0 = cpu_seconds(agent.proc.pid), time.monotonic()
                await asyncio.sleep(minutes * 60)  # the measurement window itself
                c1, t1 = cpu_seconds(agent.proc.pid), time.monotonic()
            finally:
                await agent.kill()
    finally:
        room.stop()
    share = (c1 - c0) / (t1 - t0) * 100
    print(f"idle listening: {c1 - c0:.1f} CPU-s over {t1 - t0:.0f} s = {share:.2f} % of one core")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    asyncio.run(measure(ap.parse_args().minutes))


if __name__ == "__main__":
    main()
