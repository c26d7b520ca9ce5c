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

from ..core.config import STTConfig
from .models import find_whisper, load_whisper
from .speech_check import voiced_ms

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recognition:
    text: str
    seconds: float  # compute time


# Zero features after the utterance in the short window: room for Whisper to end. (Zero features
# are not silence to Whisper. Padding the audio with 4-8 s of silence instead loops less: 0-2
# stock redos in 53 recordings rather than 10, p95 650 -> 400-429 ms; but it groups digit strings,
# "293 40" for "two nine three four zero": WER 0.052 -> 0.059. python scripts/stt_padding.py)
PAD_S = 2.0
SEGMENT_END_SLACK_S = 0.3


class Transcriber:
    """Whisper on a short window, with the stock 30 s window as the fallback.

    Stock `transcribe()` always encodes 30 s; a 3 s utterance pays for 27 s
    of padding. Encoding only the utterance plus `PAD_S` is 4x faster, but
    Whisper then tends to loop in the padding. Decoding with timestamps and
    dropping everything timed past the audio's end removes that; a turn that
    still repeats itself, comes out empty, or that Whisper thinks holds no
    speech, is redone the stock way.
    Measured on tests/speech: WER 0.085 vs 0.092 stock, 89 ms vs 338 ms.
    """

    def __init__(self, cfg: STTConfig, models_dir: str) -> None:
        from faster_whisper.tokenizer import Tokenizer

        self.cfg = cfg
        path = find_whisper(cfg.model, models_dir)
        self.model = load_whisper(path, cfg.device, cfg.compute_type, cfg.threads)
        self.tokenizer = Tokenizer(
            self.model.hf_tokenizer, self.model.model.is_multilingual, task="transcribe", language=cfg.language
        )
        # One thread: Whisper calls never overlap, so they never fight for the cores.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stt")

    def warm_up(self) -> None:
        self.transcribe_sync(np.zeros(8000, np.float32))
        voiced_ms(np.zeros(8000, np.float32))

    def transcribe_sync(self, audio: np.ndarray) -> Recognition:
        t0 = time.perf_counter()
        if not self.cfg.short_window:
            text = self.transcribe_stock(audio).text
        else:
            text, doubt = self._short_window(audio)
            if doubt:
                text = self.transcribe_stock(audio).text
        if text and voiced_ms(audio, enough_ms=MIN_VOICED_MS) < MIN_VOICED_MS:
            # Whisper invents words for breath and noise ("Thank you.", "I'm not gonna be
            # able to get it."); real words, even a lone "bye", are speech to Silero.
            log.info("dropped %r: Silero hears no speech in the audio", text)
            text = ""
        return Recognition(text=text, seconds=time.perf_counter() - t0)

    def _short_window(self, audio: np.ndarray, silence_s: float = 0.0) -> tuple[str, str]:
        """(text, doubt): a doubt ("no speech", "empty", "loop") means "redo it with the full window".

        `silence_s`: pad the audio with that much silence rather than the features with zeros
        (scripts/stt_padding.py compares them)."""
        tok = self.tokenizer
        if silence_s:
            features = self.model.feature_extractor(np.concatenate([audio, np.zeros(int(silence_s * 16000), np.float32)]))
        else:
            features = np.pad(self.model.feature_extractor(audio), ((0, 0), (0, int(PAD_S * 100))))
        encoded = self.model.encode(features)
        duration = len(audio) / 16000
        result = self.model.model.generate(
            encoded,
            [list(tok.sot_sequence)],
            beam_size=self.cfg.beam_size,
            max_length=int(20 + duration * 10),
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=[-1],
        )[0]
        ids = result.sequences_ids[0]
        if result.no_speech_prob > 0.5:
            # Probably no words (a cough, a breath, noise): the short window decodes
            # those confidently into "I..." loops, so let the stock path judge.
            return "", "no speech"
        kept: list[int] = []
        for token in ids:
            if token >= tok.timestamp_begin:
                if (token - tok.timestamp_begin) * 0.02 > duration + SEGMENT_END_SLACK_S:
                    break  # the rest was "heard" in the padding: hallucinated
            elif token < tok.eot:
                kept.append(token)
        text = tok.decode(kept).strip()
        if not re.search(r"\w", text):
            return "", "empty"
        return text, "loop" if _repeats(text) else ""

    def transcribe_stock(self, audio: np.ndarray) -> Recognition:
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


MIN_VOICED_MS = 100  # less speech than this (to Silero VAD) and Whisper's words are its own invention
LONG_PHRASE = 6  # words: a phrase this long said twice in one turn is a decoder going round


def _repeats(text: str) -> bool:
    """A word four times in a row, a phrase of 2 words three times or of 3 to 8 words
    twice in a row, or a phrase of `LONG_PHRASE` words or more twice anywhere: a decoder
    stuck in a loop (people rarely say three words again at once). The last catches a
    loop that broke off: "The number you have dialed is not in service. The number you
    have dialed is not in" (a 9-word loop, cut before its last word)."""
    words = re.findall(r"\w+", text.lower())
    for n, times in ((1, 4), (2, 3), *((k, 2) for k in range(3, 9))):
        for i in range(len(words) - n * times + 1):
            if all(words[i + k * n : i + (k + 1) * n] == words[i : i + n] for k in range(1, times)):
                return True
    seen = {tuple(words[i : i + LONG_PHRASE]): i for i in range(len(words) - LONG_PHRASE, -1, -1)}
    return any(seen[tuple(words[i : i + LONG_PHRASE])] <= i - LONG_PHRASE for i in range(len(words) - LONG_PHRASE + 1))


def _is_speech(segment: Any) -> bool:
    # Whisper's own silence test: a confident "no speech" with a weak decode.
    if segment.no_speech_prob > 0.6 and segment.avg_logprob < -1.0:
        return False
    return bool(re.search(r"\w", segment.text))
