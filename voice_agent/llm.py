"""The LLM node: a streamed chat completion as an async generator of text chunks.

Any backend with `stream(messages) -> AsyncIterator[str]` works; `OpenAIChat`
speaks to any OpenAI-compatible endpoint (OpenAI, Ollama, llama.cpp server,
vLLM), `embedded_llm.EmbeddedLLM` runs a small local model in-process.

Failures (connection, timeout, HTTP status, malformed stream) become an
`LLMError` with one line a user can act on; `reply()` turns it into a
`ResponseDone(error=...)` so the turn ends and the session goes on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any, Protocol

import openai

from ._compat import timeout
from .config import LLMConfig
from .events import AgentResponse, ResponseDone, TextChunk

log = logging.getLogger(__name__)


class LLMError(Exception):
    """A turn's LLM call failed; the message is one line for the user."""


class ChatBackend(Protocol):
    def stream(self, messages: list[dict[str, Any]]) -> AsyncIterator[str]: ...

    async def aclose(self) -> None: ...


class OpenAIChat:
    def __init__(self, cfg: LLMConfig) -> None:
        self.cfg = cfg
        self.client = openai.AsyncOpenAI(
            base_url=cfg.base_url,
            api_key=cfg.api_key or "not-needed",  # local servers ignore it; the client insists
            max_retries=cfg.max_retries,
            timeout=openai.Timeout(cfg.first_token_timeout_s, connect=5.0),
        )
        self.where = cfg.base_url or "https://api.openai.com/v1"

    async def aclose(self) -> None:
        await self.client.close()

    async def stream(self, messages: list[dict[str, Any]]) -> AsyncIterator[str]:
        """Text deltas of one reply. The HTTP stream is closed however this ends."""
        try:
            async with timeout(self.cfg.first_token_timeout_s):
                response = await self.client.chat.completions.create(
                    model=self.cfg.model,
                    messages=messages,  # type: ignore[arg-type]
                    stream=True,
                    temperature=self.cfg.temperature,
                    max_tokens=self.cfg.max_tokens,
                )
        except TimeoutError:
            raise LLMError(f"the LLM at {self.where} did not answer within {self.cfg.first_token_timeout_s:g} s") from None
        except openai.OpenAIError as exc:
            raise LLMError(self._describe(exc)) from None
        finished = False
        first = True
        try:
            chunks = aiter(response)
            while True:
                limit = self.cfg.first_token_timeout_s if first else self.cfg.inter_token_timeout_s
                try:
                    async with timeout(limit):
                        chunk = await anext(chunks)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise LLMError(f"the LLM stream from {self.where} stalled for {limit:g} s") from None
                first = False
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                if choice.finish_reason:
                    finished = True
                if choice.delta and choice.delta.content:
                    yield choice.delta.content
            if not finished:
                raise LLMError(f"the LLM stream from {self.where} ended before the reply was complete")
        except openai.APIConnectionError:
            if first:
                raise LLMError(f"cannot reach the LLM at {self.where} (is it running? check OPENAI_BASE_URL)") from None
            raise LLMError(f"the LLM stream from {self.where} ended before the reply was complete (connection lost)") from None
        except openai.OpenAIError as exc:
            raise LLMError(self._describe(exc)) from None
        except (json.JSONDecodeError, ValueError, KeyError, AttributeError) as exc:
            raise LLMError(f"malformed stream from the LLM at {self.where}: {type(exc).__name__}") from None
        finally:
            await response.close()

    def _describe(self, exc: openai.OpenAIError) -> str:
        for kind, message in _ERRORS:  # most specific first
            if isinstance(exc, kind):
                status = getattr(exc, "status_code", "")
                return message.format(where=self.where, model=self.cfg.model, status=status)
        return f"the LLM at {self.where} failed: {type(exc).__name__}"


_ERRORS: list[tuple[type[openai.OpenAIError], str]] = [
    (openai.APITimeoutError, "the LLM at {where} timed out"),
    (openai.APIConnectionError, "cannot reach the LLM at {where} (is it running? check OPENAI_BASE_URL)"),
    (openai.AuthenticationError, "the LLM at {where} rejected the API key (HTTP 401): set a valid OPENAI_API_KEY"),
    (openai.RateLimitError, "the LLM at {where} is rate limiting requests (HTTP 429): wait and try again"),
    (openai.NotFoundError, "the LLM at {where} has no model '{model}' (HTTP 404): check --model"),
    (openai.APIStatusError, "the LLM at {where} failed with HTTP {status}"),
]


async def reply(backend: ChatBackend, messages: list[dict[str, Any]], response_id: int) -> AsyncIterator[AgentResponse]:
    """The LLM node: `TextChunk`s as they arrive, then one `ResponseDone`."""
    parts: list[str] = []
    try:
        async for delta in backend.stream(messages):
            parts.append(delta)
            yield TextChunk(response_id, delta)
    except LLMError as exc:
        log.error("turn dropped: %s", exc)
        yield ResponseDone(response_id, "".join(parts), error=str(exc))
        return
    yield ResponseDone(response_id, "".join(parts))
