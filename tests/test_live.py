"""Live conversation in a virtual room: real PulseAudio devices, `voice-agent` as a user runs it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import SPEECH
from virtual_room import AgentProcess, VirtualRoom, volume_percent

from voice_agent.conversation.transcript import load
from voice_agent.core.config import STTConfig
from voice_agent.measure.scripted_llm import Reply, ScriptedLLM
from voice_agent.measure.wer import normalize
from voice_agent.stages.stt import Transcriber

REPLIES = [
    "Moving forward ten meters now.",
    "The seven of clubs is a lovely card.",
    "Yes, those days can feel very long.",
]
LONG = (
    "The old lighthouse stood on the rocks for two hundred years. Sailors trusted its light on every "
    "stormy night. Its keeper climbed the stairs each evening, and nobody remembers his name."
)


@pytest.fixture
def room() -> Iterator[VirtualRoom]:
    room = VirtualRoom().start()
    try:
        yield room
    finally:
        room.stop()


async def start_listening(room: VirtualRoom, server: ScriptedLLM, *args: str) -> tuple[AgentProcess, int]:
    """`voice-agent` in the room against the scripted LLM, once its microphone is live."""
    env = {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "k"}
    agent = await AgentProcess(room, "--model", "scripted", *args, env=env).start()
    return agent, await agent.wait_for(r"\[listening", seconds=120)


def heard_words(path: Path) -> list[str]:
    audio, rate = sf.read(str(path), dtype="float32")
    assert rate == 16000 and len(audio) > 16000
    stt = Transcriber(STTConfig(), "models")
    # Transcribe reply by reply (split at long silences) so Whisper's 30 s window never truncates.
    words: list[str] = []
    loud = np.abs(audio) > 0.01
    i = 0
    while i < len(audio):
        start = i + int(np.argmax(loud[i:])) if loud[i:].any() else len(audio)
        if start >= len(audio):
            break
        end = start
        while end < len(audio) and loud[max(0, end - 8000) : end + 8000].any():
            end += 4000
        words += normalize(stt.transcribe_sync(audio[max(0, start - 1600) : end]).text)
        i = end
    return words


async def test_three_spoken_turns_get_spoken_answers(room: VirtualRoom, tmp_path: Path) -> None:
    async with ScriptedLLM() as server:
        # By keyword, not by order: a speculative request the user talked over also counts.
        for keyword, reply in zip(("forward", "club", "forever"), REPLIES):
            server.when(keyword, reply)
        recording = tmp_path / "speaker.wav"
        metrics = tmp_path / "turns.jsonl"
        agent, _ = await start_listening(room, server, "--metrics", str(metrics))
        try:
            room.record_speaker(recording)
            at = 0
            for clip in ("ps_goforward.wav", "ps_cards_003.wav", "ps_forever_input_2.wav"):
                await room.say(SPEECH / clip)
                at = await agent.wait_for(r"^agent: ", at)
                at = await agent.wait_for(r"\(done speaking\)", at) + 1
            room.stop_recording()
            assert await agent.interrupt() == 130
        finally:
            await agent.kill()
    output = "\n".join(agent.lines)
    assert "Traceback" not in output
    assert [l for l in agent.lines if l.startswith("agent: ")] == [f"agent: {r}" for r in REPLIES]
    # The last request carried the whole conversation so far.
    assert [m["role"] for m in server.requests[-1]["messages"]] == ["system", "user", "assistant", "user", "assistant", "user"]
    heard = heard_words(recording)
    for reply in REPLIES:
        said = normalize(reply)
        found = [w for w in said if w in heard]
        assert len(found) >= 0.7 * len(said), f"{reply!r} not heard in {' '.join(heard)!r}"
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    turns = [r for r in records if r["type"] == "turn"]
    assert len(turns) == 3 and all(t["response_latency_ms"] > 0 for t in turns)
    # Each reply's progress ends in a final record with everything it streamed and played.
    finals = [r for r in records if r["type"] == "progress" and r["final"] and r["audio_s_sent"]]  # not dropped speculation
    assert [f["chars"] for f in finals] == [len(r) for r in REPLIES]
    for final in finals:
        assert final["streaming_done"] and final["sentences_spoken"] == final["sentences"] >= 1
        assert final["audio_s_played"] == pytest.approx(final["audio_s_sent"], abs=0.05) and final["audio_s_played"] > 0.5


def suspend_speaker(room: VirtualRoom, suspended: bool = True) -> None:
    room.pactl("suspend-sink", "speaker", "1" if suspended else "0")  # the output stops taking audio


# device: (first reply, when it breaks, break it, the agent says, mend it, the agent says)
OUTAGES = {
    "microphone": (REPLIES[0], r"\(done speaking\)", VirtualRoom.unplug_mic, "microphone stopped delivering audio",
                   VirtualRoom.plug_mic, "microphone is back"),
    "speaker": (Reply(LONG), r"ms to first audio", suspend_speaker, "speaker stopped playing",
                lambda room: suspend_speaker(room, False), "speaker is back"),
}  # fmt: skip


@pytest.mark.parametrize("device", OUTAGES)
async def test_a_device_that_stops_is_reported_and_the_conversation_goes_on(room: VirtualRoom, device: str) -> None:
    first_reply, breaks_at, break_it, broken, mend_it, mended = OUTAGES[device]
    async with ScriptedLLM(REPLIES[1]) as server:
        server.when("forward", first_reply)
        agent, at = await start_listening(room, server)
        try:
            await room.say(SPEECH / "ps_goforward.wav")
            at = await agent.wait_for(breaks_at, at)
            break_it(room)
            at = await agent.wait_for(broken, at, seconds=30)
            mend_it(room)
            at = await agent.wait_for(mended, at, seconds=30)
            await room.say(SPEECH / "ps_cards_003.wav")
            at = await agent.wait_for(rf"^agent: {REPLIES[1]}", at)
            assert await agent.interrupt() == 130
        finally:
            await agent.kill()
    assert "Traceback" not in "\n".join(agent.lines)
    # The conversation was kept: the second request carries the first exchange.
    second = server.requests[-1]["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]
    assert second[2]["content"] == (first_reply if isinstance(first_reply, str) else first_reply.text)


@pytest.mark.xfail(
    strict=False,
    reason="issue 13, open: passes alone, failed in a full-suite run (echo through in a session's first reply "
    "while the echo path is still measured, or the cut-in not heard)",
)
@pytest.mark.parametrize("echo_db, delay_ms", [(-10, 40), (0, 300)])
async def test_echo_of_the_agent_does_not_interrupt_it_but_the_user_does(room: VirtualRoom, echo_db: int, delay_ms: int) -> None:
    """Laptop speakers: the speaker is mixed into the mic, `delay_ms` after it played."""
    room.echo(volume_percent(echo_db), delay_ms)
    async with ScriptedLLM(REPLIES[1]) as server:
        server.when("forward", LONG)
        agent, at = await start_listening(room, server)
        try:
            await room.say(SPEECH / "ps_goforward.wav")
            first = await agent.wait_for(r"^agent: ", at)
            done = await agent.wait_for(r"\(done speaking\)", first)
            assert not any("interrupted" in l for l in agent.lines[at:done]), "the agent cut itself off"
            await room.say(SPEECH / "ps_goforward.wav")
            await agent.wait_for(r"ms to first audio", done)
            # A second into the reply the user talks over the agent (sooner, they would be
            # going on with their own turn: [bargein] continue_ms).
            await asyncio.sleep(1.5)
            speaking = len(agent.lines)
            await room.say(SPEECH / "ps_cards_003.wav")
            cut = await agent.wait_for(r"\(interrupted\)", speaking)
            await agent.wait_for(rf"^agent: {REPLIES[1]}", cut)
            assert await agent.interrupt() == 130
        finally:
            await agent.kill()
    assert "echo cancellation on" in "\n".join(agent.lines)
    assert sum("(interrupted)" in l for l in agent.lines) == 1
    # The words that cut in are the user's (heard through the agent's voice), not an echo of it.
    last_user = server.requests[-1]["messages"][-1]["content"].lower()
    assert "forward" not in last_user and "lighthouse" not in last_user


def test_no_devices_is_a_clear_error(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    # A PulseAudio runtime dir with no daemon: ALSA's pulse plugin finds nothing to open.
    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path), "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    proc = subprocess.run([sys.executable, "-m", "voice_agent"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error:")


async def test_sigkill_mid_reply_loses_only_the_turn_in_progress(room: VirtualRoom, tmp_path: Path) -> None:
    transcript = tmp_path / "talk.jsonl"
    metrics = tmp_path / "turns.jsonl"
    async with ScriptedLLM() as server:
        server.when("forward", REPLIES[0])
        server.when("club", REPLIES[1])
        server.when("forever", Reply(LONG))
        agent, at = await start_listening(room, server, "--transcript", str(transcript), "--metrics", str(metrics))
        try:
            for clip in ("ps_goforward.wav", "ps_cards_003.wav"):
                await room.say(SPEECH / clip)
                at = await agent.wait_for(r"\(done speaking\)", at) + 1
            await room.say(SPEECH / "ps_forever_input_2.wav")
            at = await agent.wait_for(r"ms to first audio", at)  # the third reply is playing
            await agent.kill()  # SIGKILL: no chance to clean up
        finally:
            await agent.kill()
    assert agent.proc is not None and agent.proc.returncode == -9
    messages, unanswered = load(transcript)
    # Every completed turn is there. The third reply had finished streaming (it was
    # being spoken), so it may be there too; nothing else is.
    assert [m["content"] for m in messages if m["role"] == "assistant"][:2] == REPLIES[:2], "\n".join(agent.lines)
    assert [m["role"] for m in messages][:4] == ["user", "assistant", "user", "assistant"] and len(messages) in (4, 6)
    assert "forward" in messages[0]["content"].lower() and "club" in messages[2]["content"].lower()
    # The metrics of the finished turns were on disk too.
    turns = [json.loads(line) for line in metrics.read_text().splitlines() if '"type": "turn"' in line]
    assert [t["agent_text"] for t in turns][:2] == REPLIES[:2]



async def test_after_a_cut_the_history_holds_what_the_speaker_played_with_a_large_output_buffer(
    room: VirtualRoom, tmp_path: Path
) -> None:
    """A sound server holding 200 ms: the words credited as heard are the words the speaker's monitor recorded."""
    transcript = tmp_path / "talk.jsonl"
    recording = tmp_path / "speaker.wav"
    async with ScriptedLLM() as server:
        server.when("forward", LONG)
        server.when("club", "Okay.")  # no word of LONG: its answer on the recording does not count
        env = {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "k", "PULSE_LATENCY_MSEC": "200"}
        agent = await AgentProcess(room, "--model", "scripted", "--transcript", str(transcript), env=env).start()
        try:
            at = await agent.wait_for(r"\[listening", seconds=120)
            room.record_speaker(recording)
            await room.say(SPEECH / "ps_goforward.wav")
            at = await agent.wait_for(r"ms to first audio", at)
            # The user lets it speak for a while, then cuts in: past the first reply's first 4 s of
            # voice, where the echo canceller may still be learning the path and mutes the microphone.
            await asyncio.sleep(5.0)
            await room.say(SPEECH / "ps_cards_003.wav")
            await agent.wait_for(r"\(interrupted\)", at)
            await asyncio.sleep(1.0)  # what the device held plays out: it is on the recording too
            room.stop_recording()
            assert await agent.interrupt() == 130
        finally:
            await agent.kill()
    messages, _ = load(transcript)
    credited = normalize(next(m["content"] for m in messages if m["role"] == "assistant").split("[")[0])
    played = [w for w in heard_words(recording) if w in normalize(LONG)]
    said = normalize(LONG)
    assert 0 < len(credited) < len(said), credited
    assert credited == said[: len(credited)]
    # Never a word the speaker did not play; at most a word or two short of it (whole words only).
    assert said[len(credited) - 1] in played, f"credited {credited}, the speaker played {played}"
    assert len(credited) >= len(played) - 2, f"credited {credited}, the speaker played {played}"


async def test_ctrl_c_while_the_llm_has_not_answered_yet_exits(room: VirtualRoom) -> None:
    """The user gives up on a slow LLM: Ctrl-C ends the session, it does not wait for the first token."""
    async with ScriptedLLM(ttft_ms=600_000) as server:
        agent, at = await start_listening(room, server)
        try:
            await room.say(SPEECH / "ps_goforward.wav")
            await agent.wait_for(r"^you: ", at)
            assert await agent.interrupt() == 130
        finally:
            await agent.kill()
    assert "Traceback" not in "\n".join(agent.lines)
