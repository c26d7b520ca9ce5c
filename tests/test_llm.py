"""The LLM node against a real OpenAI-compatible server on loopback."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace

import pytest
from conftest import free_port

from voice_agent.conversation.history import INTERRUPTED_MARK, History, estimate_tokens
from voice_agent.core.config import LLMConfig
from voice_agent.core.events import ResponseDone, TextChunk, Transcript
from voice_agent.core.routes import Bus
from voice_agent.measure.scripted_llm import Reply, ScriptedLLM
from voice_agent.conversation.node import Turn, llm_node, run_node
from voice_agent.stages.llm import OpenAIChat, ToolUse, reply
from voice_agent.stages.tools import Toolbox
from voice_agent.testing import no_leaked_tasks


async def answer(chat: OpenAIChat, response_id: int = 7, messages=None) -> tuple[list[str], ResponseDone]:
    """The built-in LLM node's reply through the node harness, as the agent runs it."""
    turn = Turn("hi", messages or [{"role": "user", "content": "hi"}], response_id, chat, ToolUse(Toolbox([])))
    texts: list[str] = []
    done: ResponseDone | None = None
    async for chunk in run_node(llm_node, turn):
        if isinstance(chunk, TextChunk):
            texts.append(chunk.text)
        else:
            done = chunk
    assert isinstance(done, ResponseDone) and done.response_id == response_id
    return texts, done


async def run_reply(cfg: LLMConfig, messages=None) -> tuple[list[str], ResponseDone]:
    chat = OpenAIChat(cfg)
    try:
        return await answer(chat, messages=messages)
    finally:
        await chat.aclose()


async def test_streams_text_chunks_in_order(llm_server: ScriptedLLM, llm_config: LLMConfig) -> None:
    llm_server.push("The sky is blue. It scatters light.")
    texts, done = await run_reply(llm_config)
    assert len(texts) == 7  # one chunk per word: it really streamed
    assert "".join(texts) == "The sky is blue. It scatters light."
    assert done.error is None and done.text == "The sky is blue. It scatters light."


async def test_history_is_sent_and_bounded(llm_server: ScriptedLLM, llm_config: LLMConfig) -> None:
    history = History(system_prompt="Be brief.", max_turns=3)
    for i in range(5):
        llm_server.push(f"Answer {i}.")
        history.add_user(f"Question {i}?")
        _, done = await run_reply(llm_config, history.messages())
        history.add_assistant(done.text)
    sent = llm_server.requests[-1]["messages"]
    assert sent[0] == {"role": "system", "content": "Be brief."}
    assert [m["content"] for m in sent[1:]] == ["Question 2?", "Answer 2.", "Question 3?", "Answer 3.", "Question 4?"]
    assert [m["content"] for m in history.turns][-2:] == ["Question 4?", "Answer 4."]
    assert sum(m["role"] == "user" for m in history.turns) == 3


def test_history_token_budget_keeps_the_system_prompt_and_whole_recent_exchanges() -> None:
    history = History(system_prompt="s" * 40, max_turns=100, max_tokens=100)
    for i in range(50):
        history.add_user(f"question {i} " + "q" * 20)
        history.add_assistant(f"answer {i} " + "a" * 20, interrupted=(i == 49))
        if i % 7 == 3:  # a tool round inside the exchange
            history.add({"role": "assistant", "content": None, "tool_calls": [{"id": "c", "function": {"name": "t", "arguments": "{}"}}]})
            history.add({"role": "tool", "tool_call_id": "c", "content": "r" * 30})
        assert history.tokens <= 100
        assert history.tokens == estimate_tokens({"content": "s" * 40}) + sum(estimate_tokens(m) for m in history.turns)
    sent = history.messages()
    assert sent[0] == {"role": "system", "content": "s" * 40}
    assert [m["content"].split()[1] for m in sent[1:] if m["role"] == "user"] == ["47", "48", "49"]
    assert sent[-1]["content"].endswith(INTERRUPTED_MARK) and sent[-2]["content"].startswith("question 49")


@pytest.mark.parametrize(
    "fault, expect",
    [
        ("500", "HTTP 500"),
        ("401", "rejected the API key"),
        ("429", "rate limiting"),
        ("hang", "did not answer within"),
        ("drop", "ended before the reply was complete"),
        ("garbage", "malformed stream"),
    ],
)
async def test_each_fault_ends_the_turn_with_a_clear_error(
    llm_server: ScriptedLLM, llm_config: LLMConfig, fault: str, expect: str, caplog: pytest.LogCaptureFixture
) -> None:
    failing = Reply(text="one two three four five six.", fault=fault, retry_after="0.2")
    retried = fault in ("500", "429")  # tried twice before the turn fails
    llm_server.push(*[failing] * (2 if retried else 1), "Back again.")
    cfg = replace(llm_config, first_token_timeout_s=0.5)
    with caplog.at_level(logging.ERROR):
        texts, done = await run_reply(cfg)
    assert done.error is not None and expect in done.error
    assert "\n" not in done.error and "sk-test-secret" not in done.error
    assert any(expect in r.getMessage() for r in caplog.records)
    # The session goes on: the next turn works.
    texts, done = await run_reply(cfg)
    assert done.error is None and "".join(texts) == "Back again."


