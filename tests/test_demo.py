"""The headless demo end to end: real models, real speech, a real HTTP LLM server."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from conftest import SPEECH

from voice_agent.app.demo import run_demo
from voice_agent.audio.source import AudioInputError, read_audio
from voice_agent.conversation.agent import Parts
from voice_agent.core.config import Config, LLMConfig
from voice_agent.measure.scripted_llm import Reply, ScriptedLLM
from voice_agent.measure.wer import normalize
from voice_agent.stages.llm import OpenAIChat
from voice_agent.stages.stt import Transcriber
from voice_agent.stages.tts import Synthesizer

CFG = Config()



def parts_for(server: ScriptedLLM, stt: Transcriber, tts: Synthesizer) -> Parts:
    llm = OpenAIChat(LLMConfig(base_url=server.base_url, api_key="k", model="scripted", backend="openai"))
    return Parts(stt=stt, tts=tts, llm=llm)


def clips_of(paths: list[Path]) -> list[np.ndarray]:
    return [read_audio(p) for p in paths]


def agent_words(path: Path, stt: Transcriber) -> list[str]:
    """What the agent said in a demo output, heard back through the recogniser."""
    audio, rate = sf.read(str(path), dtype="float32")
    assert audio.ndim == 2 and audio.shape[1] == 2, "stereo: user left, agent right"
    agent = soxr.resample(audio[:, 1], rate, 16000).astype(np.float32)
    return normalize(stt.transcribe_sync(agent).text)


def assert_spoken(text: str, heard: list[str], share: float = 0.7) -> None:
    """Most of the words the agent meant to say are recognised in its channel."""
    said = normalize(text)
    found = [w for w in said if w in heard]
    assert len(found) >= share * len(said), f"said {' '.join(said)!r}, heard {' '.join(heard)!r}"


async def test_demo_two_turns_with_loopback_llm(tmp_path: Path, stt: Transcriber, tts: Synthesizer) -> None:
    async with ScriptedLLM() as server:
        # By what was asked: a speculative request at a pause inside "seven ... of clubs" must not shift the replies.
        server.when("forward", "Moving forward ten meters now.")
        server.when("clubs", "The seven of clubs is a good card.")
        parts = parts_for(server, stt, tts)
        inputs = [SPEECH / "ps_goforward.wav", SPEECH / "ps_cards_003.wav"]
        result = await run_demo(CFG, parts, clips_of(inputs), tmp_path / "out.wav", tmp_path / "report.json", fast=True)
        await parts.llm.aclose()
    report = json.loads((tmp_path / "report.json").read_text())
    assert report == result.report
    turns = report["turns"]
    assert [t["agent_text"] for t in turns] == ["Moving forward ten meters now.", "The seven of clubs is a good card."]
    assert "forward" in turns[0]["user_text"].lower() and "clubs" in turns[1]["user_text"].lower()
    for t in turns:
        # On the fast timeline processing takes no time: the gap is the end-of-turn wait.
        assert t["response_latency_ms"] == pytest.approx(t["stages"]["vad_end_of_turn_ms"], abs=25)
        assert set(t["stages"]) == {"vad_end_of_turn_ms", "stt_ms", "llm_first_token_ms", "first_sentence_ms", "tts_first_audio_ms"}
    # The last request carried the first exchange: history works across turns.
    assert [m["role"] for m in server.requests[-1]["messages"]] == ["system", "user", "assistant", "user"]
    assert_spoken(turns[0]["agent_text"] + " " + turns[1]["agent_text"], agent_words(tmp_path / "out.wav", stt))


async def test_demo_real_time_latency_is_measured_on_the_timeline(tmp_path: Path, stt: Transcriber, tts: Synthesizer) -> None:
    async with ScriptedLLM(ttft_ms=100) as server:
        server.push("Ten of clubs, got it.")
        parts = parts_for(server, stt, tts)
        result = await run_demo(CFG, parts, clips_of([SPEECH / "ps_cards_001.wav"]), tmp_path / "o.wav", fast=False)
        await parts.llm.aclose()
    (turn,) = result.report["turns"]
    stages, tl = turn["stages"], turn["timeline_ms"]
    # The stages happen in order on the timeline, and the latency is where the first audio plays.
    order = ["stt_start", "transcript", "first_token", "first_sentence", "first_audio", "first_audio_plays"]
    assert [tl[k] for k in order] == sorted(tl[k] for k in order)
    assert turn["response_latency_ms"] == tl["first_audio_plays"] >= tl["turn_decided"]
    assert stages["llm_first_token_ms"] >= 100  # the server's scripted time to first token
    print(f"\nreal-time turn: {turn['response_latency_ms']} ms, stages {stages}")


async def test_llm_failure_drops_the_turn_and_the_next_one_works(tmp_path: Path, stt: Transcriber, tts: Synthesizer) -> None:
    async with ScriptedLLM() as server:
        server.when("forward", Reply(fault="500"))  # a 5xx is retried once, and fails again
        server.when("clubs", "Second time lucky.")
        parts = parts_for(server, stt, tts)
        inputs = [SPEECH / "ps_goforward.wav", SPEECH / "ps_cards_003.wav"]
        result = await run_demo(CFG, parts, clips_of(inputs), None, None, fast=True)
        await parts.llm.aclose()
    first, second = result.report["turns"]
    assert "HTTP 500" in first["error"] and first["response_latency_ms"] is not None, "the apology was heard"
    assert second["agent_text"] == "Second time lucky." and second["error"] is None
    roles = [m["role"] for m in result.agent.history.messages()]
    assert roles == ["system", "user", "assistant"]  # the failed turn left nothing behind


async def test_silence_only_input_says_nothing(tmp_path: Path, stt: Transcriber, tts: Synthesizer) -> None:
    quiet = tmp_path / "quiet.wav"
    sf.write(str(quiet), np.random.default_rng(0).normal(0, 0.001, 16000 * 3).astype(np.float32), 16000)
    async with ScriptedLLM() as server:
        parts = parts_for(server, stt, tts)
        result = await run_demo(CFG, parts, clips_of([quiet]), tmp_path / "o.wav", tmp_path / "r.json", fast=True)
        await parts.llm.aclose()
    assert result.report["turns"] == [] and "no user turn" in result.report["note"]
    assert not server.requests
    out, _ = sf.read(str(tmp_path / "o.wav"))
    assert np.all(out[:, 1] == 0), "the agent channel is silent"


def test_input_formats_are_converted(tmp_path: Path) -> None:
    speech = read_audio(SPEECH / "ps_cards_003.wav")
    eight_bit = tmp_path / "u8.wav"
    sf.write(str(eight_bit), speech, 16000, subtype="PCM_U8")
    stereo48 = tmp_path / "s48.wav"
    up = soxr.resample(speech, 16000, 48000)
    sf.write(str(stereo48), np.stack([up, up * 0.5], axis=1), 48000, subtype="PCM_24")
    for path in (eight_bit, stereo48):
        audio = read_audio(path)
        assert audio.dtype == np.float32 and audio.ndim == 1
        assert abs(len(audio) - len(speech)) <= 2
        assert np.corrcoef(audio[: len(speech) - 2], speech[: len(speech) - 2])[0, 1] > 0.9


def test_bad_files_are_one_line_errors(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt garbage that is not a wav file" * 3)
    empty = tmp_path / "empty.wav"
    sf.write(str(empty), np.zeros(0, np.float32), 16000)
    zero_bytes = tmp_path / "zero.wav"
    zero_bytes.write_bytes(b"")
    for path, message in [
        (tmp_path / "missing.wav", "not found"),
        (corrupt, "not a supported audio file"),
        (empty, "holds no audio"),
        (zero_bytes, "not a supported audio file"),
    ]:
        with pytest.raises(AudioInputError, match=message) as info:
            read_audio(path)
        assert "\n" not in str(info.value)


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voice_agent", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize("bad", ["missing", "corrupt", "config"])
def test_cli_user_mistakes_exit_nonzero_without_traceback(tmp_path: Path, bad: str) -> None:
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFFnonsense")
    conf = tmp_path / "bad.toml"
    conf.write_text("[llm]\nmodle = 'typo'\n")
    args = {
        "missing": ["demo", "--input", str(tmp_path / "nope.wav")],
        "corrupt": ["demo", "--input", str(corrupt)],
        "config": ["demo", "--config", str(conf)],
    }[bad]
    proc = _cli(*args)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("error:") and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_readme_demo_with_the_embedded_llm(tmp_path: Path, stt: Transcriber) -> None:
    """The README's demo command on a fresh setup: shipped utterance, embedded LLM, spoken answer."""
    out, report = tmp_path / "demo.wav", tmp_path / "demo.json"
    env = {"OPENAI_BASE_URL": "", "OPENAI_API_KEY": ""}
    proc = _cli("demo", "--output", str(out), "--report", str(report), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "embedded demo LLM" in proc.stderr
    (turn,) = json.loads(report.read_text())["turns"]
    assert "forward" in turn["user_text"].lower()
    assert turn["agent_text"].strip() and turn["error"] is None
    assert turn["response_latency_ms"] > 0
    assert_spoken(turn["agent_text"], agent_words(out, stt), share=0.5)


async def test_greeting_comes_first_from_the_cache_and_repeats_hit_it(stt: Transcriber, tts: Synthesizer) -> None:
    from dataclasses import replace

    from voice_agent.conversation.parts import stock_phrases
    from voice_agent.core.events import AgentSpeechSent, AudioChunk

    cfg = replace(CFG, greeting="Hi, I am listening.")
    tts.warm_up(stock_phrases(cfg))  # what build_parts does at start-up
    events: list[object] = []
    async with ScriptedLLM("Sure.") as server:
        parts = parts_for(server, stt, tts)
        inputs = clips_of([SPEECH / "ps_goforward.wav", SPEECH / "ps_cards_003.wav", SPEECH / "ps_cards_001.wav"])
        result = await run_demo(cfg, parts, inputs, fast=True, tap=events.append)
        await parts.llm.aclose()
    sent = [e for e in events if isinstance(e, AgentSpeechSent)]
    audio = [e for e in events if isinstance(e, AudioChunk)]
    assert sent[0].text == "Hi, I am listening." and sent[0].position < 1600, "spoken first, at the start"
    assert audio[0].cached, "the greeting was synthesized at start-up"
    # The LLM knows it greeted; each "Sure." after the first comes from the cache.
    assert server.requests[0]["messages"][1] == {"role": "assistant", "content": "Hi, I am listening."}
    assert [a.text for a in audio[1:]] == ["Sure."] * (len(audio) - 1) and len(audio) >= 4
    assert [a.cached for a in audio[1:]] == [False] + [True] * (len(audio) - 2)
    hits = len(audio) - 1  # the greeting and every "Sure." but the first
    assert result.report["tts_cache"] == {"hits": hits, "misses": 1, "hit_rate": round(hits / len(audio), 3)}
    assert sum(t["tts_cache"]["misses"] for t in result.report["turns"]) == 1


async def test_fast_demo_runs_a_tool_call_to_the_end(tmp_path: Path, stt: Transcriber, tts: Synthesizer) -> None:
    """Fast mode settles after every frame; a speculative reply whose tool waits for the turn's
    commit must not hold that up (it did: the demo hung)."""
    from voice_agent.stages.builtin_tools import enabled_tools
    from voice_agent.stages.tools import Toolbox

    async with ScriptedLLM() as server:
        server.when("forward", Reply(text="Let me check.", tool_calls=[{"name": "calculate", "arguments": {"expression": "6*7"}}]))
        server.after_tools("The answer is {result}.")
        parts = parts_for(server, stt, tts)
        parts.toolbox = Toolbox(enabled_tools(["calculate"]), CFG.tools.timeout_s)
        result = await asyncio.wait_for(run_demo(CFG, parts, clips_of([SPEECH / "ps_goforward.wav"]), fast=True), 120)
        await parts.llm.aclose()
    (turn,) = result.report["turns"]
    assert turn["agent_text"] == "Let me check. The answer is 42."
    assert [m["role"] for m in result.agent.history.turns] == ["user", "assistant", "tool", "assistant"]
