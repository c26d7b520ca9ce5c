"""The headless demo: WAV in, spoken answer out, no audio hardware.

Each input file is one user turn. The output WAV is the conversation on one
timeline as a listener would hear it (user left, agent right, or a mono mix),
and the report gives each turn's text and response latency by stage.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from ..audio.sink import TimelineSink
from ..audio.source import ScriptedSource, turn_taking
from ..conversation.agent import Agent, Parts
from ..conversation.metrics import TurnRecorder
from ..conversation.transcript import open_history
from ..core._compat import TaskGroup
from ..core.config import Config
from ..core.timeline import FrameClock, WallClock
from ..stages.vad import Vad
from .ui import View

log = logging.getLogger(__name__)


def default_input() -> Path:
    return Path(str(resources.files("voice_agent") / "assets" / "go_forward.wav"))


@dataclass
class DemoResult:
    report: dict[str, Any]
    agent: Agent
    source: ScriptedSource  # what the user said, and where each clip started
    sink: TimelineSink  # what the agent played, on the same timeline


async def run_demo(
    cfg: Config,
    parts: Parts,
    clips: list[np.ndarray],
    output: Path | None = None,
    report_path: Path | None = None,
    fast: bool = False,
    stereo: bool = True,
    console: Console | None = None,
    tap: Callable[[Any], None] | None = None,
    gap_s: float = 0.6,
) -> DemoResult:
    """Each clip (16 kHz mono, see `audio_in.read_audio`) is one user turn; `tap` sees every event.

    The next clip starts once the agent has been quiet (nothing playing or being
    prepared) for `gap_s` after the one before."""
    console = console or Console(stderr=True)
    clock: WallClock | FrameClock = FrameClock() if fast else WallClock()
    sink = TimelineSink(clock, cfg.audio.output_rate)
    history, transcript = open_history(cfg)
    agent = Agent(parts, history, sink, cfg)
    vad = Vad(cfg.vad)
    source = ScriptedSource(turn_taking(clips, agent_done=lambda: agent.settled, gap_s=gap_s), vad.frame_len, clock)
    recorder = TurnRecorder(clock)
    agent.bus.tap(recorder.observe)
    agent.bus.tap(View(console, recorder, fancy=False).observe)
    if tap is not None:
        agent.bus.tap(tap)

    try:
        async with agent.bus:
            await agent.greet()  # the user waits for it: see turn_taking
            if isinstance(clock, WallClock):
                clock.start()
            async with TaskGroup() as tg:
                tg.create_task(agent.listen(source, vad, fast=fast))
    finally:
        if transcript is not None:
            transcript.close()

    report = recorder.report()
    report["end_of_turn_silence_ms"] = cfg.vad.end_of_turn_ms
    if not report["turns"]:
        console.print("[yellow]No speech was heard in the input; the agent said nothing.[/]")
    if output:
        sink.write(output, source.recorded(), stereo=stereo)
        console.print(f"wrote the conversation to {output}")
    if report_path:
        report_path.write_text(json.dumps(report, indent=2))
        console.print(f"wrote the report to {report_path}")
    return DemoResult(report, agent, source, sink)
