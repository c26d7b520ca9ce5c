"""The events that flow through a session.

Every position is a sample index on one clock: the input audio's, at 16 kHz
(`SAMPLE_RATE`). Latency is then a subtraction, and a WAV sink can lay the
conversation out exactly as a listener heard it.

An agent reply is many `AgentResponse` chunks that share a `response_id`;
text, audio and other media are subclasses so a route can select all chunks
(`on(AgentResponse)`) or one kind (`on(AudioChunk)`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class Event:
    """Base of everything published on a `routes.Bus`."""


# --- the user's side -------------------------------------------------------


@dataclass(frozen=True)
class UserStartedSpeaking(Event):
    position: int  # first voiced sample (pre-roll not included)


@dataclass(frozen=True)
class UserStoppedSpeaking(Event):
    """One user turn: its audio (16 kHz mono float32, pre-roll included)."""

    start: int  # first sample of `audio` on the input clock
    end: int  # last voiced sample + 1 (trailing silence not included)
    decided_at: int  # where the end-of-turn silence ran out
    audio: np.ndarray = field(repr=False, compare=False)


@dataclass(frozen=True)
class UserPaused(Event):
    """A shorter silence than the end of a turn: enough to start a reply speculatively."""

    start: int
    end: int
    decided_at: int
    audio: np.ndarray = field(repr=False, compare=False)


@dataclass(frozen=True)
class UserResumed(Event):
    """Speech again after a `UserPaused`: the speculative reply is void."""

    position: int


@dataclass(frozen=True)
class Transcript(Event):
    """What the user said in one turn, from `start` to `end` on the input clock."""

    text: str
    start: int
    end: int
    decided_at: int = 0
    speculative: bool = False  # from a pause: the reply waits behind a gate until the turn ends


# --- the agent's reply -----------------------------------------------------


@dataclass(frozen=True)
class AgentResponse(Event):
    """One chunk of one logical reply."""

    response_id: int


@dataclass(frozen=True)
class TextChunk(AgentResponse):
    """Words of a reply as they stream (what a node yields; a plain `str` becomes one)."""

    text: str


@dataclass(frozen=True)
class SentenceChunk(AgentResponse):
    """Text the sentence buffer released as ready to speak."""

    text: str
    index: int  # 0 for the reply's first sentence


@dataclass(frozen=True)
class AudioChunk(AgentResponse):
    """Synthesized speech (int16 mono) for part of one sentence."""

    samples: np.ndarray = field(repr=False, compare=False)
    sample_rate: int
    text: str  # the words this audio speaks
    sentence_index: int = 0
    last_in_sentence: bool = True
    cached: bool = False  # came from the audio cache, not fresh synthesis
    word_ends: tuple[int, ...] = ()  # sample in `samples` where each word of `text` ends; (): not known


@dataclass(frozen=True)
class MediaChunk(AgentResponse):
    mime_type: str
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class Filler(AgentResponse):
    """Words that fill a wait (a slow tool call): spoken, but not part of the reply's text."""

    text: str


@dataclass(frozen=True)
class ResponseDone(AgentResponse):
    """The reply finished streaming (not necessarily playing)."""

    text: str
    error: str | None = None


@dataclass(frozen=True)
class AgentSpeechSent(AgentResponse):
    """Audio for `text` was handed to the sink, to play from `position` to `end`."""

    text: str
    position: int
    end: int = 0
    ends_sentence: bool = True


@dataclass(frozen=True)
class Interruption(Event):
    """The user cut the agent off; everything of `response_id` must stop."""

    response_id: int | None
    position: int  # where the user's speech started
    silenced_at: int  # where the agent's output went silent
    heard: str = ""  # what the user heard of the reply


@dataclass(frozen=True)
class ReplyPaused(Event):
    """A voice over the agent: its reply fell silent at `silenced_at`, and what had not
    been heard plays again (new `AgentSpeechSent`s) if the voice does not cut it off."""

    response_id: int
    silenced_at: int


@dataclass(frozen=True)
class CandidateCancelled(Event):
    """The user went on speaking: drop the speculative reply (nothing of it was played)."""

    response_id: int | None


@dataclass(frozen=True)
class Resume(Event):
    """A false interruption (no words in it): say the rest of the cut reply."""

    text: str  # what is left to say
    full_text: str  # the whole reply as the history should hold it
    heard: str = ""  # what had been heard before the false interruption


@dataclass(frozen=True)
class Say(Event):
    """The agent says fixed words of its own accord (the greeting)."""

    text: str


# --- tools -----------------------------------------------------------------


@dataclass(frozen=True)
class ToolCall(AgentResponse):
    """The LLM asked for a tool; it runs now."""

    call_id: str
    name: str
    arguments: str  # JSON, as the LLM wrote it


@dataclass(frozen=True)
class ToolResult(AgentResponse):
    """A tool call's outcome (`content` is its result, or the error if `is_error`)."""

    call_id: str
    name: str
    content: str
    is_error: bool = False


@dataclass(frozen=True)
class ToolExchange(AgentResponse):
    """A finished tool round as chat messages (the calls, then each result), for the history."""

    messages: tuple[dict[str, Any], ...] = field(compare=False)


@dataclass(frozen=True)
class ErrorEvent(Event):
    """Something failed; the session goes on. `where` names the stage."""

    where: str
    message: str
