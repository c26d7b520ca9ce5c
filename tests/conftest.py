from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from voice_agent.core.config import LLMConfig
from voice_agent.measure.scripted_llm import ScriptedLLM

TESTS = Path(__file__).resolve().parent
SPEECH = TESTS / "speech"


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
