"""A client of `voice-agent serve` that judges from what it received, as a listener would.

It speaks recorded utterances over the WebSocket in real time (20 ms frames,
silence between them, as a microphone would send), and lays the agent's audio
on its own timeline as a client that plays on arrival: a piece plays when it
arrives or right after the piece before, and `clear` cuts what has not played.
Latency is then the end of the words in the recording to the first agent audio
on that timeline; nothing the server says about itself is used.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import numpy as np

from ..core.events import SAMPLE_RATE

FRAME = SAMPLE_RATE // 50  # 20 ms


def speech_span(audio: np.ndarray, frame: int = 320) -> tuple[float, float]:
    """Seconds from the start of `audio` to its first and past its last word (15 dB over its background)."""
    frames = audio[: len(audio) // frame * frame].reshape(-1, frame)
    db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    voiced = np.flatnonzero(db > np.percentile(db, 10) + 15)
    if not len(voiced):
        return 0.0, 0.0
    return voiced[0] * frame / SAMPLE_RATE, (voiced[-1] + 1) * frame / SAMPLE_RATE


@dataclass
class Heard:
    """Agent audio on the client's timeline, in seconds since the session started."""

    start: float
    end: float


@dataclass
class Conversation:
    said: list[tuple[float, float]] = field(default_factory=list)  # each utterance's words: (start, end) s
    heard: list[Heard] = field(default_factory=list)
    messages: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    agent_rate: int = 0
    audio_bytes: int = 0
    close_code: int | None = None
    close_reason: str = ""

    def transcripts(self, role: str) -> list[str]:
        return [m["text"] for _, m in self.messages if m.get("type") == "transcript" and m.get("role") == role]

    def playing_until(self) -> float:
        return self.heard[-1].end if self.heard else 0.0

    def turns(self) -> list[dict[str, Any]]:
        """Each utterance: its latency (end of words -> first agent audio), or why there is none."""
        out = []
        for i, (start, end) in enumerate(self.said):
            until = self.said[i + 1][0] if i + 1 < len(self.said) else float("inf")
            premature = any(start < h.start < end for h in self.heard)
            answer = next((h.start for h in self.heard if end <= h.start < until), None)
            out.append({"latency_ms": None if answer is None else round((answer - end) * 1000, 1), "premature": premature})
        return out


class Client:
    """One session: `say(clip)` speaks a clip, `wait_for_answer()` listens in silence."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, now: Callable[[], float] = time.monotonic) -> None:
        self.ws = ws
        self.now = now
        self.t0 = now()
        self.sent = 0  # samples sent: the client's clock
        self.talk = Conversation()
        self.last_audio = 0.0

    def clock(self) -> float:
        return self.now() - self.t0

    async def _send(self, audio: np.ndarray) -> None:
        for i in range(0, len(audio), FRAME):
            frame = audio[i : i + FRAME]
            frame = np.pad(frame, (0, FRAME - len(frame)))
            delay = self.sent / SAMPLE_RATE - self.clock()
            if delay > 0:
                await asyncio.sleep(delay)  # real-time pacing, as a microphone delivers
            if self.ws.closed:
                return  # the server hung up: its close code and reason are in `talk`
            try:
                await self.ws.send_bytes((np.clip(frame, -1, 1) * 32767).astype("<i2").tobytes())
            except ConnectionResetError:
                return
            self.sent += FRAME

    async def say(self, clip: np.ndarray) -> None:
        start, end = speech_span(clip)
        at = self.sent / SAMPLE_RATE
        self.talk.said.append((at + start, at + end))
        await self._send(clip)

    async def silence(self, seconds: float) -> None:
        await self._send(np.zeros(int(seconds * SAMPLE_RATE), np.float32))

    async def wait_for_answer(self, quiet_s: float = 1.2, max_s: float = 20.0) -> None:
        """Silence until the agent has said something and then been quiet for `quiet_s`."""
        began = self.clock()
        while self.clock() - began < max_s and not self.ws.closed:
            heard_new = self.talk.heard and self.talk.heard[-1].start > began - 0.1
            if heard_new and self.clock() - max(self.playing_end(), self.last_audio) > quiet_s:
                return
            await self.silence(0.1)

    def playing_end(self) -> float:
        return self.talk.playing_until()

    async def read(self) -> None:
        """Receive until the socket closes (run it as a task beside the talking)."""
        while True:
            msg = await self.ws.receive()
            t = self.clock()
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                self.talk.close_code = self.ws.close_code
                self.talk.close_reason = msg.extra if isinstance(msg.extra, str) else ""
                return
            if msg.type == aiohttp.WSMsgType.BINARY:
                self._audio(t, msg.data)
            elif msg.type == aiohttp.WSMsgType.TEXT:
                message = json.loads(msg.data)
                self.talk.messages.append((t, message))
                if message.get("type") == "ready":
                    self.talk.agent_rate = message["agent_sample_rate"]
                elif message.get("type") == "clear":
                    self._clear(t)

    def _audio(self, t: float, data: bytes) -> None:
        self.talk.audio_bytes += len(data)
        self.last_audio = t
        duration = len(data) / 2 / max(1, self.talk.agent_rate)
        start = max(t, self.playing_end())
        heard = self.talk.heard
        if heard and abs(heard[-1].end - start) < 1e-6:
            heard[-1].end = start + duration  # one continuous stretch of the agent's voice
        else:
            heard.append(Heard(start, start + duration))

    def _clear(self, t: float) -> None:
        heard = self.talk.heard
        while heard and heard[-1].start >= t:
            heard.pop()
        if heard and heard[-1].end > t:
            heard[-1].end = t


async def converse(url: str, clips: list[np.ndarray], lead_s: float = 1.0, headers: dict[str, str] | None = None) -> Conversation:
    """Connect, say each clip once the agent has answered the one before, hang up."""
    async with aiohttp.ClientSession() as http, http.ws_connect(url, headers=headers or {}, max_msg_size=0) as ws:
        client = Client(ws)
        reader = asyncio.create_task(client.read())
        try:
            await client.silence(lead_s)
            for clip in clips:
                await client.say(clip)
                await client.wait_for_answer()
        finally:
            await ws.close()
            await reader
        return client.talk
