"""The LLM node: a streamed chat completion as an async generator of text chunks.

Any backend with `stream(messages) -> AsyncIterator[str]` works; `OpenAIChat`
speaks to any OpenAI-compatible endpoint (OpenAI, Ollama, llama.cpp server,
vLLM), `embedded_llm.EmbeddedLLM` runs a small local model in-process.

Failures (connection, timeout, HTTP status, malformed stream) become an
`LLMError` with one line a user can act on; the node harness
(`conversation/node.py`) turns it into a `ResponseDone(error=...)` so the
turn ends and the session goes on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

import openai

from ..core._compat import timeout
from ..core.config import LLMConfig
from ..core.events import (
    AgentResponse,
    Filler,
    TextChunk,
    ToolCall,
    ToolExchange,
    ToolResult,
)
from .tools import CallRequest, Outcome, Toolbox, exchange

log = logging.getLogger(__name__)


class LLMError(Exception):
    """A turn's LLM call failed; the message is one line for the user.

    `retry_after` is set when trying again may work (HTTP 5xx, 429): the
    seconds to wait first.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


MAX_RETRY_WAIT_S = 5.0  # a voice turn waits at most this long for a rate limit to pass


class ChatBackend(Protocol):
    def stream(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> AsyncIterator[str | CallRequest]: ...

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
        self.tools_supported = True  # until the endpoint rejects them
        self._cooldown_until = 0.0  # after a 429: no request before this (time.monotonic)
        self._key_rejected = False  # a 401 was reported once already

    async def aclose(self) -> None:
        await self.client.close()

    async def _create(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> Any:
        extra: dict[str, Any] = {"tools": tools} if tools and self.tools_supported else {}
        try:
            return await self.client.chat.completions.create(
                model=self.cfg.model,
                messages=messages,  # type: ignore[arg-type]
                stream=True,
                temperature=self.cfg.temperature,
                max_tokens=self.cfg.max_tokens,
                **extra,
            )
        except openai.BadRequestError:
            if not extra:
                raise
            # Many local models reject `tools`: go on without them rather than fail every turn.
            log.warning("the LLM at %s rejected tool definitions: continuing without tools", self.where)
            self.tools_supported = False
            return await self._create(messages, None)

    async def stream(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> AsyncIterator[str | CallRequest]:
        """Text deltas of one reply, then any tool calls. The HTTP stream is closed however this ends."""
        wait = self._cooldown_until - time.monotonic()
        if wait > 0:
            log.info("rate limited: waiting %.1f s before calling the LLM", wait)
            await asyncio.sleep(wait)
        try:
            async with timeout(self.cfg.first_token_timeout_s):
                response = await self._create(messages, tools)
        except TimeoutError:
            raise LLMError(f"the LLM at {self.where} did not answer within {self.cfg.first_token_timeout_s:g} s") from None
        except openai.OpenAIError as exc:
            raise self._describe(exc) from None
        finished = False
        first = True
        calls = _CallAccumulator()
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
                if choice.delta and choice.delta.tool_calls:
                    calls.add(choice.delta.tool_calls)
                if choice.delta and choice.delta.content:
                    yield choice.delta.content
            if not finished:
                raise LLMError(f"the LLM stream from {self.where} ended before the reply was complete")
        except openai.APIConnectionError:
            if first:
                raise LLMError(f"cannot reach the LLM at {self.where} (is it running? check OPENAI_BASE_URL)") from None
            raise LLMError(f"the LLM stream from {self.where} ended before the reply was complete (connection lost)") from None
        except openai.OpenAIError as exc:
            raise self._describe(exc) from None
        except (json.JSONDecodeError, ValueError, KeyError, AttributeError) as exc:
            raise LLMError(f"malformed stream from the LLM at {self.where}: {type(exc).__name__}") from None
        finally:
            await response.close()
        for call in calls.requests():
            yield call

    def _describe(self, exc: openai.OpenAIError) -> LLMError:
        if isinstance(exc, openai.AuthenticationError):
            if self._key_rejected:  # said once with the fix; no need to repeat it every turn
                return LLMError(f"the LLM at {self.where} still rejects the API key")
            self._key_rejected = True
        retry_after = None
        if isinstance(exc, openai.RateLimitError):
            retry_after = _retry_after(exc.response.headers)
            self._cooldown_until = time.monotonic() + retry_after
        elif isinstance(exc, openai.InternalServerError):
            retry_after = 0.25
        for kind, message in _ERRORS:  # most specific first
            if isinstance(exc, kind):
                status = getattr(exc, "status_code", "")
                return LLMError(message.format(where=self.where, model=self.cfg.model, status=status), retry_after)
        return LLMError(f"the LLM at {self.where} failed: {type(exc).__name__}")


def _retry_after(headers: Any) -> float:
    """Seconds a 429 asks us to wait (`retry-after-ms` or `retry-after`), 1 s if it does not say."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            return max(0.0, float(headers.get(name)) * scale)
        except (TypeError, ValueError):
            continue
    return 1.0


_ERRORS: list[tuple[type[openai.OpenAIError], str]] = [
    (openai.APITimeoutError, "the LLM at {where} timed out"),
    (openai.APIConnectionError, "cannot reach the LLM at {where} (is it running? check OPENAI_BASE_URL)"),
    (openai.AuthenticationError, "the LLM at {where} rejected the API key (HTTP 401): set a valid OPENAI_API_KEY"),
    (openai.RateLimitError, "the LLM at {where} is rate limiting requests (HTTP 429): wait and try again"),
    (openai.NotFoundError, "the LLM at {where} has no model '{model}' (HTTP 404): check --model"),
    (openai.APIStatusError, "the LLM at {where} failed with HTTP {status}"),
]


class _CallAccumulator:
    """Tool calls arrive as fragments (id and name first, arguments in pieces), keyed by index."""

    def __init__(self) -> None:
        self._calls: dict[int, dict[str, str]] = {}

    def add(self, deltas: Any) -> None:
        for d in deltas:
            call = self._calls.setdefault(d.index, {"id": "", "name": "", "arguments": ""})
            call["id"] = d.id or call["id"]
            if d.function is not None:
                call["name"] += d.function.name or ""
                call["arguments"] += d.function.arguments or ""

    def requests(self) -> list[CallRequest]:
        return [CallRequest(c["id"] or f"call_{i}", c["name"], c["arguments"]) for i, c in sorted(self._calls.items())]


@dataclass
class ToolUse:
    """How a reply may use tools."""

    toolbox: Toolbox
    filler: str = "One moment."  # said when a call takes longer than filler_after_s
    filler_after_s: float = 0.7
    spawn: Callable[[Coroutine[Any, Any, Outcome], str], asyncio.Task[Outcome]] = lambda coro, name: asyncio.create_task(coro, name=name)
    before_calls: Callable[[], Awaitable[Any]] | None = None  # a speculative reply waits for its turn to be over
    max_rounds: int = 3


async def reply(
    backend: ChatBackend, messages: list[dict[str, Any]], response_id: int, tools: ToolUse | None = None
) -> AsyncIterator[AgentResponse]:
    """The LLM's reply: `TextChunk`s as they arrive and tool rounds; `LLMError` if it fails.

    A tool round: the LLM's calls (`ToolCall`), a `Filler` if they are slow,
    their results (`ToolResult`), then the round as chat messages
    (`ToolExchange`); the LLM is then asked again with the results.
    """
    said: list[str] = []
    messages = list(messages)
    for round_no in range((tools.max_rounds if tools else 0) + 1):
        offer = tools.toolbox.schemas() if tools and round_no < tools.max_rounds else None
        calls: list[CallRequest] = []
        before = len(said)
        async for delta in _with_retry(backend, messages, offer):
            if isinstance(delta, CallRequest):
                calls.append(delta)
            else:
                if len(said) == before and said and not said[-1][-1:].isspace() and not delta[:1].isspace():
                    delta = " " + delta  # the words after a tool round go on from those before it
                said.append(delta)
                yield TextChunk(response_id, delta)
        if not calls or tools is None:
            return
        outcomes: list[Outcome] = []
        async for event in run_calls(tools, calls, response_id):
            if isinstance(event, ToolResult):
                outcomes.append(Outcome(event.content, event.is_error))
            yield event
        round_messages = exchange("".join(said[before:]), calls, outcomes)
        messages += round_messages
        yield ToolExchange(response_id, tuple(round_messages))


async def _with_retry(backend: ChatBackend, messages: list[dict[str, Any]], offer: Any) -> AsyncIterator[str | CallRequest]:
    """One retry of a failed call that nothing was said of yet, if the error says it may pass."""
    for attempt in (1, 2):
        said = False
        try:
            async for piece in backend.stream(messages, offer):
                said = True
                yield piece
            return
        except LLMError as exc:
            wait = exc.retry_after
            if said or attempt == 2 or wait is None or wait > MAX_RETRY_WAIT_S:
                raise
            log.warning("%s: retrying in %.1f s", exc, wait)
            await asyncio.sleep(wait)


async def run_calls(tools: ToolUse, calls: list[CallRequest], response_id: int) -> AsyncIterator[AgentResponse]:
    """Run one round's calls at once; on interruption each call is cancelled or finishes, as its tool says."""
    if tools.before_calls is not None:
        await tools.before_calls()
    for c in calls:
        yield ToolCall(response_id, c.id, c.name, c.arguments)
    tasks = [tools.spawn(tools.toolbox.call(c), f"tool:{c.name}") for c in calls]
    try:
        _, pending = await asyncio.wait(tasks, timeout=tools.filler_after_s)
        if pending:
            yield Filler(response_id, tools.filler)
            await asyncio.wait(pending)
        for c, task in zip(calls, tasks):
            outcome = task.result()
            yield ToolResult(response_id, c.id, c.name, outcome.content, outcome.is_error)
    finally:
        cancelled = []
        for c, task in zip(calls, tasks):
            if task.done():
                continue
            if tools.toolbox.on_interrupt(c.name) == "finish":
                task.add_done_callback(tools.toolbox.finished_late(c))
            else:
                task.cancel()
                cancelled.append(task)
        if cancelled:
            await asyncio.wait(cancelled)
