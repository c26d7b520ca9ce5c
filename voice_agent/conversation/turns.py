"""Turn bookkeeping: the user's utterance across the turns the VAD cuts it into,
and the state of the reply being produced or played.

A pause can end a turn that was not the end of what the user meant to say;
the agent then transcribes and answers a fragment. When the user goes on,
the fragment's words must neither be lost nor passed to the LLM twice. The
rule that keeps both true: a transcript is always *all* the unanswered words
(`carried`, then the new ones), and `carried` is only ever *set* from such a
transcript or cleared when a reply to it is heard, never appended to.

The carried words' audio is kept too: the next transcription hears the
whole utterance at once (Whisper does better with the whole sentence than
with its pieces: "He was not." + "and ill-disposed" is "He was not an
ill-disposed" heard whole).

Speculative transcripts (made at a pause, before the turn is known to be
over) go stale the moment the user goes on: `went_on` bumps an epoch, and a
transcript made in an older epoch is thrown away instead of answered.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field

import numpy as np

from ..core.events import AudioChunk, Transcript
from .bargein import Spoken, heard_text, split_at

_WORD = re.compile(r"[\w']+")


@dataclass
class Utterance:
    carried: str = ""  # words of earlier fragments no heard reply has answered yet
    carried_audio: np.ndarray | None = None  # their audio, when known
    _audio_of: dict[str, np.ndarray] = field(default_factory=dict)  # the audio of recent transcripts
    epoch: int = 0  # bumped each time the user goes on after a pause
    resumed_at: int = -1  # where they last went on
    speculated: int | None = None  # start of the turn a speculative transcript was made for
    speculation: Transcript | None = None  # that transcript, while the user has not gone on
    commit_on_arrival: int | None = None  # that turn ended before its reply began

    def words(self, new: str) -> str:
        """What a reply must answer: the carried words, then `new`."""
        return f"{self.carried} {new}".strip()

    def audio(self, turn_audio: np.ndarray) -> np.ndarray:
        """What to transcribe: the carried audio, then this turn's."""
        if self.carried_audio is None:
            return turn_audio
        return np.concatenate([self.carried_audio, turn_audio])

    def transcribed(self, text: str, audio: np.ndarray) -> str | None:
        """`text` was heard in `audio` (`audio(...)`): the words of the whole utterance so far,
        or None if Whisper lost the carried words in it (then hear the new part alone)."""
        if self.carried_audio is not None and len(_WORD.findall(text)) < len(_WORD.findall(self.carried)):
            return None
        whole = text.strip() if self.carried_audio is not None else self.words(text)
        if len(self._audio_of) > 8:
            self._audio_of.pop(next(iter(self._audio_of)))
        self._audio_of[whole] = audio
        return whole

    def went_on(self, position: int) -> None:
        """The user spoke again after a pause: speculations made before are stale."""
        self.epoch += 1
        self.resumed_at = position
        self.speculated = self.speculation = self.commit_on_arrival = None

    def speculate(self, transcript: Transcript) -> None:
        self.speculated, self.speculation = transcript.start, transcript

    def fresh(self, speculation: Transcript) -> bool:
        """Is this speculative transcript still about the turn as it is?"""
        return speculation is self.speculation or self.commit_on_arrival == speculation.start

    def current(self, epoch: int) -> bool:
        return epoch == self.epoch

    def gone_on_since(self, pause_decided_at: int) -> bool:
        """Has the user gone on since this pause? (Then transcribing it is wasted.)"""
        return self.resumed_at >= pause_decided_at

    def answered(self) -> None:
        """A reply to all carried words is going ahead.

        The audio of recent transcripts stays: if the user goes on right after the
        reply began, its transcript is carried again, and heard whole with what follows.
        """
        self.carried, self.carried_audio = "", None

    def unanswered(self, text: str) -> None:
        """The reply to `text` (a full transcript, carried words included) did not count: keep them."""
        self.carried = text.strip()
        self.carried_audio = self._audio_of.get(self.carried)


def goes_on(speech_start: int, first_audible: int | None, window: int) -> bool:
    """Did the user start speaking within `window` samples of the reply becoming audible?

    Then their pause was not the end of their turn: the reply was premature
    and they are still talking, rather than cutting a reply off.
    """
    return first_audible is not None and speech_start - first_audible <= window


@dataclass
class ReplyState:
    """Bookkeeping of the reply being produced or played."""

    id: int
    user_text: str
    sentences: list[str]
    spoken: list[Spoken]
    text: str = ""
    recorded: bool = False  # its text is in the history
    heard_before: str = ""  # a resumed reply: what was heard before the false interruption
    resumed: bool = False  # it finishes a reply cut off by a false interruption
    turn_start: int | None = None  # a speculative reply: the turn it answers
    held: list[AudioChunk] | None = None  # speculative, not yet committed: its audio waits here
    onset_hold: bool = False  # held because a sound began as its first audio came (the user going on?)
    paused: list[AudioChunk] | None = None  # audible, then paused at a sound over it: the audio still to play
    paused_at: int = 0  # where its sound stopped, on the input clock
    went_on_at: int = 0  # where it last went on after a pause
    committed: asyncio.Event = field(default_factory=asyncio.Event)  # tools run only once it is
    tool_mark: int = 0  # where in `text` the words after the last tool round begin
    tool_sentences: int = 0  # sentences before the last tool round: its history message holds them

    @property
    def gated(self) -> bool:
        return self.held is not None

    def after_tools(self) -> None:
        """A tool round ended: the reply's own words (in the history after the round) start here."""
        self.tool_mark, self.tool_sentences = len(self.text), len(self.sentences)

    def heard(self, stop_at: int) -> str:
        """What the history keeps of it when cut at `stop_at`: the words heard since its last tool round."""
        since_tools = [s for s in self.spoken if s.sentence_index >= self.tool_sentences]
        return f"{self.heard_before} {heard_text(since_tools, stop_at)}".strip()

    def pause(self, stop_at: int, ended: bool = False) -> None:
        """Its sound stopped at `stop_at`: what played is what was heard, the rest waits to go on.
        `ended`: no more audio is coming; if none is left either, it is simply over, not paused."""
        self.paused_at = stop_at
        self.spoken, self.paused = split_at(self.spoken, stop_at)
        if ended and not self.paused:
            self.paused = None

    def go_on(self, now: int) -> list[AudioChunk]:
        """The audio to play after a pause, from where it stopped."""
        held, self.paused, self.went_on_at = self.paused or [], None, now
        return held

    @property
    def first_audible(self) -> int | None:
        return min((p.start for p in self.spoken), default=None)

    def sounded_for(self, now: int) -> int:
        """How long its voice has sounded at `now` since it began, or since it last went on."""
        return now - max(now if self.first_audible is None else self.first_audible, self.went_on_at)
