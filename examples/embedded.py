"""The agent inside your own program: your audio in, your audio out.

    python examples/embedded.py tests/speech/ps_goforward.wav [more.wav ...]

A program that gets the user's voice from somewhere of its own (a socket, a
phone line; here, WAV files cut into 20 ms frames as a network would deliver
them) and sends the agent's voice somewhere of its own (here, a list of
timed PCM chunks). The agent needs only a `Source` (frames stamped with
their position on the 16 kHz input clock) and a `Sink` (plays a chunk,
says where it will play, stops on barge-in).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from voice_agent import (
    SAMPLE_RATE,
    Agent,
    AudioChunk,
    Config,
    History,
    Placed,
    Vad,
    build_parts,
    close_parts,
    load_config,
    read_audio,
)


class Feed:
    """The Source: audio pushed in by the program. Its position is the session's clock."""

    def __init__(self, frame_len: int) -> None:
        self.frame_len = frame_len
        self.position = 0  # samples handed to the agent so far
        self.queue: asyncio.Queue[np.ndarray | None] = asyncio.Queue()

    def now(self) -> int:
        return self.position

    def push(self, audio: np.ndarray) -> None:
        """16 kHz mono float32, any length: cut into frames."""
        padded = np.concatenate([audio, np.zeros(-len(audio) % self.frame_len, np.float32)])
        for i in range(0, len(padded), self.frame_len):
            self.queue.put_nowait(padded[i : i + self.frame_len])

    def close(self) -> None:
        self.queue.put_nowait(None)

    async def frames(self) -> AsyncIterator[tuple[int, np.ndarray]]:
        while (frame := await self.queue.get()) is not None:
            yield self.position, frame
            self.position += len(frame)


@dataclass
class Line:
    """The Sink: sends the agent's audio on, and keeps time as a speaker would."""

    clock: Feed
    sent: list[tuple[int, AudioChunk]] = field(default_factory=list)  # (start position, chunk)
    cursor: int = 0  # where the audio sent so far runs out

    def play(self, chunk: AudioChunk) -> Placed:
        start = max(self.clock.now(), self.cursor)
        self.cursor = start + len(chunk.samples) * SAMPLE_RATE // chunk.sample_rate
        self.sent.append((start, chunk))  # a real program would send it here
        return Placed(start, self.cursor, chunk)

    def playing(self) -> bool:
        return self.cursor > self.clock.now()

    def stop(self) -> int:
        """Barge-in: a real line would tell the far end to drop what it has not played yet."""
        now = self.clock.now()
        self.sent = [(start, chunk) for start, chunk in self.sent if start < now]
        self.cursor = min(self.cursor, now)
        return now


async def converse(clips: list[np.ndarray], cfg: Config) -> tuple[list[dict[str, Any]], Line]:
    """Each clip is one user turn, then 1.5 s of silence; returns the conversation as kept and the line."""
    parts, _ = build_parts(cfg)
    vad = Vad(cfg.vad)
    feed = Feed(vad.frame_len)
    line = Line(feed)
    agent = Agent(parts, History.for_config(cfg.llm), line, cfg)
    for clip in clips:
        feed.push(clip)
        feed.push(np.zeros(SAMPLE_RATE * 3 // 2, np.float32))  # the user waits for the answer
    feed.close()
    try:
        async with agent.bus:
            # fast: the program feeds faster than real time, so let the agent settle after every frame
            # (a live feed, paced by its own clock, leaves fast off)
            await agent.listen(feed, vad, fast=True)
    finally:
        await close_parts(parts)
    return agent.history.turns, line


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python examples/embedded.py SPEECH.wav [MORE.wav ...]")
    conversation, line = asyncio.run(converse([read_audio(p) for p in sys.argv[1:]], load_config()))
    for message in conversation:
        print(f"{message['role']}: {message['content']}")
    seconds = sum(len(c.samples) / c.sample_rate for _, c in line.sent)
    print(f"sent {len(line.sent)} chunks, {seconds:.1f} s of the agent's voice")
