"""A private PulseAudio daemon with a virtual microphone and speaker, and the
agent run in it as a user would run it: `voice-agent` in a subprocess.

With `one_clock=True` the microphone bus and the speaker are the two channels
of one stereo null sink (`judge`: left = what the microphone hears, right =
what the speaker plays), so one `parec` of `judge.monitor` records both on one
clock, sample for sample: the room's own account of the conversation, which
the measurements judge (`record_room`). The names stay as in the plain room
(`micbus`, `speaker`, `mic`), so anything that runs in one runs in the other.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..core._compat import timeout

MIC_MODULE = ["module-remap-source", "source_name=mic", "master=micbus.monitor"]
ONE_CLOCK_MIC_MODULE = ["module-remap-source", "source_name=mic", "master=judge.monitor", "channels=1",
                        "channel_map=mono", "master_channel_map=front-left", "remix=no"]  # fmt: skip
PLAIN = ["module-null-sink sink_name=speaker", "module-null-sink sink_name=micbus", " ".join(MIC_MODULE)]
ONE_CLOCK = [
    "module-null-sink sink_name=judge channels=2 channel_map=front-left,front-right",
    "module-remap-sink sink_name=micbus master=judge channels=1 channel_map=mono master_channel_map=front-left remix=no",
    "module-remap-sink sink_name=speaker master=judge channels=1 channel_map=mono master_channel_map=front-right remix=no",
    " ".join(ONE_CLOCK_MIC_MODULE),
]


def volume_percent(db: float) -> int:
    """PulseAudio's volume for a gain in dB (its scale is cubic: 68 % is -10 dB)."""
    return round(100 * 10 ** (db / 60))


class VirtualRoom:
    def __init__(self, one_clock: bool = False) -> None:
        self.one_clock = one_clock
        if shutil.which("pulseaudio") is None:
            raise RuntimeError("pulseaudio is not installed: apt-get install pulseaudio pulseaudio-utils libasound2-plugins")
        self.runtime = tempfile.mkdtemp(prefix="room-")
        self.env = {**os.environ, "XDG_RUNTIME_DIR": self.runtime}
        self.env.pop("PULSE_SERVER", None)
        self._recorder: subprocess.Popen[bytes] | None = None
        self.recording_started = 0.0  # time.monotonic() when the recorder started

    def pactl(self, *args: str) -> str:
        return subprocess.run(["pactl", *args], env=self.env, check=True, capture_output=True, text=True).stdout

    def start(self) -> VirtualRoom:
        modules = ONE_CLOCK if self.one_clock else PLAIN
        subprocess.run(
            ["pulseaudio", "--daemonize=yes", "--exit-idle-time=-1", "-n", "--load=module-native-protocol-unix"]
            + [f"--load={m}" for m in modules],
            env=self.env, check=True, capture_output=True,
        )  # fmt: skip
        # Where PulseAudio moves the agent's input when the mic is unplugged: a
        # source that delivers nothing, as a vanished device does. (With only
        # monitors left, PulseAudio would move it to the speaker's monitor.)
        fifo = f"{self.runtime}/unplugged.fifo"
        self.pactl("load-module", "module-pipe-source", "source_name=unplugged", f"file={fifo}", "format=s16le", "rate=16000", "channels=1")
        self.pactl("set-default-sink", "speaker")
        self.pactl("set-default-source", "mic")
        return self

    def stop(self) -> None:
        self.stop_recording()
        subprocess.run(["pulseaudio", "--kill"], env=self.env, capture_output=True)
        shutil.rmtree(self.runtime, ignore_errors=True)

    async def say(self, wav: Path) -> float:
        """Play a recording into the microphone, in real time; the time.monotonic() it started."""
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec("paplay", "--device=micbus", str(wav), env=self.env)
        if await proc.wait() != 0:
            raise RuntimeError(f"paplay could not play {wav}")
        return started

    def record_speaker(self, path: Path) -> None:
        self._record("speaker.monitor", 1, path)

    def record_room(self, path: Path) -> None:
        """Record the microphone (left) and the speaker (right) on one clock, at 16 kHz."""
        if not self.one_clock:
            raise RuntimeError("record_room needs VirtualRoom(one_clock=True)")
        self._record("judge.monitor", 2, path)

    def _record(self, device: str, channels: int, path: Path) -> None:
        self.recording_started = time.monotonic()
        self._recorder = subprocess.Popen(
            ["parec", f"--device={device}", "--file-format=wav", "--rate=16000", f"--channels={channels}", str(path)],
            env=self.env,
        )

    def stop_recording(self) -> None:
        if self._recorder is not None:
            self._recorder.terminate()
            self._recorder.wait(timeout=10)
            self._recorder = None

    def echo(self, volume_percent: int = 68, delay_ms: int = 40) -> None:
        """Mix the speaker into the microphone, as laptop speakers do (68 % is -10 dB in PulseAudio),
        `delay_ms` later (module-loopback keeps its latency at that, measured to the millisecond here)."""
        self.pactl("load-module", "module-loopback", "source=speaker.monitor", "sink=micbus", f"latency_msec={delay_ms}")
        loopback = next(l for l in self.pactl("list", "short", "sink-inputs").splitlines() if "module-loopback" in l)
        self.pactl("set-sink-input-volume", loopback.split()[0], f"{volume_percent}%")

    def unplug_mic(self) -> None:
        line = next(l for l in self.pactl("list", "short", "modules").splitlines() if "source_name=mic" in l)
        self.pactl("unload-module", line.split()[0])

    def plug_mic(self) -> None:
        self.pactl("load-module", *(ONE_CLOCK_MIC_MODULE if self.one_clock else MIC_MODULE))
        self.pactl("set-default-source", "mic")


def _ctrl_c_works() -> None:
    """As in a terminal. (A job started in the background by a script, as CI may start
    the tests, inherits SIGINT ignored, and so would the agent.)"""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class AgentProcess:
    """`voice-agent ARGS` in the room, its output read line by line as it comes."""

    def __init__(self, room: VirtualRoom, *args: str, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.env = {**room.env, **(env or {}), "COLUMNS": "200"}
        self.lines: list[str] = []
        self._new_line = asyncio.Event()
        self.proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> AgentProcess:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "voice_agent", *self.args,
            env=self.env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            preexec_fn=_ctrl_c_works,
        )  # fmt: skip
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip())
            self._new_line.set()

    async def wait_for(self, pattern: str, start: int = 0, seconds: float = 60) -> int:
        """Index of the first output line from `start` on that matches `pattern`."""
        try:
            return await self._wait_for(pattern, start, seconds)
        except TimeoutError:
            raise AssertionError(f"no /{pattern}/ within {seconds} s; the agent's last output:\n" + "\n".join(self.lines[-30:])) from None

    async def _wait_for(self, pattern: str, start: int, seconds: float) -> int:
        async with timeout(seconds):
            i = start
            while True:
                while i < len(self.lines):
                    if re.search(pattern, self.lines[i]):
                        return i
                    i += 1
                if self._reader is not None and self._reader.done():
                    raise AssertionError(f"agent exited before /{pattern}/:\n" + "\n".join(self.lines))
                self._new_line.clear()
                await self._new_line.wait()

    async def interrupt(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(2)  # Ctrl-C
        try:
            async with timeout(30):
                code = await self.proc.wait()
        except TimeoutError:
            raise AssertionError("the agent did not exit on Ctrl-C; its last output:\n" + "\n".join(self.lines[-30:])) from None
        if self._reader is not None:
            await self._reader
        return code

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        if self._reader is not None:
            await self._reader
