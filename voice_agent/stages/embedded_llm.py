"""The embedded demo LLM: Gemma 3 270M (a base model) in-process via llama-cpp-python.

A base model does not follow chat templates: given one it rambles. Given a
transcript with a few short example exchanges and a stop at the next "User:",
it continues the transcript with one short, on-topic line. That makes it a
tiny demo brain, enough to show the pipeline working with no server and no key.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..core.config import LLMConfig
from .llm import LLMError
from .models import find_gguf, load_llama

log = logging.getLogger(__name__)

EXAMPLES = [
    ("What is the capital of France?", "The capital of France is Paris."),
    ("Can you recommend a good book?", "Try The Hobbit. It is a fun adventure."),
    ("How are you today?", "I am doing well, thank you for asking."),
]


def transcript_prompt(messages: list[dict[str, Any]]) -> str:
    system = next((m["content"] for m in messages if m["role"] == "system"), "")
    lines = [
        "The following is a conversation with a friendly voice assistant. " + system.split(".")[0].strip() + ".",
        "The assistant always answers in one short sentence.",
        "",
    ]
    for user, assistant in EXAMPLES:
        lines += [f"User: {user}", f"Assistant: {assistant}"]
    for m in messages:
        if m["role"] == "user":
            lines.append(f"User: {m['content']}")
        elif m["role"] == "assistant" and m.get("content"):
            lines.append(f"Assistant: {m['content']}")
    lines.append("Assistant:")
    return "\n".join(lines)


class EmbeddedLLM:
    def __init__(self, cfg: LLMConfig, models_dir: str) -> None:
        self.cfg = cfg
        self.path = find_gguf(cfg.embedded_model_path, models_dir)
        self.llm = load_llama(self.path, cfg.embedded_threads)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llm")

    def warm_up(self) -> None:
        for _ in self.llm.create_completion("User: Hi\nAssistant:", max_tokens=2, stream=True):
            pass

    async def aclose(self) -> None:
        self._executor.shutdown(wait=True)

    async def stream(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> AsyncIterator[str]:
        """Text of one reply; `tools` is ignored (a 270M base model cannot call tools)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        stop = threading.Event()
        prompt = transcript_prompt(messages)

        def put(kind: str, value: Any) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

        def generate() -> None:
            try:
                for part in self.llm.create_completion(
                    prompt,
                    max_tokens=min(self.cfg.max_tokens, 60),
                    temperature=self.cfg.temperature,
                    stop=["\nUser:", "\n", "User:"],
                    stream=True,
                ):
                    if stop.is_set():  # the reply was interrupted: stop computing tokens
                        break
                    put("text", part["choices"][0]["text"])
            except Exception as exc:  # noqa: BLE001 - reported to the turn, not raised in a thread
                put("error", exc)
            finally:
                put("end", None)

        work = loop.run_in_executor(self._executor, generate)
        first = True
        try:
            while True:
                kind, value = await queue.get()
                if kind == "end":
                    break
                if kind == "error":
                    raise LLMError(f"the embedded LLM failed: {value}")
                text = value.lstrip() if first else value
                if text:
                    first = False
                    yield text
        finally:
            stop.set()
            await work
