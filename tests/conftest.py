from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from voice_agent.core.config import Config, LLMConfig
from voice_agent.measure.scripted_llm import ScriptedLLM
from voice_agent.stages.stt import Transcriber
from voice_agent.stages.tts import Synthesizer

TESTS = Path(__file__).resolve().parent
SPEECH = TESTS / "speech"
CFG = Config()


@pytest.fixture(scope="module")
def stt() -> Transcriber:
    """The recogniser of the default config (loaded once per test module)."""
    return Transcriber(CFG.stt, CFG.models_dir)


@pytest.fixture(scope="module")
def tts() -> Synthesizer:
    """The voice of the default config (loaded once per test module)."""
    return Synthesizer(CFG.tts, CFG.models_dir, CFG.audio.output_rate)


@pytest.fixture
async def llm_server() -> AsyncIterator[ScriptedLLM]:
    async with ScriptedLLM() as server:
        yield server


@pytest.fixture
def llm_config(llm_server: ScriptedLLM) -> LLMConfig:
    return LLMConfig(
        base_url=llm_server.base_url,
        api_key="sk-test-secret-1234",
        model="scripted",
        first_token_timeout_s=2.0,
        inter_token_timeout_s=1.0,
        backend="openai",
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
