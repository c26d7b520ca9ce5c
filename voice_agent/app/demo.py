"""The headless demo: WAV in, spoken answer out, no audio hardware.

Each input file is one user turn. The output WAV is the conversation on one
timeline as a listener would hear it (user left, agent right, or a mono mix),
and the report gives each turn's text and response latency by stage.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from ..audio.sink import TimelineSink
from ..audio.source import Pause, Say, ScriptedSource, Step, Until, turn_taking
from ..conversation.agent import Agent, Parts
from ..conversation.metrics import TurnRecorder
from ..conversation.transcript import open_history
from ..core._compat import TaskGroup
from ..core.config import Config
from ..core.events import SAMPLE_RATE, AgentSpeechSent
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
    interrupt_after_s: float | None = None,
    gap_s: float = 0.6,
) -> DemoResult:
    """Each clip (16 kHz mono, see `audio.source.read_audio`) is one user turn; `tap` sees every event.

    The next clip starts once the agent has been quiet (nothing playing or being
    prepared) for `gap_s` after the one before. With `interrupt_after_s`, each
    clip after the first is spoken that long into the agent's answer to the one
    before instead: the user talks over it."""
    console = console or Console(stderr=True)
    clock: WallClock | FrameClock = FrameClock() if fast else WallClock()
    sink = TimelineSink(clock, cfg.audio.output_rate)
    history, transcript = open_history(cfg)
    agent = Agent(parts, history, sink, cfg)
    vad = Vad(cfg.vad)
    if interrupt_after_s is None:
        steps: Iterator[Step] | list[Step] = turn_taking(clips, agent_done=lambda: agent.settled, gap_s=gap_s)
    else:
        starts = ReplyStarts(clock)
        agent.bus.tap(starts.observe)
        steps = talking_over(clips, lambda: agent.settled, starts, interrupt_after_s)
    source = ScriptedSource(steps, vad.frame_len, clock)
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


class ReplyStarts:
    """Where each reply's first audio started, on the timeline (a bus tap)."""

    def __init__(self, clock: WallClock | FrameClock) -> None:
        self.clock = clock
        self.starts: dict[int, int] = {}

    def observe(self, event: Any) -> None:
        if isinstance(event, AgentSpeechSent):
            self.starts.setdefault(event.response_id, event.position)

    def new_reply_heard_for(self, replies_before: int, seconds: float) -> bool:
        """A reply begun after the first `replies_before` has been audible for `seconds`."""
        if len(self.starts) <= replies_before:
            return False
        latest = list(self.starts.values())[-1]
        return self.clock.now() - latest >= seconds * SAMPLE_RATE


def talking_over(clips: list[np.ndarray], agent_done: Callable[[], bool], starts: ReplyStarts, after_s: float) -> Iterator[Step]:
    """Like `turn_taking`, but each clip after the first cuts into the answer to the one before.

    A generator, so each wait is set up when the step before it has ended:
    it waits for a reply heard after that point (or one that ended sooner).
    """
    yield Pause(0.5)
    yield Until(agent_done)  # the greeting, if any, is heard out
    for i, clip in enumerate(clips):
        yield Say(clip)
        if i + 1 < len(clips):
            before = len(starts.starts)
            yield Until(lambda: starts.new_reply_heard_for(before, after_s) or (len(starts.starts) > before and agent_done()), max_s=30)
    yield Until(agent_done, hold_s=0.6)
