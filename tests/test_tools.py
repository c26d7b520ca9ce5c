"""Tools: schemas from functions, argument checks, the built-ins, and tool calls
mid-reply against the loopback LLM server with real speech and real models."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Literal

import pytest
from conftest import SPEECH
from timeline import Seen, converse, finished

from voice_agent.audio.source import Pause, Say, Step, Until, read_audio
from voice_agent.conversation.agent import Agent
from voice_agent.conversation.history import INTERRUPTED_MARK
from voice_agent.core._compat import timeout
from voice_agent.core.config import Config, LLMConfig
from voice_agent.core.events import (
    AgentSpeechSent,
    AudioChunk,
    Interruption,
    ToolCall,
    ToolResult,
)
from voice_agent.core.timeline import WallClock
from voice_agent.measure.scripted_llm import Reply, ScriptedLLM
from voice_agent.stages.builtin_tools import (
    calculate,
    current_time,
    enabled_tools,
    evaluate,
)
from voice_agent.stages.llm import OpenAIChat
from voice_agent.stages.stt import Transcriber
from voice_agent.stages.tools import (
    CallRequest,
    Toolbox,
    ToolError,
    from_function,
    load_tool,
    tool,
    validate_arguments,
)
from voice_agent.stages.tts import Synthesizer

CFG = Config()
Q1 = read_audio(SPEECH / "ps_goforward.wav")
Q2 = read_audio(SPEECH / "ps_cards_003.wav")


# --- schemas and arguments --------------------------------------------------------


def weather(city: str, unit: Literal["C", "F"] = "C", days: int = 1) -> str:
    """Today's weather in a city.

    city: the city's name
    days: how many days ahead
    """
    return f"{city}: sunny, 21 {unit} for {days} day(s)"


def test_a_function_becomes_a_schema() -> None:
    t = from_function(weather)
    assert t.schema() == {
        "type": "function",
        "function": {
            "name": "weather",
            "description": "Today's weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "the city's name"},
                    "unit": {"type": "string", "enum": ["C", "F"]},
                    "days": {"type": "integer", "description": "how many days ahead"},
                },
                "required": ["city"],
                "additionalProperties": False,
            },
        },
    }
    assert t.on_interrupt == "cancel"
    assert from_function(tool("finish")(weather)).on_interrupt == "finish"


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({}, "missing argument(s): city"),
        ({"city": 3}, "'city' must be string, got int"),
        ({"city": "Oslo", "unit": "K"}, "'unit' must be one of ['C', 'F'], got 'K'"),
        ({"city": "Oslo", "days": True}, "'days' must be integer, got bool"),
        ({"city": "Oslo", "shell": "rm -rf /"}, "unknown argument 'shell' (known: city, unit, days)"),
        (["Oslo"], "arguments must be a JSON object"),
    ],
)
def test_bad_arguments_are_refused_before_the_call(arguments: object, error: str) -> None:
    with pytest.raises(ValueError) as info:
        validate_arguments(from_function(weather).parameters, arguments)
    assert str(info.value) == error


async def test_a_bad_call_gets_an_error_result_not_a_crash() -> None:
    def boom() -> str:
        """Always fails."""
        raise RuntimeError("disk on fire")

    async def slow() -> str:
        """Takes too long."""
        await asyncio.sleep(5)
        return "late"

    box = Toolbox([from_function(weather), from_function(boom), from_function(slow)], timeout_s=0.2)
    ok = await box.call(CallRequest("1", "weather", '{"city": "Oslo"}'))
    assert (ok.content, ok.is_error) == ("Oslo: sunny, 21 C for 1 day(s)", False)
    for request, message in [
        (CallRequest("2", "weather", "{not json"), "error: the arguments are not valid JSON"),
        (CallRequest("3", "weather", '{"city": 1}'), "error: 'city' must be string, got int"),
        (CallRequest("4", "shell", "{}"), "error: no tool named 'shell' (available: weather, boom, slow)"),
        (CallRequest("5", "boom", "{}"), "error: boom failed: RuntimeError: disk on fire"),
        (CallRequest("6", "slow", "{}"), "error: slow took longer than 0.2 s"),
    ]:
        outcome = await box.call(request)
        assert outcome.is_error and outcome.content == message


# --- the built-ins ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "result"),
    [("17 * 23", "391"), ("(2 + 3) ** 2 / 5", "5"), ("10 / 4", "2.5"), ("-7 // 2", "-4"), ("2 ^ 10", "1024"),
     ("0.1 + 0.2", "0.3"), ("1 / 0", "error: division by zero"), ("12 × 3", "36")],
)
def test_calculate(expression: str, result: str) -> None:
    assert calculate(expression) == result


@pytest.mark.parametrize(
    "expression",
    ["__import__('os').system('true')", "open('/etc/passwd')", "x + 1", "(1).__class__", "[1, 2]", "9 ** 9 ** 9", "'a' * 3", "True + 1", "1" * 300],
)
def test_calculate_refuses_anything_but_arithmetic(expression: str) -> None:
    assert calculate(expression).startswith("error:")
    with pytest.raises(ValueError):
        evaluate(expression)


def test_current_time() -> None:
    assert "UTC+0900" in current_time("Asia/Tokyo") and "JST" in current_time("Asia/Tokyo")
    assert current_time("Mars/Olympus") == "error: unknown time zone 'Mars/Olympus' (use a name like Europe/Paris)"
    assert "UTC" in current_time()


def test_the_allowlist() -> None:
    assert [t.name for t in enabled_tools(["time", "calculate", "test_tools:weather"])] == ["time", "calculate", "weather"]
    for spec, message in [
        ("shell", "unknown tool 'shell' (built-in: time, calculate; or package.module:function)"),
        ("nosuchmodule:f", "tool 'nosuchmodule:f': cannot import nosuchmodule (No module named 'nosuchmodule')"),
        ("json:nothing", "tool 'json:nothing': json has no function nothing"),
        ("json:", "tool 'json:': expected package.module:function"),
    ]:
        with pytest.raises(ToolError) as info:
            enabled_tools([spec])
        assert str(info.value) == message
    assert load_tool("test_tools:weather").parameters["required"] == ["city"]


def test_cli_reports_a_bad_tool_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from voice_agent.app.cli import main

    assert main(["demo", "--tools", "nosuchmodule:f"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: tool 'nosuchmodule:f': cannot import nosuchmodule (No module named 'nosuchmodule')"


# --- tool calls streamed by a real HTTP server ----------------------------------------


async def test_streamed_tool_call_deltas_are_assembled(llm_server: ScriptedLLM, llm_config: LLMConfig) -> None:
    llm_server.push(Reply("Let me check.", tool_calls=[{"name": "calculate", "arguments": {"expression": "17 * 23"}}]))
    llm = OpenAIChat(llm_config)
    tools = [from_function(calculate).schema()]
    out = [piece async for piece in llm.stream([{"role": "user", "content": "17 times 23?"}], tools)]
    await llm.aclose()
    assert "".join(p for p in out if isinstance(p, str)) == "Let me check."
    assert out[-1] == CallRequest("call_0", "calculate", '{"expression": "17 * 23"}')
    assert llm_server.requests[0]["tools"] == tools


# --- mid-reply, on the timeline ------------------------------------------------------------


@pytest.fixture(scope="module")
def models() -> tuple[Transcriber, Synthesizer]:
    tts = Synthesizer(CFG.tts, CFG.models_dir, CFG.audio.output_rate)
    tts.warm_up([CFG.tools.filler])
    return Transcriber(CFG.stt, CFG.models_dir), tts


def spoken(seen: Seen) -> list[str]:
    return [e.text for e in seen.of(AgentSpeechSent)]


LONG_ANSWER = "It took a long search through many old records to find it. Each record was checked twice. Nothing was missed."
CALL = Reply("Let me work that out.", tool_calls=[{"name": "lookup", "arguments": {"query": "forward"}}])
AFTER = "The answer is {result}."


async def ask_with_tool(
    models: tuple[Transcriber, Synthesizer], lookup: Callable[..., Awaitable[str]], result: str, on_seen: Callable[[Seen], None] | None = None
) -> tuple[Agent, Seen, ScriptedLLM]:
    """One question; the LLM says a sentence, calls `lookup`, then says "The answer is {result}."."""
    async with ScriptedLLM() as server:
        server.when("forward", CALL)
        server.after_tools(AFTER)

        def script(agent: Agent, seen: Seen, clock: WallClock) -> list[Step]:
            if on_seen is not None:
                on_seen(seen)
            return [Pause(0.3), Say(Q1), finished(agent, seen, f"Let me work that out.The answer is {result}.")]

        agent, seen, _ = await converse(server, models, script, CFG, Toolbox([from_function(lookup)]))
    return agent, seen, server


async def test_text_before_a_tool_call_is_spoken_before_the_tool_runs(models) -> None:
    seen_box: list[Seen] = []

    async def lookup(query: str) -> str:
        """Look something up."""
        # Wait until the words before the call have gone to the speaker; if the
        # agent held them back until the tool returned, this would time out.
        seen = seen_box[0]
        async with timeout(10):
            while not any("work that out" in t for t in spoken(seen)):
                await asyncio.sleep(0.01)
        return "forty-two"

    agent, seen, server = await ask_with_tool(models, lookup, "forty-two", seen_box.append)
    (call,) = seen.of(ToolCall)
    (result,) = seen.of(ToolResult)
    assert (call.name, json.loads(call.arguments), result.content, result.is_error) == ("lookup", {"query": "forward"}, "forty-two", False)
    # The result reached the LLM, and the answer built on it was spoken after the first words.
    assert server.requests[1]["messages"][-1] == {"role": "tool", "tool_call_id": "call_0", "content": "forty-two"}
    assert spoken(seen) == ["Let me work that out.", "The answer is forty-two."]
    assert [m["role"] for m in agent.history.turns] == ["user", "assistant", "tool", "assistant"]
    assert agent.history.turns[1]["content"] == "Let me work that out."
    assert agent.history.turns[3]["content"] == "The answer is forty-two."


async def test_a_slow_tool_gets_the_filler_from_the_cache(models) -> None:
    async def lookup(query: str) -> str:
        """Look something up, slowly."""
        await asyncio.sleep(1.5)
        return "seven"

    agent, seen, _ = await ask_with_tool(models, lookup, "seven")
    assert spoken(seen) == ["Let me work that out.", "One moment.", "The answer is seven."]
    filler = next(e for e in seen.of(AudioChunk) if e.text == "One moment.")
    assert filler.cached, "the filler was synthesized at start-up"
    assert "One moment" not in str(agent.history.turns), "the filler is not part of the reply"


@pytest.mark.parametrize("on_interrupt", ["cancel", "finish"])
async def test_an_interrupted_tool_call_behaves_as_its_flag_says(models, on_interrupt: Literal["cancel", "finish"]) -> None:
    ran: dict[str, bool] = {"started": False, "cancelled": False, "finished": False}

    @tool(on_interrupt)
    async def lookup(query: str) -> str:
        """Look something up, slowly."""
        ran["started"] = True
        try:
            await asyncio.sleep(2.5)
        except asyncio.CancelledError:
            ran["cancelled"] = True
            raise
        ran["finished"] = True
        return "the vault code is 7"

    async with ScriptedLLM() as server:
        server.when("forward", CALL)
        server.when("clubs", "Noted.")
        server.after_tools(AFTER)

        def script(agent: Agent, seen: Seen, clock: WallClock) -> list[Step]:
            def filler_playing() -> bool:  # and the reply audible long enough that Q2 cuts it, not continues Q1
                first = agent.reply.first_audible if agent.reply else None
                late = first is not None and clock.now() - first > CFG.bargein.continue_ms * 16
                return "One moment." in spoken(seen) and late

            return [Pause(0.3), Say(Q1), Until(filler_playing, hold_s=0.2), Say(Q2), finished(agent, seen, "Noted."),
                    Until(lambda: ran["finished"] or ran["cancelled"], max_s=6)]

        agent, seen, sink = await converse(server, models, script, CFG, Toolbox([from_function(lookup)]))
    assert seen.count(Interruption) == 1 and ran["started"]
    assert seen.of(ToolResult) == [], "the interrupted call's result was not used in the cut reply"
    last_request = server.requests[-1]["messages"]
    tool_messages = [m for m in last_request if m["role"] == "tool"]
    if on_interrupt == "cancel":
        assert ran["cancelled"] and not ran["finished"]
        assert tool_messages == []
    else:
        assert ran["finished"] and not ran["cancelled"]
        # It finished in the background; the next turn's request carries its result.
        await_next = server.requests[-1]
        assert tool_messages == [{"role": "tool", "tool_call_id": "call_0", "content": "the vault code is 7"}], await_next
        assert last_request[-1]["role"] == "user" and "clubs" in last_request[-1]["content"].lower()


async def test_a_reply_cut_after_its_tool_round_keeps_the_round_and_only_the_heard_answer(models) -> None:
    async def lookup(query: str) -> str:
        """Look something up."""
        return "found"

    answer = "The answer is found. " + LONG_ANSWER
    async with ScriptedLLM() as server:
        server.when("forward", CALL)
        server.when("clubs", "Noted.")
        server.after_tools(answer)

        def script(agent: Agent, seen: Seen, clock: WallClock) -> list[Step]:
            answering = lambda: any("answer is found" in t for t in spoken(seen))  # noqa: E731
            return [Pause(0.3), Say(Q1), Until(answering, hold_s=2.5), Say(Q2), finished(agent, seen, "Noted.")]

        agent, seen, _ = await converse(server, models, script, CFG, Toolbox([from_function(lookup)]))
    assert seen.count(Interruption) == 1
    roles = [m["role"] for m in agent.history.turns]
    assert roles == ["user", "assistant", "tool", "assistant", "user", "assistant"]
    assert agent.history.turns[1]["content"] == "Let me work that out."
    cut = agent.history.turns[3]["content"]
    heard = cut.removesuffix(INTERRUPTED_MARK)
    assert cut.endswith(INTERRUPTED_MARK) and heard and answer.startswith(heard), "only what was heard after the round"