async def test_a_5xx_is_retried_once_before_anything_is_said(llm_server: ScriptedLLM, llm_config: LLMConfig) -> None:
    llm_server.push(Reply(fault="500"), "Fine now.")
    texts, done = await run_reply(llm_config)
    assert done.error is None and "".join(texts) == "Fine now." and len(llm_server.requests) == 2


async def test_a_stream_that_breaks_after_words_were_said_is_not_retried(llm_server: ScriptedLLM, llm_config: LLMConfig) -> None:
    llm_server.push(Reply("one two three four five.", fault="drop", drop_after=2), "Not asked for.")
    texts, done = await run_reply(llm_config)
    assert done.error is not None and "".join(texts) == "one two" and len(llm_server.requests) == 1


async def test_a_429_waits_as_long_as_retry_after_says(llm_server: ScriptedLLM, llm_config: LLMConfig) -> None:
    llm_server.push(Reply(fault="429", retry_after="1.5"), "After the wait.")
    texts, done = await run_reply(llm_config)
    assert done.error is None and "".join(texts) == "After the wait."
    first, second = llm_server.request_times
    assert second - first >= 1.5, "the retry respected Retry-After"


async def test_a_long_retry_after_fails_the_turn_and_the_next_call_backs_off(llm_server: ScriptedLLM, llm_config: LLMConfig) -> None:
    llm_server.push(Reply(fault="429", retry_after="6"), "Later.")
    chat = OpenAIChat(llm_config)
    try:
        _, first = await answer(chat, 1)
        assert "HTTP 429" in (first.error or "")
        assert chat._cooldown_until - time.monotonic() > 5, "the next call will wait for the rate limit"
        chat._cooldown_until = time.monotonic() + 0.3  # (not 6 s in a test)
        _, second = await answer(chat, 2)
    finally:
        await chat.aclose()
    assert second.error is None
    assert llm_server.request_times[1] - llm_server.request_times[0] >= 0.3


async def test_a_rejected_key_is_explained_once(llm_server: ScriptedLLM, llm_config: LLMConfig) -> None:
    llm_server.push(Reply(fault="401"), Reply(fault="401"))
    chat = OpenAIChat(llm_config)
    try:
        errors = [(await answer(chat, i))[1].error for i in (1, 2)]
    finally:
        await chat.aclose()
    assert errors[0] == f"the LLM at {llm_server.base_url} rejected the API key (HTTP 401): set a valid OPENAI_API_KEY"
    assert errors[1] == f"the LLM at {llm_server.base_url} still rejects the API key"


async def test_dns_failure_is_one_clear_line() -> None:
    cfg = LLMConfig(base_url="http://no-such-host.invalid/v1", api_key="x", backend="openai")
    _, done = await run_reply(cfg)
    assert done.error == "cannot reach the LLM at http://no-such-host.invalid/v1 (is it running? check OPENAI_BASE_URL)"


async def test_connection_refused_is_one_clear_line() -> None:
    cfg = LLMConfig(base_url=f"http://127.0.0.1:{free_port()}/v1", api_key="x", backend="openai")
    _, done = await run_reply(cfg)
    assert done.error is not None and "cannot reach the LLM" in done.error


async def test_stalled_stream_hits_the_inter_token_timeout(llm_server: ScriptedLLM, llm_config: LLMConfig) -> None:
    llm_server.tokens_per_s = 2  # 500 ms between tokens
    llm_server.push("slow words arrive here.")
    _, done = await run_reply(replace(llm_config, inter_token_timeout_s=0.2))
    assert done.error is not None and "stalled" in done.error


async def test_interrupted_route_closes_the_http_stream(llm_server: ScriptedLLM, llm_config: LLMConfig) -> None:
    """Interrupting mid-stream stops within one chunk and the server sees the connection end."""
    llm_server.tokens_per_s = 50
    llm_server.push(" ".join(f"word{i}" for i in range(200)))
    chat = OpenAIChat(llm_config)
    received: list[str] = []
    three = asyncio.Event()

    @_dataclass_event
    class StopIt:
        pass

    async def node(t: Transcript):
        async for chunk in reply(chat, [{"role": "user", "content": t.text}], response_id=1):
            yield chunk

    def sink(chunk):
        if isinstance(chunk, TextChunk):
            received.append(chunk.text)
            if len(received) == 3:
                three.set()

    async with no_leaked_tasks():
        bus = Bus()
        bus.on(Transcript).interrupt_on(StopIt).stream(node).map(sink)
        async with bus:
            await bus.publish(Transcript("go", 0, 0))
            await three.wait()
            await bus.publish(StopIt())
            count_at_interrupt = len(received)
            assert await asyncio.to_thread(llm_server.stream_closed.wait, 5)
            await bus.drain()
        await chat.aclose()
    assert len(received) <= count_at_interrupt + 1
    assert len(llm_server.disconnects) == 1
    assert llm_server.disconnects[0].tokens_sent < 200
    assert llm_server.completed == 0


def _dataclass_event(cls):
    from dataclasses import dataclass

    return dataclass(frozen=True)(cls)
