"""The agent: the routes that turn a user's speech into a spoken reply.

    UserStoppedSpeaking --stt--> Transcript --llm+sentences--> SentenceChunk --tts--> AudioChunk --sink
                                           \\-> TextChunk, ResponseDone (shown, recorded)

Each arrow is a route; every route of a reply is interrupted by the user
starting to speak, and every chunk carries its reply's id so the sink can
refuse audio from a reply that is no longer current. The same `Agent` runs
on a microphone, a WAV file or a test: sources and sinks are passed in.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .audio_out import Placed
from .events import (
    AgentResponse,
    AgentSpeechSent,
    AudioChunk,
    ErrorEvent,
    Interruption,
    ResponseDone,
    SentenceChunk,
    TextChunk,
    Transcript,
    UserStartedSpeaking,
    UserStoppedSpeaking,
)
from .history import History
from .llm import ChatBackend, reply
from .routes import Bus
from .sentences import SentenceBuffer
from .stt import Transcriber
from .tts import Synthesizer
from .vad import Vad

log = logging.getLogger(__name__)


class Source(Protocol):
    def frames(self) -> AsyncIterator[tuple[int, np.ndarray]]: ...


class Sink(Protocol):
    def play(self, chunk: AudioChunk) -> Placed: ...

    def playing(self) -> bool: ...

    def stop(self) -> int: ...


@dataclass
class Parts:
    """The loaded models and the LLM behind a session (loaded once, shared)."""

    stt: Transcriber
    tts: Synthesizer
    llm: ChatBackend


class Agent:
    def __init__(self, parts: Parts, history: History, sink: Sink, first_clause_min_chars: int = 12) -> None:
        self.parts = parts
        self.history = history
        self.sink = sink
        self.first_clause_min_chars = first_clause_min_chars
        self.bus = Bus()
        self.current: int | None = None  # id of the reply being produced or played
        self._next_id = 0
        self._wire(self.bus)

    def _wire(self, bus: Bus) -> None:
        cut = (Interruption,)
        bus.on(UserStartedSpeaking).map(self._maybe_interrupt)
        bus.on(UserStoppedSpeaking).stream(self._transcribe).broadcast().named("stt")
        self._reply_routes = [
            bus.on(Transcript).interrupt_on(*cut).stream(self._respond).broadcast().named("llm"),
            bus.on(SentenceChunk).interrupt_on(*cut).stream(self._speak).broadcast().named("tts"),
            bus.on(AudioChunk).interrupt_on(*cut).map(self._play).broadcast().named("sink"),
        ]
        bus.on(ResponseDone).map(self._finish).named("history")
        bus.on(ErrorEvent).map(lambda e: log.error("%s: %s", e.where, e.message))

    @property
    def busy(self) -> bool:
        """Anything still to hear or say (used to take turns politely)."""
        return not self.bus.idle or self.sink.playing()

    # --- the stages -------------------------------------------------------------

    async def _transcribe(self, turn: UserStoppedSpeaking) -> AsyncIterator[Transcript]:
        result = await self.parts.stt.transcribe(turn.audio)
        log.info("heard %r (%.0f ms)", result.text, result.seconds * 1000)
        if result.text:
            yield Transcript(result.text, turn.start, turn.end, turn.decided_at)

    async def _respond(self, transcript: Transcript) -> AsyncIterator[AgentResponse]:
        self._next_id += 1
        rid = self.current = self._next_id
        self.history.add_user(transcript.text)
        buffer = SentenceBuffer(first_clause_min_chars=self.first_clause_min_chars)
        index = 0
        async for chunk in reply(self.parts.llm, self.history.messages(), rid):
            sentences = buffer.push(chunk.text) if isinstance(chunk, TextChunk) else buffer.flush()
            if isinstance(chunk, TextChunk):
                yield chunk
            for sentence in sentences:
                yield SentenceChunk(rid, sentence, index)
                index += 1
            if isinstance(chunk, ResponseDone):
                yield chunk

    async def _speak(self, sentence: SentenceChunk) -> AsyncIterator[AudioChunk]:
        if sentence.response_id != self.current:
            return
        async for audio in self.parts.tts.speak(sentence.text, sentence.response_id, sentence.index):
            yield audio

    def _play(self, audio: AudioChunk) -> AgentSpeechSent | None:
        if audio.response_id != self.current:
            return None  # stale audio from a reply the user cut off
        placed = self.sink.play(audio)
        return AgentSpeechSent(audio.response_id, audio.text, placed.start)

    def _finish(self, done: ResponseDone) -> None:
        if done.error:
            self.history.drop_last_user()  # the turn is dropped; the user can ask again
        elif done.response_id == self.current:
            self.history.add_assistant(done.text)

    @property
    def replying(self) -> bool:
        """A reply is being produced or is still playing."""
        return any(r.busy for r in self._reply_routes) or self.sink.playing()

    async def _maybe_interrupt(self, started: UserStartedSpeaking) -> None:
        if self.current is not None and self.replying:
            stopped_at = self.sink.stop()
            log.info("interrupted reply %s at %d", self.current, stopped_at)
            rid, self.current = self.current, None
            await self.bus.publish(Interruption(rid, started.position))

    # --- feeding it -------------------------------------------------------------

    async def listen(self, source: Source, vad: Vad, fast: bool = False) -> None:
        """Run the conversation from `source` until it ends.

        In fast mode the pipeline settles after every frame, so processing
        takes no time on the timeline: the result is exact and repeatable.
        """
        async for position, frame in source.frames():
            for event in vad.process(position, frame):
                await self.bus.publish(event)
            if fast:
                await self.bus.drain()
        await self.bus.drain()
