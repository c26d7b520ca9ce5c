"""Configuration: dataclasses with defaults, a TOML file, then environment and flags.

A TOML file has one table per section, named as the fields below:

    [llm]
    model = "llama3.2"
    base_url = "http://localhost:11434/v1"
    [vad]
    end_of_turn_ms = 400
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_SYSTEM_PROMPT = (
    "You are a friendly voice assistant. Your words are spoken aloud, so answer in "
    "one to three short sentences of plain speech: no lists, no markdown, no emoji."
)


class ConfigError(ValueError):
    """A user mistake in configuration: reported as one line, never a traceback."""


@dataclass
class LLMConfig:
    base_url: str | None = None  # default: $OPENAI_BASE_URL
    api_key: str | None = field(default=None, repr=False)  # default: $OPENAI_API_KEY
    model: str = "gpt-4o-mini"  # default: $OPENAI_MODEL if set
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    temperature: float = 0.7
    max_tokens: int = 200
    history_turns: int = 20  # user+assistant pairs kept
    history_tokens: int = 3_000  # budget of the system prompt plus kept history (estimated)
    summarize_history: bool = False  # have the LLM summarize exchanges the budget drops
    first_token_timeout_s: float = 20.0
    inter_token_timeout_s: float = 10.0
    max_retries: int = 0  # a voice turn should fail fast, not retry for seconds
    embedded_model_path: str | None = None  # GGUF for the embedded demo LLM
    embedded_threads: int = 2
    backend: str = "auto"  # "auto" | "openai" | "embedded"
    node: str | None = None  # your own reply node, "package.module:function" (default: the LLM)

    def resolved(self) -> LLMConfig:
        """Fill unset fields from the standard OpenAI environment variables."""
        return replace(
            self,
            base_url=self.base_url or os.environ.get("OPENAI_BASE_URL") or None,
            api_key=self.api_key or os.environ.get("OPENAI_API_KEY") or None,
            model=os.environ.get("OPENAI_MODEL", self.model) if self.model == LLMConfig.model else self.model,
        )

    @property
    def use_embedded(self) -> bool:
        if self.backend != "auto":
            return self.backend == "embedded"
        return not (self.base_url or self.api_key)


@dataclass
class VADConfig:
    aggressiveness: int = 2  # webrtcvad 0 (lenient) .. 3 (strict)
    frame_ms: int = 20  # 10, 20 or 30
    min_speech_ms: int = 120  # shorter bursts are clicks and coughs
    end_of_turn_ms: int = 500  # silence that ends the user's turn
    speculate_ms: int = 150  # silence at which a reply starts, unheard until the turn ends (0: off)
    quick_end_of_turn_ms: int = 200  # the end of turn when it sounds and reads finished (0: off)
    hold_end_of_turn_ms: int = 900  # with the turn model: when the audio and words do not both sound finished
    unfinished_end_of_turn_ms: int = 1500  # with the model: when both say the user will go on (0: off)
    end_of_turn_model: bool = True  # the smart-turn model judges the audio (see stages/endpointing.py)
    end_of_turn_threshold: float = 0.7  # its probability of "done" that counts as done
    pre_roll_ms: int = 300  # audio kept from before speech started


@dataclass
class STTConfig:
    model: str | None = None  # a faster-whisper model folder; default: found (see models.py)
    device: str = "cpu"
    compute_type: str = "int8"
    threads: int = 2
    language: str = "en"
    beam_size: int = 1
    short_window: bool = True  # encode the utterance, not 30 s (see stt.py); False = stock transcribe()


@dataclass
class TTSConfig:
    voice: str | None = None  # a Piper .onnx voice; default: found (see models.py)
    length_scale: float | None = None  # < 1 speaks faster
    volume: float = 1.0


@dataclass
class AudioConfig:
    output_rate: int = 22_050  # rate of the agent's audio as it leaves the pipeline
    # Playback block. 10 ms blocks at PortAudio's "low" latency come out of the speaker 25 ms sooner
    # (scripts/measure_round_trip.py), but hand the echo canceller its reference only just before
    # the echo: in a room run at 0 dB/20 ms the first reply's echo came through (README).
    block_ms: int = 20
    input_device: str | None = None
    output_device: str | None = None
    echo_cancellation: bool = True  # live mode; turn off with headphones (--headphones)


@dataclass
class BargeInConfig:
    min_speech_ms: int = 200  # user speech over the agent's voice needed to cut it off
    # This much sound over the agent's voice pauses it at once, while the cut is decided; if the
    # sound ends without cutting it off, it goes on from where it paused (0: no pause).
    pause_ms: int = 60
    # "voice": only a sound Silero hears as speech pauses it (a cough or a knock does not; ~100 ms
    # later in the room); "sound": any (the quickest stop; coughs and knocks pause it too).
    pause_for: str = "voice"
    # Silero's probability in one 32 ms window that counts as a voice for the pause. Through the
    # echo canceller a soft first word scores 0.1-0.2 (room replay, README); a crash reaches 0.29.
    pause_voice_threshold: float = 0.15
    continue_ms: int = 700  # speech this soon after the reply became audible continues the user's turn
    resume: str = "repeat"  # after a false interruption: "repeat" the cut sentence, or "continue"
    # "silero": an audible reply is cut only once Silero VAD also hears confirm_ms of speech in the
    # sound (a cough, a clap, a door is not); "none": webrtcvad's min_speech_ms alone decides.
    confirm: str = "silero"
    confirm_ms: int = 64  # two 32 ms Silero windows

    def __post_init__(self) -> None:
        if self.confirm not in ("silero", "none"):
            raise ConfigError(f"[bargein] confirm must be 'silero' or 'none', not {self.confirm!r}")
        if self.pause_for not in ("voice", "sound"):
            raise ConfigError(f"[bargein] pause_for must be 'voice' or 'sound', not {self.pause_for!r}")
        if not 0.0 < self.pause_voice_threshold < 1.0:
            raise ConfigError(f"[bargein] pause_voice_threshold must be between 0 and 1, not {self.pause_voice_threshold}")


@dataclass
class ToolsConfig:
    # The allowlist: built-ins ("time", "calculate") and the user's own as
    # "package.module:function". Nothing else can run.
    enabled: list[str] = field(default_factory=lambda: ["time", "calculate"])
    timeout_s: float = 10.0  # a call taking longer gets an error result
    filler: str = "One moment."  # said while a slow call runs
    filler_after_ms: int = 700


@dataclass
class Config:
    """All settings, one dataclass per section (`cfg.llm`, `cfg.vad`, ...); see `load_config`."""

    llm: LLMConfig = field(default_factory=LLMConfig)
    vad: VADConfig = field(default_factory=VADConfig)
    stt: STTConfig = field(default_factory=STTConfig)
    tts: TTSConfig = field(default_factory=TTSConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    bargein: BargeInConfig = field(default_factory=BargeInConfig)
    tools: ToolsConfig = field(default_factory=ToolsConfig)
    greeting: str | None = None  # said when the session starts
    transcript: str | None = None  # append the conversation to this JSONL file
    resume: str | None = None  # continue the conversation in this transcript
    apology: str = "Sorry, I couldn't get an answer just now. Please try again."  # said when a turn fails
    models_dir: str = str(Path(__file__).resolve().parents[2] / "models")


def load_config(path: str | Path | None = None) -> Config:
    """The defaults, overridden by the TOML file at `path` if given; a bad file is a one-line `ConfigError`."""
    config = Config()
    if path is None:
        return config
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {p}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {p} is not valid TOML: {exc}") from None
    return merge(config, data, where=str(p))


def load_object(spec: str, what: str, error: type[ValueError] = ConfigError) -> Any:
    """The function a `package.module:function` setting names (`--tools`, `--node`), or a one-line `error`."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise error(f"{what} '{spec}': expected package.module:function")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise error(f"{what} '{spec}': cannot import {module_name} ({exc})") from None
    found = getattr(module, attr, None)
    if not callable(found):
        raise error(f"{what} '{spec}': {module_name} has no function {attr}")
    return found


def merge(obj: Any, data: dict[str, Any], where: str) -> Any:
    """A copy of dataclass `obj` with `data` applied; unknown keys are errors."""
    known = {f.name: f for f in fields(obj)}
    changes: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown setting '{key}' (known: {', '.join(sorted(known))})")
        current = getattr(obj, key)
        if is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: [{key}] must be a table")
            changes[key] = merge(current, value, f"{where} [{key}]")
        else:
            changes[key] = value
    return replace(obj, **changes)
