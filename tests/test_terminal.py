"""The terminal view as a person sees it: `voice-agent` in tmux, in the virtual room.

The screen is read with `tmux capture-pane` while the agent listens, hears,
thinks and speaks. The device options are tried in the same room.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest
from conftest import SPEECH
from virtual_room import AgentProcess, VirtualRoom

from voice_agent.measure.scripted_llm import ScriptedLLM

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux (apt-get install tmux)")

REPLY = "The seven of clubs is a lovely card. It has seven little clubs on it, and a seven in each corner."
STATES = ("listening", "hearing you", "thinking", "speaking")


@pytest.fixture
def room() -> Iterator[VirtualRoom]:
    room = VirtualRoom().start()
    try:
        yield room
    finally:
        room.stop()


class Terminal:
    """A tmux session of 120x30 running one command."""

    def __init__(self, room: VirtualRoom, command: list[str], env: dict[str, str]) -> None:
        self.name = f"va{os.getpid()}"
        self.env = {**room.env, **env, "TMUX": ""}
        self.env.pop("COLUMNS", None)
        shell = " ".join(f"{k}={v}" for k, v in env.items()) + " " + " ".join(command)
        subprocess.run(["tmux", "-L", self.name, "new-session", "-d", "-x", "120", "-y", "30", shell], env=self.env, check=True)

    def screen(self) -> str:
        return subprocess.run(
            ["tmux", "-L", self.name, "capture-pane", "-p"], env=self.env, capture_output=True, text=True, check=True
        ).stdout

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "-L", self.name, "send-keys", *keys], env=self.env, check=True)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.name, "kill-server"], env=self.env, capture_output=True, check=False)


def meter(screen: str) -> int:
    """How many bars the microphone level meter shows."""
    found = re.search(r"mic (█*)·", screen)
    return len(found.group(1)) if found else -1


async def watch(term: Terminal, until: str, seconds: float, seen: list[str]) -> None:
    """Read the screen every 50 ms until `until` is on it, keeping every screen seen."""
    for _ in range(int(seconds / 0.05)):
        screen = term.screen()
        seen.append(screen)
        if re.search(until, screen):
            return
        await asyncio.sleep(0.05)  # the polling interval of a person's glance, not a race
    raise AssertionError(f"/{until}/ never appeared; the screen:\n{seen[-1]}")


async def test_the_screen_shows_state_meter_conversation_and_latency(room: VirtualRoom) -> None:
    async with ScriptedLLM(REPLY, ttft_ms=600, tokens_per_s=20) as server:
        env = {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "k", "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
        term = Terminal(room, [sys.executable, "-m", "voice_agent", "--model", "scripted"], env)
        try:
            seen: list[str] = []
            await watch(term, r"listening", 180, seen)
            idle = meter(term.screen())
            speaking = asyncio.create_task(room.say(SPEECH / "ps_cards_005.wav"))
            during: list[str] = []
            await watch(term, r"hearing you", 10, during)
            await watch(term, r"mic █{12,}", 5, during)  # the meter rises with the user's voice
            await speaking
            await watch(term, r"ms to first audio", 60, during)
            await watch(term, r"agent: The seven of clubs", 60, during)
            await watch(term, r"(?m)^│ listening", 60, during)
            term.keys("C-c")
        finally:
            term.close()
    text = "\n".join(during)
    assert idle >= 0 and max(meter(s) for s in during) > idle + 5
    for state in STATES:
        assert state in text, f"never showed {state!r}"
    last = during[-1]
    # What the user said, then the answer (the words are the recogniser's business, not the view's).
    you, agent = last.find("│ you:   "), last.find("│ agent: The seven of clubs")
    assert 0 <= you < agent and re.search(r"(seven|7) of hearts", last.lower()), last
    assert re.search(r"\(\d+ ms to first audio\)", last)
    assert "voice-agent (Ctrl-C to quit)" in last


def run(room: VirtualRoom, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**room.env, "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    return subprocess.run([sys.executable, "-m", "voice_agent", *args], env=env, capture_output=True, text=True, timeout=120, check=False)


async def test_list_devices_and_a_device_by_index_by_name_and_by_a_name_that_matches_nothing(room: VirtualRoom) -> None:
    listed = run(room, "--list-devices")
    assert listed.returncode == 0, listed.stderr
    pulse = next(l for l in listed.stdout.splitlines() if re.search(r"\bpulse\b", l))
    index = pulse.split()[0]
    assert "in" in pulse and "out" in pulse and "(* = default)" in listed.stdout
    # A device that exists, by index or by part of its name: the agent opens it and listens.
    async with ScriptedLLM(REPLY) as server:
        env = {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "k"}
        for option, value in (("--input-device", index), ("--output-device", "PULS")):
            agent = await AgentProcess(room, "--model", "scripted", option, value, env=env).start()
            try:
                await agent.wait_for(r"\[listening", seconds=180)
                assert await agent.interrupt() == 130
            finally:
                await agent.kill()
    for option, value, error in (
        ("--input-device", "no such microphone", "error: no input device matches 'no such microphone'; see `voice-agent --list-devices`"),
        ("--output-device", "999", "error: device 999 is not an output device; see `voice-agent --list-devices`"),
    ):
        refused = run(room, option, value)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr
        assert refused.stderr.strip().splitlines()[-1] == error
