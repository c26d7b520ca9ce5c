"""Your own node: the reply step of a turn as an async generator you write.

A node takes the turn (`Turn`) and yields the reply as it is made: plain
`str` pieces (or `TextChunk`), and optionally `Filler` and tool events.

    async def shout(turn: Turn) -> AsyncIterator[str]:
        async for chunk in turn.stream_llm():   # the configured LLM, with the enabled tools
            yield chunk.text.upper() if isinstance(chunk, TextChunk) else chunk

The harness (`run_node`) stamps each chunk with the reply's id, buffers
sentences, makes them speakable, speaks them, records what was heard, and
ends the reply with `ResponseDone`. A barge-in cancels the node between
chunks: `CancelledError` (or `GeneratorExit`) arrives at its current `await`
or `yield`, so cleanup goes in `finally` and must not swallow it. A node that
raises drops the turn: the user hears the apology and can ask again, as when
the LLM fails. The built-in node, `llm_node`, is written the same way.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import itertools
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from typing import Any

from ..core.config import Config, ConfigError, load_object
from ..core.events import (
    AgentResponse,
    Filler,
    MediaChunk,
    ResponseDone,
    Resume,
    Say,
    TextChunk,
    ToolCall,
    ToolExchange,
    ToolResult,
)
from ..stages.llm import ChatBackend, LLMError, ToolUse, reply, run_calls
from ..stages.sentences import SentenceBuffer
from ..stages.tools import CallRequest, Toolbox, from_function

log = logging.getLogger(__name__)

Chunk = str | AgentResponse
Node = Callable[["Turn"], AsyncIterator[Chunk]]
NODE_YIELDS = (TextChunk, Filler, ToolCall, ToolResult, ToolExchange, MediaChunk)  # besides str


class NodeError(ConfigError):
    """A node that cannot be loaded or used (bad spec, not an async generator): one line."""


@dataclass
class Turn:
    """What a node gets: one user turn and the means to answer it."""

    user_text: str  # the user's words for this turn
    messages: list[dict[str, Any]]  # the conversation as chat messages: system prompt first, this turn's words last
    response_id: int  # the id of the reply being made (every chunk carries it; the harness stamps it)
    llm: ChatBackend  # the configured LLM (`stream_llm` is the usual way to use it)
    tools: ToolUse  # the enabled tools and how calls run (filler, timeout, barge-in)
    _committed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    _call_ids: itertools.count[int] = field(default_factory=itertools.count, repr=False)

    def __post_init__(self) -> None:
        self.messages = [dict(m) for m in self.messages]  # the node's own copy: the history is the harness's

    @property
    def speculative(self) -> bool:
        """True while the user may still go on: the reply is prepared during their pause, unheard.

        If they do go on, the node is cancelled. A node with side effects
        (sending, booking, moving) awaits `committed()` before acting.
        """
        return not self._committed.is_set()

    async def committed(self) -> None:
        """Return once the user's turn has really ended (at once if it has)."""
        if self.tools.before_calls is not None and not self._committed.is_set():
            await self.tools.before_calls()  # the harness's wait: it knows what the wait is for
        await self._committed.wait()

    @property
    def toolbox(self) -> Toolbox:
        """The enabled tools (`toolbox.tools` maps name to `Tool`); empty with `--tools none`."""
        return self.tools.toolbox

    def stream_llm(self, messages: list[dict[str, Any]] | None = None, tools: bool = True) -> AsyncIterator[AgentResponse]:
        """The configured LLM's reply to `messages` (default: this turn's): what `llm_node` yields.

        `TextChunk`s as they arrive; with `tools`, the LLM may call the enabled
        tools, and each round yields `ToolCall`, maybe a `Filler`, `ToolResult`
        and `ToolExchange` (the history keeps that one). A failure raises
        `LLMError`, whose message is one line for the user.
        """
        use = self.tools if tools and self.toolbox else None
        return reply(self.llm, self.messages if messages is None else messages, self.response_id, use)

    def run_tool(self, tool: str | Callable[..., Any], /, **arguments: Any) -> AsyncIterator[AgentResponse]:
        """Call a tool as the LLM would: yields `ToolCall`, a `Filler` if it is slow, then `ToolResult`.

        `tool` is an enabled tool's name or any function (sync or async; your
        own code needs no allowlist). Yield the events on: the `ToolCall` makes
        the words said so far play while the tool runs. Like the LLM's calls it
        waits for `committed()`, has a timeout, and a barge-in cancels it (or
        lets it finish, for a `@tool("finish")`). Errors come back as a
        `ToolResult` with `is_error`, never raised.
        """
        if callable(tool):
            made = from_function(tool)
            use = replace(self.tools, toolbox=Toolbox([made], self.toolbox.timeout_s))
            name = made.name
        else:
            use, name = self.tools, tool
        call = CallRequest(f"node_{self.response_id}_{next(self._call_ids)}", name, json.dumps(arguments))
        return run_calls(use, [call], self.response_id)


