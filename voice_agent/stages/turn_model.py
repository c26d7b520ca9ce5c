"""The smart-turn v3.2 end-of-turn model: is the user done, judged from the audio?

A small Whisper-encoder classifier (ONNX, 8.7 MB, BSD-2-Clause, by Daily)
over the last 8 s of the turn's audio; it hears what a transcript cannot:
pitch that stays up, a drawn-out "and", breath before more words. It gives
the probability that the turn is complete.

The file ships inside the `pipecat-ai` wheel (a dependency of this project).
It is found on disk without importing pipecat, whose import pulls in much of
its framework; `models_dir` may hold a copy instead. Input as pipecat's own
smart_turn code prepares it: 16 kHz, the last 8 s (zero-padded in front),
normalized to zero mean and unit variance, Whisper's 80-bin log-mel features.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

FILE = "smart-turn-v3.2-cpu.onnx"
WINDOW_S = 8
RATE = 16_000


def find_model(models_dir: str | Path | None = None) -> Path | None:
    """The ONNX file: in `models_dir`, else inside the installed pipecat package."""
    if models_dir is not None and (Path(models_dir) / FILE).is_file():
        return Path(models_dir) / FILE
    spec = importlib.util.find_spec("pipecat")  # locates the package without running it
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root) / "audio" / "turn" / "smart_turn" / "data" / FILE
        if path.is_file():
            return path
    return None


def features(audio: np.ndarray) -> np.ndarray:
    """(1, 80, 800) log-mel features of the last 8 s of `audio` (16 kHz mono)."""
    from faster_whisper.feature_extractor import FeatureExtractor

    n = WINDOW_S * RATE
    x = np.asarray(audio, np.float32)[-n:]
    x = np.pad(x, (n - len(x), 0))
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    mel = _extractor(FeatureExtractor)(x, padding=0)
    return mel[np.newaxis, :, : WINDOW_S * 100].astype(np.float32)


_EXTRACTORS: dict[type, object] = {}


def _extractor(kind: type) -> object:
    if kind not in _EXTRACTORS:
        _EXTRACTORS[kind] = kind(feature_size=80, chunk_length=WINDOW_S)
    return _EXTRACTORS[kind]


class SmartTurn:
    """P(the turn is complete) for the audio of a turn so far."""

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = threads
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self._session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        # Its own thread, as every model here: the event loop never waits on it.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="turn")

    def probability(self, audio: np.ndarray) -> float:
        out = self._session.run(None, {"input_features": features(audio)})
        return float(np.asarray(out[0]).reshape(-1)[0])

    async def done(self, audio: np.ndarray) -> float:
        """`probability`, off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.probability, audio)

    def warm_up(self) -> None:
        self.probability(np.zeros(RATE, np.float32))

    def close(self) -> None:
        self._executor.shutdown(wait=True)


def load(models_dir: str | Path | None = None, threads: int = 1) -> SmartTurn | None:
    """The model, or None (with one log line) when its file is not installed."""
    path = find_model(models_dir)
    if path is None:
        log.warning("end-of-turn model %s not found (install pipecat-ai): the transcript alone decides", FILE)
        return None
    return SmartTurn(path, threads)
