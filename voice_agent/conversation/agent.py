"""The agent: the routes that turn a user's speech into a spoken reply.

    UserStoppedSpeaking --stt--> Transcript --llm+sentences--> SentenceChunk --tts--> AudioChunk --sink
                                           \\-> TextChunk, ResponseDone (shown, recorded)

Each arrow is a route. The reply routes are interrupted together by one
`Interruption`; every chunk carries its reply's id and the sink refuses audio
of a reply that is no longer current. The same `Agent` runs on a microphone,
a WAV file or a test: sources and sinks are passed in.

Barge-in, by what the user could hear when they started speaking:
- nothing yet, or the agent's voice for under `bargein.continue_ms`: they are
  still talking, so the reply stops (after `bargein.min_speech_ms` if audible),
  neither fragment nor reply stays in the history, all is answered once (turns.py);
- the agent's voice, later: it pauses at `bargein.pause_ms` of sound (and goes
  on if the sound ends); after `bargein.min_speech_ms` of their speech the reply
  is cut, the history keeps only the words that played, and if their speech
  turns out to hold no words the agent resumes what it was saying.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator
from contextlib import aclosing

import numpy as np

from ..core.config import Config
from ..core.events import (
    SAMPLE_RATE,
    AgentResponse,
    AgentSpeechSent,
    AudioChunk,
    CandidateCancelled,
    ErrorEvent,
    Filler,
    Interruption,
    ReplyPaused,
    ResponseDone,
    Resume,
    Say,
    SentenceChunk,
    TextChunk,
    ToolExchange,
    Transcript,
    UserPaused,
    UserResumed,
    UserStartedSpeaking,
    UserStoppedSpeaking,
)
from ..core.routes import Bus
from ..core.timeline import Sink, Source
from ..stages.endpointing import end_of_turn_ms, hold_ms
from ..stages.llm import ToolUse
from ..stages.normalize import validate_sentence
from ..stages.pause import Echo, NoEcho, PauseDetector
from ..stages.sentences import SentenceBuffer
from ..stages.speech_check import speech_confirmer
from ..stages.tools import Toolbox
from ..stages.vad import Vad
from .bargein import Spoken, heard_text, unheard_text
from .history import History
from .node import Node, Turn, fixed_reply, ready_to_speak, resolve_node, run_node
from .parts import Parts
from .summary import summarize
from .turns import ReplyState, Utterance, goes_on

log = logging.getLogger(__name__)

# A paused reply goes on after this much quiet that did not cut it off, past its echo: under
# the echo a canceller takes the user's words down too ("Go ... forward" went quiet there).
PAUSE_QUIET = SAMPLE_RATE // 5


class Agent:
    """A voice session: `listen` to a source, answer on a sink; every event flows on `bus`."""

    def __init__(self, parts: Parts, history: History, sink: Sink, cfg: Config | None = None, node: Node | None = None) -> None:
        """`cfg`: barge-in, tool, apology settings (default if None); `node` makes replies (default per node.py)."""
        self.parts, self.history, self.sink = parts, history, sink
        self.cfg = cfg or Config()
        self.node = resolve_node(node, self.cfg)
        self.toolbox = parts.toolbox
        self.bus = Bus()
        self.reply: ReplyState | None = None  # the current reply
        self.interruptions: deque[Interruption] = deque(maxlen=100)  # the latest, for reports and tests
        self._next_id = 0
        self._speech_start: int | None = None  # the user is speaking since here
        self._spoke_at = -1  # the user last started speaking here
        self._utterance = Utterance()  # words of the user's utterance not yet answered
        self._resume: Resume | None = None
        self._vad: Vad | None = None
        self._pause_frames = -(-self.cfg.bargein.pause_ms // self.cfg.vad.frame_ms)
        self._continue = self.cfg.bargein.continue_ms * SAMPLE_RATE // 1000
        self._confirm = speech_confirmer(self.cfg.bargein)  # Silero's word on a barge-in (or none)
        self._pause = PauseDetector(self.cfg)  # is there a voice over the agent's? (it pauses)
        self.echo: Echo = NoEcho()  # live: the canceller says what is the agent's own echo
        self._wire(self.bus)

    def _wire(self, bus: Bus) -> None:
        cut = (Interruption, CandidateCancelled)
        bus.on(UserStartedSpeaking, UserStoppedSpeaking).map(self._track_user)
        bus.on(UserResumed).map(self._cancel_candidate).broadcast()
        # Not interrupted when the user goes on: a queued end of an earlier turn must not be lost.
        self._stt = bus.on(UserStoppedSpeaking, UserPaused).stream(self._transcribe).broadcast().named("stt")
        self._reply_routes = [
            bus.on(Transcript, Resume, Say).interrupt_on(*cut).stream(self._respond).broadcast().named("llm"),
            bus.on(SentenceChunk).interrupt_on(*cut).map(validate_sentence).stream(self._speak).broadcast().named("tts"),
            bus.on(AudioChunk).interrupt_on(*cut).map(self._play).broadcast().named("sink"),
        ]
        bus.on(ResponseDone).map(self._finish).named("history")
        bus.on(ErrorEvent).map(lambda e: log.error("%s: %s", e.where, e.message))

    @property
    def current(self) -> int | None:
        return self.reply.id if self.reply else None

    @property
    def replying(self) -> bool:
        """A reply is being produced, waits behind the speculation gate, or is still playing."""
        held = self.reply is not None and (self.reply.gated or self.reply.paused is not None)
        return held or any(r.busy for r in self._reply_routes) or self.sink.playing()

    @property
    def settled(self) -> bool:
        """Nothing pending: no turn being spoken, decided or transcribed, no reply (for scripted users)."""
        in_turn = self._vad is not None and self._vad.detector.in_speech
        return not (in_turn or self._stt.busy or self.replying)

    # --- the stages -------------------------------------------------------------

    def _track_user(self, event: UserStartedSpeaking | UserStoppedSpeaking) -> None:
        self._speech_start = event.position if isinstance(event, UserStartedSpeaking) else None
        self._spoke_at = max(self._spoke_at, -1 if self._speech_start is None else self._speech_start)

    async def _transcribe(self, turn: UserStoppedSpeaking | UserPaused) -> AsyncIterator[AgentResponse | Transcript | Resume]:
        speculative = isinstance(turn, UserPaused)
        if speculative and self._utterance.gone_on_since(turn.decided_at):
            return
        if not speculative and self._utterance.speculated == turn.start:
            # The turn ended as the speculation assumed: no second transcription.
            self._utterance.speculated = None
            if self.reply is not None and self.reply.gated and self.reply.turn_start == turn.start:
                for sent in self._commit():
                    yield sent
            else:
                self._utterance.commit_on_arrival = turn.start  # its reply has not begun yet
            return
        audio = whole = self._utterance.audio(turn.audio)
        epoch = self._utterance.epoch
        if speculative:  # add the silence the end of the turn would have: Whisper hears the same ending
            audio = np.concatenate([audio, np.zeros(SAMPLE_RATE * 3 // 10, np.float32)])
        model = self.parts.turn_model if speculative and self._vad is not None else None
        if model and self._vad:  # not done until heard done: the hold stands while Whisper works
            self._vad.detector.end_after(turn.start, hold_ms(self._vad.detector.cfg))
        result = await self.parts.stt.transcribe(audio)
        # The turn model runs after Whisper, while the LLM streams its first words: on two cores
        # beside Whisper it slowed the transcript (the critical path); the LLM never waits for it.
        judged = self.bus.spawn(model.done(whole), "turn model") if model and result.text and self._utterance.current(epoch) else None
        log.info("heard %r (%.0f ms)%s", result.text, result.seconds * 1000, " speculatively" if speculative else "")
        if speculative and not self._utterance.current(epoch):
            return  # the user went on while it was transcribed: it is not their turn's end
        if result.text:
            self._resume = None
            text = self._utterance.transcribed(result.text, whole)
            if text is None:  # the whole lost the carried words: hear the new part alone, join the texts
                text = self._utterance.words((await self.parts.stt.transcribe(turn.audio)).text)
            transcript = Transcript(text, turn.start, turn.end, turn.decided_at, speculative)
            if speculative:
                self._utterance.speculate(transcript)
            yield transcript  # the LLM starts on it now; the end of turn is decided after
            if speculative:
                await self._decide_end(transcript, judged, epoch)
        elif self._resume is not None and not speculative:
            log.info("false interruption: resuming")
            resume, self._resume = self._resume, None
            yield resume
        elif self._utterance.carried and not speculative:
            # They went on, but with no words (a cough): answer what they had said.
            yield Transcript(self._utterance.carried, turn.start, turn.end, turn.decided_at)

    async def _respond(self, trigger: Transcript | Resume | Say) -> AsyncIterator[AgentResponse]:
        speculative = isinstance(trigger, Transcript) and trigger.speculative
        if isinstance(trigger, Transcript) and speculative and not self._utterance.fresh(trigger):
            return  # made before the user went on: stale
        if isinstance(trigger, Transcript) and not speculative and self._spoke_at > trigger.end:
            # The user is talking again already (or has since): this turn is not over, keep its words.
            self._utterance.unanswered(trigger.text)
            return
        if self.reply is not None and self.reply.gated:
            self.history.drop_last_user()  # a newer transcript of the same turn replaces the speculation
        self._next_id += 1
        rid = self._next_id
        self.reply = reply_ = self._new_reply(rid, trigger)
        if isinstance(trigger, Transcript):
            for message in self.toolbox.take_late() if self.toolbox else []:
                self.history.add(message)  # calls that finished after a barge-in
            self.history.add_user(trigger.text)
            turn = Turn(trigger.text, self.history.messages(), rid, self.parts.llm, self._tool_use(reply_), reply_.committed)
            stream = run_node(self.node, turn)
        else:
            stream = fixed_reply(trigger, rid)
        buffer = SentenceBuffer()
        async with aclosing(stream):  # a barge-in closes the node here, in this task: its `finally` runs now
            async for chunk in stream:
                if isinstance(chunk, TextChunk):
                    reply_.text += chunk.text
                    yield chunk
                for sentence in ready_to_speak(chunk, buffer, self.cfg.apology):
                    reply_.sentences.append(sentence)
                    yield SentenceChunk(rid, sentence, len(reply_.sentences) - 1)
                if isinstance(chunk, ToolExchange):
                    for message in chunk.messages:
                        self.history.add(message)
                    reply_.after_tools()
                if not isinstance(chunk, (TextChunk, Filler)):
                    yield chunk

    def _new_reply(self, rid: int, trigger: Transcript | Resume | Say) -> ReplyState:
        user_text = trigger.text if isinstance(trigger, Transcript) else ""
        heard_before = trigger.heard if isinstance(trigger, Resume) else ""
        new = ReplyState(rid, user_text, sentences=[], spoken=[], heard_before=heard_before, resumed=isinstance(trigger, Resume))
        speculative = isinstance(trigger, Transcript) and trigger.speculative
        if speculative and self._utterance.commit_on_arrival == trigger.start:
            speculative, self._utterance.commit_on_arrival = False, None  # the turn is over already
        if isinstance(trigger, Transcript) and speculative:
            new.turn_start, new.held = trigger.start, []
        else:
            new.committed.set()
            if isinstance(trigger, Transcript):
                self._utterance.answered()
        return new

    def _tool_use(self, reply_: ReplyState) -> ToolUse:
        cfg = self.cfg.tools
        toolbox = self.toolbox or Toolbox([], cfg.timeout_s)
        return ToolUse(toolbox, cfg.filler, cfg.filler_after_ms / 1000, self.bus.spawn, lambda: self.bus.wait_outside(reply_.committed.wait()))

    # --- speaking ---------------------------------------------------------------

    async def _speak(self, sentence: SentenceChunk) -> AsyncIterator[AudioChunk]:
        if sentence.response_id != self.current:
            return
        async for audio in self.parts.tts.speak(sentence.text, sentence.response_id, sentence.index):
            yield audio

    def _play(self, audio: AudioChunk) -> AgentSpeechSent | None:
        if self.reply is None or audio.response_id != self.reply.id:
            return None  # stale audio from a reply the user cut off
        if self.reply.held is not None:
            self.reply.held.append(audio)  # speculative: heard only if the turn really ended
            return None
        if self.reply.user_text and not self.reply.spoken and self._vad is not None and self._vad.detector.stirring:
            self.reply.held, self.reply.onset_hold = [audio], True  # maybe the user going on: wait to hear
            return None
        if self.reply.paused is not None:
            self.reply.paused.append(audio)
            return None
        placed = self.sink.play(audio)
        self.reply.spoken.append(Spoken(placed.start, placed.end, audio.text, audio.sentence_index, audio))
        return AgentSpeechSent(audio.response_id, audio.text, placed.start, placed.end, audio.last_in_sentence)

    def _finish(self, done: ResponseDone) -> None:
        if done.response_id != self.current:
            return
        assert self.reply is not None
        if done.error:
            self.history.drop_last_user()  # the turn is dropped; the user can ask again
        elif self.reply.resumed:
            self.history.replace_last_assistant(done.text)  # a resumed reply, now complete
        else:
            self.history.add_assistant(done.text[self.reply.tool_mark :].lstrip())
        self.reply.recorded = not done.error
        if self.history.dropped:
            self.bus.spawn(summarize(self.parts.llm, self.history), "summarize")

    # --- speculation ------------------------------------------------------------

    async def _decide_end(self, speculation: Transcript, judged: asyncio.Task[float] | None, epoch: int) -> None:
        p_done = await judged if judged else None  # with the words, the silence that ends this turn
        if self._vad is not None and self._utterance.current(epoch):
            silence = end_of_turn_ms(speculation.text, p_done, self._vad.detector.cfg)
            log.info("end of turn after %d ms of silence (p(done)=%s)", silence, p_done and round(p_done, 2))
            self._vad.detector.end_after(speculation.start, silence)

    def _commit(self) -> list[AgentSpeechSent]:
        """Open the gate of the speculative reply: its held audio plays now."""
        assert self.reply is not None and self.reply.held is not None
        self._utterance.answered()  # the committed reply answers the carried words too
        held, self.reply.held = self.reply.held, None
        self.reply.committed.set()
        log.info("speculative reply %d committed with %d chunks ready", self.reply.id, len(held))
        return [sent for sent in map(self._play, held) if sent is not None]

    def _settle_onset(self) -> list[AgentSpeechSent | Interruption]:
        """A reply held as a sound began: the user went on (drop it, unheard), or it was not speech (play it)."""
        if self.reply is None or not self.reply.onset_hold:
            return []
        if self._speech_start is not None:
            return [self._interrupt(self._speech_start, audible=False)]
        if self._vad is not None and self._vad.detector.stirring:
            return []
        self.reply.onset_hold = False
        return self._commit()

    def _cancel_candidate(self, resumed: UserResumed) -> CandidateCancelled | None:
        """The user went on: drop the speculation, whether still transcribing or already replying."""
        self._utterance.went_on(resumed.position)
        if self.reply is not None and not self.reply.gated:
            return None  # an audible reply is barge-in's business, not speculation's
        reply, self.reply = self.reply, None
        if reply is not None:
            self.history.drop_last_user()
            log.info("speculative reply %d dropped: the user went on", reply.id)
        return CandidateCancelled(reply.id if reply else None)

    # --- barge-in ---------------------------------------------------------------

    def _pause_or_go_on(self, now: int) -> list[AgentSpeechSent | ReplyPaused]:
        """Silent at the first voice over the agent's, while barge-in decides; on once it is quiet."""
        if (reply := self.reply) is None or reply.gated or not self._pause_frames:
            return []
        sound = self._pause.sounding(now, self._pause_frames, PAUSE_QUIET)
        if reply.paused is None and sound and self.sink.playing():
            # Not in the first `continue_ms` of its voice (or of going on): a canceller lets onsets through.
            if reply.sounded_for(now) >= self._continue and self._pause.confirms(now) and self.echo.near_end():
                reply.pause(self.sink.stop(), ended=reply.recorded and not any(r.busy for r in self._reply_routes[1:]))
                log.info("reply %d paused at %d: a voice over it", reply.id, reply.paused_at)
                return [ReplyPaused(reply.id, reply.paused_at)]
        elif reply.paused is not None and sound is False and now >= reply.paused_at + self.echo.tail() + PAUSE_QUIET:
            log.info("reply %d goes on: the sound did not cut it off", reply.id)
            return [sent for sent in map(self._play, reply.go_on(now)) if sent is not None]
        return []

    def _check_bargein(self, now: int) -> Interruption | None:
        """Called every frame: has the user's speech cut the current reply off?"""
        if self._speech_start is None or self.reply is None or self.reply.gated or not self.replying:
            return None
        sounding = self.reply.paused is not None or self.sink.playing()
        if self.reply.recorded and not (sounding or any(r.busy for r in self._reply_routes[1:])):
            return None  # it has all played; the llm route is busy with the next turn's words, not with it
        audible = any(p.start < now for p in self.reply.spoken)
        tail = self.reply.paused_at + self.echo.tail() if self.reply.paused is not None else 0  # its echo, not the user
        since = max(self._speech_start, tail)
        voiced = (self._vad.detector.voiced_until if self._vad else now) - since
        heard = not audible or self._confirm.confirms(self._speech_start, now)  # as frames come: ready in time
        if audible and (voiced < self.cfg.bargein.min_speech_ms * SAMPLE_RATE // 1000 or not heard or self.echo.is_echo()):
            return None  # maybe a cough (speech, not time, since its onset decides; Silero hears words), or its echo
        return self._interrupt(self._speech_start, audible)

    def _interrupt(self, speech_start: int, audible: bool) -> Interruption:
        reply, self.reply = self.reply, None
        assert reply is not None
        stopped_at = reply.paused_at if reply.paused is not None else self.sink.stop()
        heard = heard_text(reply.spoken, stopped_at) if audible else ""
        if reply.user_text and (not audible or goes_on(speech_start, reply.first_audible, self._continue)):
            # They were still talking: the fragment and its reply are no turn of their own.
            self.history.drop_last_user()
            self._utterance.unanswered(reply.user_text)
            self._resume = None
        elif audible:
            record = self.history.replace_last_assistant if reply.recorded or reply.resumed else self.history.add_assistant
            record(reply.heard(stopped_at), interrupted=True)
            rest = unheard_text(reply.sentences, reply.spoken, stopped_at, self.cfg.bargein.resume)
            self._resume = Resume(rest, reply.text, heard) if rest else None
        log.info("interrupted reply %d at %d; heard %r", reply.id, stopped_at, heard)
        event = Interruption(reply.id, speech_start, stopped_at, heard)
        self.interruptions.append(event)
        return event

    # --- feeding it -------------------------------------------------------------

    async def greet(self) -> None:
        """Say the configured greeting, if any (before `listen`, so the user hears it first)."""
        if self.cfg.greeting:
            await self.bus.publish(Say(self.cfg.greeting))

    async def listen(self, source: Source, vad: Vad, fast: bool = False) -> None:
        """Run the conversation from `source` until it ends.

        In fast mode the pipeline settles after every frame, so processing
        takes no time on the timeline: the result is exact and repeatable.
        """
        self._vad = vad
        async for position, frame in source.frames():
            for event in vad.process(position, frame):
                await self.bus.publish(event)
            self._confirm.feed(position, frame)
            self._pause.feed(position, self.echo.pause_hears(frame))
            for event in [*self._settle_onset(), *self._pause_or_go_on(position + len(frame))]:
                await self.bus.publish(event)
            interruption = self._check_bargein(position + len(frame))
            if interruption is not None:
                await self.bus.publish(interruption)
            if fast:
                await self.bus.drain()
        await self.bus.drain()
