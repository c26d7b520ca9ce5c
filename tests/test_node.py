"""The node contract: what a node may yield, how it fails, how it is cancelled, how it is loaded."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path

import pytest

from voice_agent.conversation.node import NodeError, Turn, llm_node, load_node, resolve_node, run_node
from voice_agent.core.config import Config, LLMConfig
from voice_agent.core.events import AgentResponse, AudioChunk, Filler, ResponseDone, TextChunk, ToolCall, ToolResult, Transcript
from voice_agent.core.routes import Bus
from voice_agent.measure.scripted_llm import ScriptedLLM
from voice_agent.stages.llm import LLMError, OpenAIChat, ToolUse
from voice_agent.stages.tools import Toolbox, from_function
from voice_agent.testing import no_leaked_tasks


def turn_for(llm: OpenAIChat | None = None, rid: int = 5, text: str = "hello", toolbox: Toolbox | None = None, **use: object) -> Turn:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]
    return Turn(text, messages, rid, llm, ToolUse(toolbox or Toolbox([]), **use))  # type: ignore[arg-type]


async def collect(node, turn: Turn) -> list[AgentResponse]:
    return [chunk async for chunk in run_node(node, turn)]


async def test_text_pieces_get_the_reply_id_and_end_in_one_response_done() -> None:
    async def node(turn: Turn) -> AsyncIterator[str | AgentResponse]:
        yield "Hello"
        yield ""  # nothing: dropped
        yield TextChunk(0, " there.")  # any id: the harness stamps the reply's
        yield Filler(0, "Hmm.")

    out = await collect(node, turn_for(rid=5))
    assert out == [TextChunk(5, "Hello"), TextChunk(5, " there."), Filler(5, "Hmm."), ResponseDone(5, "Hello there.")]


async def test_an_exception_drops_the_turn_with_what_was_said_and_one_line() -> None:
    async def node(turn: Turn) -> AsyncIterator[str]:
        yield "Let me see. "
        raise RuntimeError("the lookup table is missing")

    *_, done = await collect(node, turn_for())
    assert isinstance(done, ResponseDone)
    assert done.text == "Let me see. "
    assert done.error == f"the node {__name__}:{node.__qualname__} failed: RuntimeError: the lookup table is missing"


async def test_an_llm_error_in_a_node_is_the_llms_own_line() -> None:
    async def node(turn: Turn) -> AsyncIterator[str]:
        raise LLMError("cannot reach the LLM at http://x (is it running? check OPENAI_BASE_URL)")
        yield "never"

    (done,) = await collect(node, turn_for())
    assert done == ResponseDone(5, "", error="cannot reach the LLM at http://x (is it running? check OPENAI_BASE_URL)")


@pytest.mark.parametrize("bad", [42, AudioChunk(5, None, 22050, "x"), ResponseDone(5, "x")])  # type: ignore[arg-type]
async def test_yielding_what_is_the_harnesss_to_make_is_an_error(bad: object) -> None:
    async def node(turn: Turn) -> AsyncIterator[object]:
        yield bad

    (done,) = await collect(node, turn_for())
    assert isinstance(done, ResponseDone) and done.error is not None
    assert f"yielded a {type(bad).__name__}; a node yields str, TextChunk" in done.error


@dataclass(frozen=True)
class Stop:
    pass


@pytest.mark.parametrize("where", ["await", "yield"])
async def test_an_interruption_cancels_the_node_and_its_finally_runs(where: str) -> None:
    """Waiting at an `await` (the node is slow) or at a `yield` (speech downstream is slow)."""
    started, cleaned = asyncio.Event(), []
    release = asyncio.Event()  # never set: whoever waits on it waits until cancelled

    async def node(turn: Turn) -> AsyncIterator[str]:
        try:
            yield "First words. "
            started.set()
            if where == "await":
                await release.wait()
            yield "Never said."
        finally:
            # In the route's own task: cleanup is part of the cancellation, not left to the garbage collector.
            cleaned.append((turn.response_id, asyncio.current_task().get_name()))

    async def slow_downstream(chunk: AgentResponse) -> None:
        if where == "yield" and isinstance(chunk, TextChunk):
            await release.wait()

    seen: list[AgentResponse] = []

    async def respond(t: Transcript) -> AsyncIterator[AgentResponse]:  # as Agent._respond does
        async with aclosing(run_node(node, turn_for(text=t.text))) as chunks:
            async for chunk in chunks:
                seen.append(chunk)
                yield chunk

    async with no_leaked_tasks():
        bus = Bus()
        bus.on(Transcript).interrupt_on(Stop).stream(respond).map(slow_downstream).named("llm")
        async with bus:
            await bus.publish(Transcript("hello", 0, 0))
            if where == "await":
                await started.wait()
            else:
                while not seen:
                    await asyncio.sleep(0)
            await bus.publish(Stop())
            await bus.drain()
    assert cleaned == [(5, "route:llm")]
    assert seen == [TextChunk(5, "First words. ")], "nothing after the cut, and no ResponseDone"


async def test_a_speculative_turn_is_committed_by_the_agent() -> None:
    turn = turn_for()
    assert turn.speculative
    waiter = asyncio.create_task(turn.committed())
    await asyncio.sleep(0)
    assert not waiter.done()
    turn._committed.set()
    await asyncio.wait_for(waiter, 5)
    assert not turn.speculative


async def test_run_tool_with_a_function_says_the_filler_while_it_runs() -> None:
    go = asyncio.Event()

    async def weather(city: str) -> str:
        """The weather in a city."""
        await go.wait()
        return f"sunny in {city}"

    async def node(turn: Turn) -> AsyncIterator[str | AgentResponse]:
        yield "Let me look. "
        async for event in turn.run_tool(weather, city="Paris"):
            if isinstance(event, Filler):
                go.set()  # the tool finishes only once the filler is out: no race with the timer
            yield event
            if isinstance(event, ToolResult):
                yield f"It is {event.content}."

    turn = turn_for(filler="One moment.", filler_after_s=0.0)
    turn._committed.set()
    out = await collect(node, turn)
    kinds = [type(c).__name__ for c in out]
    assert kinds == ["TextChunk", "ToolCall", "Filler", "ToolResult", "TextChunk", "ResponseDone"]
    call, result = out[1], out[3]
    assert isinstance(call, ToolCall) and call.name == "weather" and call.arguments == '{"city": "Paris"}'
    assert isinstance(result, ToolResult) and result.content == "sunny in Paris" and not result.is_error
    assert out[-1] == ResponseDone(5, "Let me look. It is sunny in Paris.")


async def test_run_tool_by_name_uses_the_enabled_tools_and_reports_unknown_ones() -> None:
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    turn = turn_for(toolbox=Toolbox([from_function(add)]))
    turn._committed.set()
    results = [e async for e in turn.run_tool("add", a=2, b=3) if isinstance(e, ToolResult)]
    results += [e async for e in turn.run_tool("subtract", a=2, b=3) if isinstance(e, ToolResult)]
    assert results[0].content == "5" and not results[0].is_error
    assert results[1].is_error and "no tool named 'subtract'" in results[1].content


async def test_llm_node_is_the_configured_llm(llm_server: ScriptedLLM, llm_config: LLMConfig) -> None:
    llm_server.push("Hi there. How are you?")
    chat = OpenAIChat(llm_config)
    try:
        out = await collect(llm_node, turn_for(chat))
    finally:
        await chat.aclose()
    assert out[-1] == ResponseDone(5, "Hi there. How are you?")
    assert llm_server.requests[-1]["messages"][-1] == {"role": "user", "content": "hello"}


# --- loading ---------------------------------------------------------------------


@pytest.fixture
def user_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    pkg = tmp_path / "mynodes"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "nodes.py").write_text(
        "async def echo(turn):\n    yield turn.user_text\n\n"
        "async def not_a_generator(turn):\n    return 'hi'\n\n"
        "class Polite:\n    async def __call__(self, turn):\n        yield 'Please.'\n\npolite = Polite()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "mynodes.nodes"
    for name in [m for m in sys.modules if m.startswith("mynodes")]:
        del sys.modules[name]


def test_a_node_loads_from_the_users_package(user_package: str) -> None:
    assert load_node(f"{user_package}:echo").__name__ == "echo"
    assert load_node(f"{user_package}:polite").__class__.__name__ == "Polite"
    cfg = Config(llm=LLMConfig(node=f"{user_package}:echo"))
    assert resolve_node(None, cfg).__name__ == "echo"
    assert resolve_node(None, Config()) is llm_node


@pytest.mark.parametrize(
    "spec, message",
    [
        ("mynodes.nodes", "node 'mynodes.nodes': expected package.module:function"),
        ("nosuch.mod:f", "node 'nosuch.mod:f': cannot import nosuch.mod (No module named 'nosuch')"),
        ("mynodes.nodes:missing", "node 'mynodes.nodes:missing': mynodes.nodes has no function missing"),
        ("mynodes.nodes:not_a_generator", "node 'mynodes.nodes:not_a_generator' is not an async generator function (async def with yield)"),
    ],
)
def test_a_bad_node_spec_is_one_line(user_package: str, spec: str, message: str) -> None:
    with pytest.raises(NodeError) as err:
        load_node(spec)
    assert str(err.value) == message
