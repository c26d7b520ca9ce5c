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
from dataclasses import dataclass
from typing import Any

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


BOUNDARIES = frozenset(" ^$_.,;:!?…—–-\"'()")  # Piper's phonemes between words: pause, start, end, punctuation


def word_ends(chunks: list[Any]) -> tuple[int, ...]:
    """Where each word of Piper's `chunks` ends, in samples of their joined audio; () without alignments.

    Piper (with `include_alignments`) says how many samples each phoneme
    took. A word is a run of phonemes between spaces and punctuation: it ends
    where the pause or mark after it begins, so a word is never counted as
    heard before all of it has played.
    """
    ends: list[int] = []
    base = 0
    for chunk in chunks:
        if not chunk.phoneme_alignments:
            return ()
        at, in_word = base, False
        for aligned in chunk.phoneme_alignments:
            if aligned.phoneme in BOUNDARIES:
                if in_word:
                    ends.append(at)
                in_word = False
            else:
                in_word = True
            at += int(aligned.num_samples)
        if in_word:
            ends.append(at)
        base += len(chunk.audio_float_array)
    return tuple(ends)


@dataclass(frozen=True)
class Speech:
    """Synthesized audio (int16 mono, at the output rate) and where each word of its text ends in it."""

    samples: np.ndarray
    word_ends: tuple[int, ...] = ()  # one per word of the text; () when Piper's phonemes do not match its words

    @property
    def nbytes(self) -> int:
        return int(self.samples.nbytes)


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
        self.cache: AudioCache[Speech] = AudioCache()

    def _key(self, text: str) -> Key:
        return (str(self.voice_path), self.cfg.length_scale, self.cfg.volume, text)

    def warm_up(self, phrases: list[str] | tuple[str, ...] = ()) -> None:
        """Run the voice once, and synthesize `phrases` (fillers, greeting) ahead so they cost nothing later."""
        self.synthesize_sync("Hello.")
        for phrase in phrases:
            for piece in split_for_synthesis(phrase):
                self.cache.put(self._key(piece), self.synthesize_words(piece), pinned=True)

    def synthesize_sync(self, text: str) -> np.ndarray:
        """int16 mono audio at the output rate; empty if nothing in `text` is speakable."""
        return self.synthesize_words(text).samples

    def synthesize_words(self, text: str) -> Speech:
        """`synthesize_sync`, with where each word of `text` ends (when Piper's words are its words)."""
        chunks = list(self.voice.synthesize(text, syn_config=self._syn, include_alignments=True))
        if not chunks:
            return Speech(np.zeros(0, np.int16))
        audio = np.concatenate([c.audio_float_array for c in chunks])
        ends = word_ends(chunks)
        if len(ends) != len(text.split()):
            ends = ()  # "3:30" or a dash read differently: credit words by their share of the audio
        if self.output_rate != self.voice_rate:
            audio = soxr.resample(audio, self.voice_rate, self.output_rate)
            ends = tuple(e * self.output_rate // self.voice_rate for e in ends)
        return Speech((np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16), ends)

    async def speak(self, text: str, response_id: int, sentence_index: int) -> AsyncIterator[AudioChunk]:
        """Audio for one sentence, piece by piece, each yielded as soon as it exists."""
        loop = asyncio.get_running_loop()
        pieces = split_for_synthesis(text)
        for i, piece in enumerate(pieces):
            key = self._key(piece)
            speech = self.cache.get(key)
            cached = speech is not None
            if speech is None:
                t0 = time.perf_counter()
                speech = await loop.run_in_executor(self._executor, self.synthesize_words, piece)
                log.debug("tts %.0f ms for %r", (time.perf_counter() - t0) * 1000, piece)
                self.cache.put(key, speech)
            audio = speech.samples
            if sentence_index == 0 and i == 0:
                audio = trim_lead(audio, self.output_rate)
            if len(audio):
                cut = len(speech.samples) - len(audio)
                yield AudioChunk(
                    response_id,
                    samples=audio,
                    sample_rate=self.output_rate,
                    text=piece,
                    sentence_index=sentence_index,
                    last_in_sentence=i == len(pieces) - 1,
                    cached=cached,
                    word_ends=tuple(max(0, e - cut) for e in speech.word_ends),
                )

    def close(self) -> None:
        self._executor.shutdown(wait=True)
