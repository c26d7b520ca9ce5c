"""Live conversation: the default microphone in, the default speaker out."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np

from ..audio.devices import resolve_device
from ..audio.microphone import MicClock, Microphone
from ..audio.speaker import Speaker
from ..conversation.agent import Agent, Parts
from ..conversation.progress import ProgressTracker
from ..conversation.session_log import MetricsLog
from ..conversation.transcript import open_history
from ..core.config import Config
from ..core.level import level_db
from ..stages.vad import Vad
from .ui import View

log = logging.getLogger(__name__)


async def run_live(cfg: Config, parts: Parts, view: View, metrics_path: Path | None = None) -> Agent:
    clock = MicClock()
    input_device = resolve_device(cfg.audio.input_device, "input")
    output_device = resolve_device(cfg.audio.output_device, "output")
    speaker = Speaker(output_device, cfg.audio.output_rate, clock, cfg.audio.block_ms, on_status=view.status)
    history, transcript = open_history(cfg)
    agent = Agent(parts, history, speaker, cfg)
    vad = Vad(cfg.vad)
    mic = Microphone(input_device, vad.frame_len, clock, on_status=view.status)
    view.recorder.clock = clock
    agent.bus.tap(view.recorder.observe)
    agent.bus.tap(view.observe)
    metrics = MetricsLog(metrics_path, view.recorder) if metrics_path else None
    if metrics:
        agent.bus.tap(metrics.observe)

    def progress(record: dict[str, Any]) -> None:
        view.progress(record)
        if metrics:
            metrics.progress(record)

    tracker = ProgressTracker(clock, progress)  # one tracker: the view and the metrics file see the same figures
    agent.bus.tap(tracker.observe)

    echo = None
    if cfg.audio.echo_cancellation:
        from ..audio.echo import EchoCanceller

        echo = EchoCanceller(speaker.rate, place=speaker.position_of)
        speaker.on_played = echo.played
        agent.echo = echo  # its own echo must not pause or cut it

    async def metered() -> AsyncIterator[tuple[int, np.ndarray]]:
        async for position, frame in mic.frames():
            if echo is not None:
                frame = echo.process(frame, position)
            view.level(level_db(frame))
            speaker.watch()
            if not agent.replying:
                view.idle()
            yield position, frame

    class _Source:
        def frames(self) -> AsyncIterator[tuple[int, np.ndarray]]:
            return metered()

    speaker.open()
    aec = "on" if echo is not None else "off (headphones)"
    view.status(f"opening the microphone (speaker at {speaker.rate} Hz, echo cancellation {aec})")
    try:
        async with agent.bus:
            await agent.greet()
            await agent.listen(_Source(), vad)
    finally:
        speaker.close()
        mic.close()
        tracker.close()  # the last reply's final progress, before the metrics file closes
        if metrics:
            metrics.close()
        if transcript is not None:
            transcript.close()
        if mic.overruns or speaker.underruns:
            view.status(f"audio: {mic.overruns} input overruns, {speaker.underruns} output underruns")
    return agent
