"""Build the parts of an agent from config: models loaded once and warmed up."""

from __future__ import annotations

import logging
import time

from .agent import Parts
from .config import Config
from .llm import ChatBackend, OpenAIChat
from .stt import Transcriber
from .tts import Synthesizer

log = logging.getLogger(__name__)


def build_llm(cfg: Config) -> tuple[ChatBackend, str]:
    """The chat backend and a one-line description of it for the user."""
    llm_cfg = cfg.llm.resolved()
    if llm_cfg.use_embedded:
        from .embedded_llm import EmbeddedLLM

        backend = EmbeddedLLM(llm_cfg, cfg.models_dir)
        backend.warm_up()
        return backend, f"embedded demo LLM {backend.path.name} (tiny; set OPENAI_BASE_URL for a real one)"
    return OpenAIChat(llm_cfg), f"{llm_cfg.model} at {llm_cfg.base_url or 'api.openai.com'}"


def build_parts(cfg: Config) -> tuple[Parts, str]:
    t0 = time.perf_counter()
    stt = Transcriber(cfg.stt, cfg.models_dir)
    tts = Synthesizer(cfg.tts, cfg.models_dir, cfg.audio.output_rate)
    llm, llm_desc = build_llm(cfg)
    # Warm every model once so the first turn is as fast as the tenth.
    stt.warm_up()
    tts.warm_up()
    log.info("models ready in %.1f s", time.perf_counter() - t0)
    return Parts(stt=stt, tts=tts, llm=llm), llm_desc


async def close_parts(parts: Parts) -> None:
    await parts.llm.aclose()
    parts.stt.close()
    parts.tts.close()
