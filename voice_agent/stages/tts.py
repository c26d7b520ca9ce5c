"""Text to speech: Piper, one sentence chunk at a time, streamed in pieces.

Piper renders a whole phrase in one model call, so a long sentence would make
the listener wait for all of it. `split_for_synthesis` cuts a long sentence at
clauses (or word groups) so the first audio comes after the first piece.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import soxr

from ..core.config import TTSConfig
from ..core.events import AudioChunk
from .audio_cache import AudioCache, Key
from .models import find_piper_voice, load_piper

log = logging.getLogger(__name__)

_CLAUSE = re.compile(r"(?<=[,;:])\s+|\s+(?=[-–—]\s)")


def split_for_synthesis(text: str, max_words: int = 12) -> list[str]:
    """Pieces of `text` to synthesize separately; short text stays whole."""
    words = text.split()
    if len(words) <= max_words:
        return [text.strip()] if text.strip() else []
    pieces: list[str] = []
    for clause in _CLAUSE.split(text):
        clause_words = clause.split()
        if pieces and len(pieces[-1].split()) < 3:  # no one-word fragments
            clause_words = pieces.pop().split() + clause_words
        for i in range(0, len(clause_words), max_words):
            pieces.append(" ".join(clause_words[i : i + max_words]))
    if len(pieces) > 1 and len(pieces[-1].split()) < 3:
        last = pieces.pop()
        pieces[-1] += " " + last
    return [p for p in pieces if p]


def trim_lead(audio: np.ndarray, rate: int, floor_db: float = -60.0, keep_ms: int = 10) -> np.ndarray:
    """`audio` (int16) without the silence Piper puts before the first word (40-60 ms), but `keep_ms`.

    Only a reply's first piece is trimmed: that silence is pure latency there,
    while between pieces it is part of the pause a listener expects.
    """
    n = rate // 100
    frames = audio[: len(audio) // n * n].astype(np.float64).reshape(-1, n) / 32768
    loud = np.flatnonzero(10 * np.log10(np.mean(frames**2, axis=1) + 1e-12) > floor_db)
    cut = max(0, int(loud[0]) * n - rate * keep_ms // 1000) if len(loud) else 0
    return audio[cut:]


class Synthesizer:
    def __init__(self, cfg: TTSConfig, models_dir: str, output_rate: int) -> None:
        from piper import SynthesisConfig

        self.cfg = cfg
        self.voice_path = find_piper_voice(cfg.voice, models_dir)
        self.voice = load_piper(self.voice_path)
        self.voice_rate = int(self.voice.config.sample_rate)
        self.output_rate = output_rate
        self._syn = SynthesisConfig(length_scale=cfg.length_scale, volume=cfg.volume)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tts")
        self.cache = AudioCache()

    def _key(self, text: str) -> Key:
        return (str(self.voice_path), self.cfg.length_scale, self.cfg.volume, text)

    def warm_up(self, phrases: list[str] | tuple[str, ...] = ()) -> None:
        """Run the voice once, and synthesize `phrases` (fillers, greeting) ahead so they cost nothing later."""
        self.synthesize_sync("Hello.")
        for phrase in phrases:
            for piece in split_for_synthesis(phrase):
                self.cache.put(self._key(piece), self.synthesize_sync(piece), pinned=True)

    def synthesize_sync(self, text: str) -> np.ndarray:
        """int16 mono audio at the output rate; empty if nothing in `text` is speakable."""
        parts = [c.audio_float_array for c in self.voice.synthesize(text, syn_config=self._syn)]
        if not parts:
            return np.zeros(0, np.int16)
        audio = np.concatenate(parts)
        if self.output_rate != self.voice_rate:
            audio = soxr.resample(audio, self.voice_rate, self.output_rate)
        return (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)

    async def speak(self, text: str, response_id: int, sentence_index: int) -> AsyncIterator[AudioChunk]:
        """Audio for one sentence, piece by piece, each yielded as soon as it exists."""
        loop = asyncio.get_running_loop()
        pieces = split_for_synthesis(text)
        for i, piece in enumerate(pieces):
            key = self._key(piece)
            audio = self.cache.get(key)
            cached = audio is not None
            if audio is None:
                t0 = time.perf_counter()
                audio = await loop.run_in_executor(self._executor, self.synthesize_sync, piece)
                log.debug("tts %.0f ms for %r", (time.perf_counter() - t0) * 1000, piece)
                self.cache.put(key, audio)
            if sentence_index == 0 and i == 0:
                audio = trim_lead(audio, self.output_rate)
            if len(audio):
                yield AudioChunk(
                    response_id,
                    samples=audio,
                    sample_rate=self.output_rate,
                    text=piece,
                    sentence_index=sentence_index,
                    last_in_sentence=i == len(pieces) - 1,
                    cached=cached,
                )

    def close(self) -> None:
        self._executor.shutdown(wait=True)
