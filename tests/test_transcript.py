"""The transcript file: written as the conversation happens, read back by --resume."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import SPEECH

from voice_agent.app.demo import run_demo
from voice_agent.audio.source import read_audio
from voice_agent.conversation.history import History
from voice_agent.conversation.parts import Parts
from voice_agent.conversation.transcript import (
    TranscriptError,
    TranscriptWriter,
    load,
    replay,
)
from voice_agent.core.config import Config
from voice_agent.measure.scripted_llm import Reply, ScriptedLLM
from voice_agent.stages.llm import OpenAIChat
from voice_agent.stages.stt import Transcriber
from voice_agent.stages.tts import Synthesizer

CFG = Config()


def test_replaying_the_journal_gives_the_history(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    writer = TranscriptWriter(path)
    history = History("s", journal=writer)
    history.add_user("one")
    history.add_assistant("first")
    history.add_user("two")  # this turn fails
    history.drop_last_user()
    history.add_user("three")
    history.add_assistant("a long reply")
    history.replace_last_assistant("a long", interrupted=True)  # what was heard of it
    history.add_user("four")  # in progress when the session ended
    writer.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert all("at" in line for line in lines if "role" in line)
    assert replay(lines) == history.turns
    messages, unanswered = load(path)
    assert messages == history.turns[:-1] and unanswered == 1


def test_a_line_cut_by_a_kill_is_skipped_and_bad_files_are_one_line_errors(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"role": "user", "content": "hi"}\n{"role": "assistant", "content": "hello"}\n{"role": "user", "cont')
    assert load(path) == ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}], 0)
    for text, message in [
        ("not json\n{}\n", "line 1 is not JSON: not a transcript"),
        ('{"a": 1}\n', "line 1 is neither a message nor a correction: not a transcript"),
    ]:
        path.write_text(text)
        with pytest.raises(TranscriptError, match=message):
            load(path)
    with pytest.raises(TranscriptError, match="transcript not found"):
        load(tmp_path / "missing.jsonl")


def test_cli_refuses_a_bad_transcript_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("nope\nnope\n")
    run = subprocess.run([sys.executable, "-m", "voice_agent", "demo", "--resume", str(bad)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and run.stderr.strip() == f"error: {bad} line 1 is not JSON: not a transcript"


@pytest.fixture(scope="module")
def models() -> tuple[Transcriber, Synthesizer]:
    return Transcriber(CFG.stt, CFG.models_dir), Synthesizer(CFG.tts, CFG.models_dir, CFG.audio.output_rate)


async def test_resume_continues_the_conversation(tmp_path: Path, models) -> None:
    path = tmp_path / "talk.jsonl"
    clips = [read_audio(SPEECH / "ps_goforward.wav"), read_audio(SPEECH / "ps_cards_003.wav")]
    async with ScriptedLLM() as server:
        server.when("forward", "Moving forward.")
        server.when("clubs", Reply("Seven of clubs, noted."))
        llm = OpenAIChat(replace(CFG.llm, base_url=server.base_url, api_key="k", model="scripted", backend="openai"))
        parts = Parts(*models, llm=llm)
        await run_demo(replace(CFG, transcript=str(path)), parts, clips[:1], fast=True)
        first = load(path)[0]
        await run_demo(replace(CFG, resume=str(path)), parts, clips[1:], fast=True)
        await llm.aclose()
    assert [m["content"] for m in first][1:] == ["Moving forward."]
    # The resumed session's request carried the earlier turn; the file now holds both.
    sent = server.requests[-1]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"] and sent[2]["content"] == "Moving forward."
    assert [m["content"] for m in load(path)[0] if m["role"] == "assistant"] == ["Moving forward.", "Seven of clubs, noted."]


async def test_dropped_turns_are_summarized_into_the_system_prompt(models) -> None:
    cfg = replace(CFG, llm=replace(CFG.llm, history_turns=2, summarize_history=True))
    names = ["ps_goforward.wav", "ps_cards_003.wav", "ps_cards_001.wav", "ps_cards_004.wav", "ps_cards_002.wav"]
    async with ScriptedLLM("Noted.") as server:
        server.when("assistant:", "The user moved forward and named some cards.")  # only summary requests quote turns
        llm = OpenAIChat(replace(cfg.llm, base_url=server.base_url, api_key="k", model="scripted", backend="openai"))
        result = await run_demo(cfg, Parts(*models, llm=llm), [read_audio(SPEECH / n) for n in names], fast=True)
        await llm.aclose()
    asks = [r["messages"] for r in server.requests if "assistant:" in r["messages"][-1]["content"]]
    assert asks and "forward" in asks[0][-1]["content"].lower(), "the first dropped exchange was summarized"
    answers = [r["messages"] for r in server.requests if "assistant:" not in r["messages"][-1]["content"]]
    assert "Earlier in this conversation (summary): The user moved forward and named some cards." in answers[-1][0]["content"]
    assert sum(m["role"] == "user" for m in answers[-1]) <= 2, "and the turns themselves stay within the budget"
    assert result.agent.history.dropped == []