async def llm_node(turn: Turn) -> AsyncIterator[Chunk]:
    """The built-in node: the configured LLM answers, calling the enabled tools as it likes."""
    async for chunk in turn.stream_llm():
        yield chunk


async def run_node(node: Node, turn: Turn) -> AsyncIterator[AgentResponse]:
    """The node's chunks with the reply's id, then one `ResponseDone` (with `error` if it failed).

    Closing this generator (the llm route does on interruption) closes the
    node's, so the node's `finally` runs whether it was awaiting or yielding.
    """
    rid = turn.response_id
    said: list[str] = []
    try:
        async with aclosing(node(turn)) as chunks:
            async for item in chunks:
                chunk = _stamped(item, rid, node)
                if isinstance(chunk, TextChunk):
                    if not chunk.text:
                        continue
                    said.append(chunk.text)
                yield chunk
    except Exception as exc:  # noqa: BLE001 - the node is user code: its failure drops the turn, not the session
        error = str(exc) if isinstance(exc, LLMError) else f"the node {node_name(node)} failed: {type(exc).__name__}: {exc}"
        log.error("turn dropped: %s", error)
        log.debug("where the node failed", exc_info=True)  # for the node's author: --log-level DEBUG
        yield ResponseDone(rid, "".join(said), error=error)
        return
    yield ResponseDone(rid, "".join(said))


def _stamped(item: object, rid: int, node: Node) -> AgentResponse:
    if isinstance(item, str):
        return TextChunk(rid, item)
    if not isinstance(item, NODE_YIELDS):
        kinds = ", ".join(k.__name__ for k in NODE_YIELDS)
        raise NodeError(f"it yielded a {type(item).__name__}; a node yields str, {kinds}")
    return item if item.response_id == rid else replace(item, response_id=rid)


def node_name(node: Node) -> str:
    return f"{getattr(node, '__module__', '?')}:{getattr(node, '__qualname__', type(node).__name__)}"


def check_node(node: Any, where: str) -> Node:
    """`node` if it is an async generator function (or an object whose `__call__` is one)."""
    fn = node.func if isinstance(node, functools.partial) else node
    fn = fn if inspect.isfunction(fn) or inspect.ismethod(fn) else getattr(fn, "__call__", None)
    if not inspect.isasyncgenfunction(fn):
        raise NodeError(f"node '{where}' is not an async generator function (async def with yield)")
    return node  # type: ignore[no-any-return]


def load_node(spec: str) -> Node:
    """A node from `package.module:function` (`--node`, `[llm] node`), or a one-line `NodeError`."""
    return check_node(load_object(spec, "node", NodeError), spec)


def resolve_node(node: Node | None, cfg: Config) -> Node:
    """The node a session runs: the one given, else `[llm] node` in the config, else `llm_node`."""
    if node is not None:
        return check_node(node, node_name(node))
    return load_node(cfg.llm.node) if cfg.llm.node else llm_node


def ready_to_speak(chunk: AgentResponse, buffer: SentenceBuffer, apology: str | None) -> list[str]:
    """The sentences `chunk` of a reply completes (the apology ends a failed one)."""
    if isinstance(chunk, TextChunk):
        return buffer.push(chunk.text)
    if isinstance(chunk, Filler):
        return [chunk.text]  # spoken, but not part of the reply's text
    if isinstance(chunk, ToolCall):
        return buffer.flush()  # the words before a call are said while it runs
    if isinstance(chunk, ResponseDone):
        failed = [apology] if chunk.error and apology else []  # the user hears that the turn failed
        return buffer.flush() + failed
    return []


async def fixed_reply(said: Resume | Say, rid: int) -> AsyncIterator[AgentResponse]:
    """A reply whose text is already known (the greeting, resuming after a false interruption)."""
    yield TextChunk(rid, said.text)
    yield ResponseDone(rid, said.full_text if isinstance(said, Resume) else said.text)
