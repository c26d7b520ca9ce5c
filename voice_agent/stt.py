"""Speech to text: faster-whisper, run off the event loop in its own thread."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import STTConfig
from .models import find_whisper, load_whisper

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recognition:
    text: str
    seconds: float  # compute time


class Transcriber:
    def __init__(self, cfg: STTConfig, models_dir: str) -> None:
        self.cfg = cfg
        path = find_whisper(cfg.model, models_dir)
        self.model = load_whisper(path, cfg.device, cfg.compute_type, cfg.threads)
        # One thread: Whisper calls never overlap, so they never fight for the cores.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stt")

    def warm_up(self) -> None:
        self.transcribe_sync(np.zeros(8000, np.float32))

    def transcribe_sync(self, audio: np.ndarray) -> Recognition:
        t0 = time.perf_counter()
        segments, _info = self.model.transcribe(
            audio,
            language=self.cfg.language,
            beam_size=self.cfg.beam_size,
            without_timestamps=True,
            condition_on_previous_text=False,
            vad_filter=False,
        )
        text = " ".join(s.text.strip() for s in segments if _is_speech(s))
        return Recognition(text=text.strip(), seconds=time.perf_counter() - t0)

    async def transcribe(self, audio: np.ndarray) -> Recognition:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.transcribe_sync, audio)

    def close(self) -> None:
        self._executor.shutdown(wait=True)


def _is_speech(segment: Any) -> bool:
    # Whisper's own silence test: a confident "no speech" with a weak decode.
    if segment.no_speech_prob > 0.6 and segment.avg_logprob < -1.0:
        return False
    return bool(re.search(r"\w", segment.text))
