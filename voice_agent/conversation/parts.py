"""Build the parts of an agent from config: models loaded once and warmed up."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from ..core.config import Config
from ..stages.builtin_tools import enabled_tools
from ..stages.llm import ChatBackend, OpenAIChat
from ..stages.normalize import validate
from ..stages.stt import Transcriber
from ..stages.tools import Toolbox
from ..stages.tts import Synthesizer
from ..stages.turn_model import SmartTurn
from ..stages.turn_model import load as load_turn_model

log = logging.getLogger(__name__)


@dataclass
class Parts:
    """The loaded models and the LLM behind a session (loaded once, shared)."""

    stt: Transcriber
    tts: Synthesizer
    llm: ChatBackend
    toolbox: Toolbox | None = None  # the tools the LLM may call (None: no tools)
    turn_model: SmartTurn | None = None  # hears whether the user is done (None: the transcript decides)


def build_llm(cfg: Config) -> tuple[ChatBackend, str]:
    """The chat backend and a one-line description of it for the user."""
    llm_cfg = cfg.llm.resolved()
    if llm_cfg.use_embedded:
        from ..stages.embedded_llm import EmbeddedLLM

        backend = EmbeddedLLM(llm_cfg, cfg.models_dir)
        backend.warm_up()
        return backend, f"embedded demo LLM {backend.path.name} (tiny; set OPENAI_BASE_URL for a real one)"
    return OpenAIChat(llm_cfg), f"{llm_cfg.model} at {llm_cfg.base_url or 'api.openai.com'}"


def build_toolbox(cfg: Config) -> Toolbox | None:
    """The allowlisted tools; `ToolError` (one line) for a tool that cannot be loaded."""
    tools = enabled_tools(cfg.tools.enabled)
    return Toolbox(tools, cfg.tools.timeout_s) if tools else None


def stock_phrases(cfg: Config) -> list[str]:
    """What the agent may say that is known in advance, as the TTS stage will receive it."""
    phrases = [cfg.tools.filler, cfg.greeting, cfg.apology]
    return [spoken for p in phrases if p and (spoken := validate(p))]


def build_parts(cfg: Config) -> tuple[Parts, str]:
    """Load and warm up the models, the LLM and the tools of `cfg` (slow: once per program); and a line describing the LLM."""
    t0 = time.perf_counter()
    toolbox = build_toolbox(cfg)
    stt = Transcriber(cfg.stt, cfg.models_dir)
    tts = Synthesizer(cfg.tts, cfg.models_dir, cfg.audio.output_rate)
    llm, llm_desc = build_llm(cfg)
    turn_model = load_turn_model(cfg.models_dir) if cfg.vad.end_of_turn_model else None
    # Warm every model once so the first turn is as fast as the tenth.
    stt.warm_up()
    tts.warm_up(stock_phrases(cfg))
    if turn_model is not None:
        turn_model.warm_up()
    log.info("models ready in %.1f s", time.perf_counter() - t0)
    return Parts(stt=stt, tts=tts, llm=llm, toolbox=toolbox, turn_model=turn_model), llm_desc


async def close_parts(parts: Parts) -> None:
    """Close the LLM client and the models' worker threads."""
    await parts.llm.aclose()
    parts.stt.close()
    parts.tts.close()
    if parts.turn_model is not None:
        parts.turn_model.close()
