"""The public API: `import voice_agent` gives a small, documented set of names, pinned here."""

from __future__ import annotations

import inspect
from pathlib import Path

import voice_agent

PUBLIC = {
    # run an agent, or embed one
    "Agent", "Config", "History", "Vad", "build_parts", "close_parts", "load_config",
    # write a node, and tools
    "Node", "Turn", "tool",
    # what a node yields, and what a session publishes
    "AgentResponse", "AudioChunk", "Filler", "Interruption", "ResponseDone", "TextChunk", "ToolResult", "Transcript",
    # the edges
    "SAMPLE_RATE", "Placed", "Sink", "Source", "TimelineSink", "read_audio",
}  # fmt: skip


def test_all_is_pinned_and_every_name_exists() -> None:
    assert set(voice_agent.__all__) == PUBLIC, "a change to the public API is a decision: update PUBLIC with it"
    assert len(voice_agent.__all__) == len(PUBLIC), "no name twice"
    for name in PUBLIC:
        assert getattr(voice_agent, name) is not None


def test_every_public_class_and_function_says_what_it_is() -> None:
    for name in PUBLIC:
        obj = getattr(voice_agent, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            doc = inspect.getdoc(obj) or ""
            generated = doc.startswith(f"{obj.__name__}(")  # a dataclass's signature is not a description
            assert doc and not generated, f"voice_agent.{name} needs a docstring"


def test_the_readme_uses_the_public_names() -> None:
    """The README's node example imports only what the package exports."""
    text = (Path(voice_agent.__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert "@voice_agent.tool(\"finish\")" in text
    assert "voice_agent.stages.tools.tool" not in text
    for line in text.splitlines():
        if line.startswith("from voice_agent import "):
            names = [n.strip() for n in line.removeprefix("from voice_agent import ").split(",")]
            assert set(names) <= PUBLIC, line


async def test_the_readme_node_example_runs(llm_server, llm_config) -> None:
    """The example in "Your own node", run through the harness against the loopback LLM."""
    from voice_agent.conversation.node import run_node
    from voice_agent.stages.llm import OpenAIChat, ToolUse
    from voice_agent.stages.tools import Toolbox

    text = (Path(voice_agent.__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = text.split("## Your own node", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own README's example
    node = namespace["polite"]
    llm_server.push("Hello to you.")
    chat = OpenAIChat(llm_config)
    try:
        replies = []
        for words in ("How is the weather?", "Hi there"):
            turn = voice_agent.Turn(words, [{"role": "user", "content": words}], 1, chat, ToolUse(Toolbox([])))
            replies.append([c async for c in run_node(node, turn)][-1])
    finally:
        await chat.aclose()
    assert [r.text for r in replies] == ["I can't see outside, but I hope it's sunny.", "Hello to you. Anything else?"]
    assert len(llm_server.requests) == 1, "the weather was answered without the LLM"
