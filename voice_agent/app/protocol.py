"""The JSON side of the PCM-over-WebSocket protocol: what a session tells its client.

Binary messages carry audio both ways (mono PCM16 little-endian: the client's
at 16 kHz or the rate of its first message, the agent's at the rate in
`ready`). Text messages are JSON objects with a "type":

    server -> client
      ready       {"sample_rate": 16000, "agent_sample_rate": 22050, "frame_ms": 20}
      state       {"state": "listening" | "hearing you" | "thinking" | "speaking"}
      transcript  {"role": "user" | "agent", "text": ..., "final": true}
      latency     {"ms": 812.0}   end of the user's speech -> the reply's first audio
      interrupted {"heard": "what of the reply played before the user cut in"}
      clear       {}   drop agent audio not yet played (barge-in)
      error       {"message": ...}  a turn failed (the session goes on) or a message was ignored
    client -> server
      start       {"sample_rate": 48000}   optional, before any audio ("type" may be left out)

`SessionMessages` turns the bus's events into these messages, as the terminal
view does for a live session: a reply's text is sent once it is heard (a
speculative reply may yet be dropped), a speculative transcript once its turn
really ended, and a latency from the end of the words of the latest transcript
to the first audio heard after it.
"""

from __future__ import annotations

import json
from typing import Any

from ..conversation.metrics import ms
from ..conversation.said import SaidTranscripts
from ..core.events import (
    AgentSpeechSent,
    ErrorEvent,
    Interruption,
    ResponseDone,
    Transcript,
    UserStartedSpeaking,
    UserStoppedSpeaking,
)

Message = dict[str, Any]
MIN_RATE, MAX_RATE = 8_000, 96_000


def parse_client_text(text: str) -> tuple[Message | None, str | None]:
    """A client's text message: (the message, None), or (None, why it is ignored)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None, "text messages must be JSON objects; ignored"
    if not isinstance(data, dict):
        return None, "text messages must be JSON objects; ignored"
    return data, None


def client_rate(message: Message) -> int | None:
    """The sample rate a start message asks for; ValueError if it is not a sane one."""
    if "sample_rate" not in message:
        return None
    rate = message["sample_rate"]
    if isinstance(rate, bool) or not isinstance(rate, int) or not MIN_RATE <= rate <= MAX_RATE:
        raise ValueError(f"sample_rate must be an integer from {MIN_RATE} to {MAX_RATE}, got {rate!r}")
    return rate


class SessionMessages:
    """A bus tap: the messages each event means for the client (`take()` collects them)."""

    def __init__(self) -> None:
        self.state = "listening"
        self._out: list[Message] = []
        self._said = SaidTranscripts()
        self._answer_due: int | None = None  # end of the words the next audio answers
        self._audible_reply: int | None = None
        self._unheard: ResponseDone | None = None

    def take(self) -> list[Message]:
        out, self._out = self._out, []
        return out

    def _state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self._out.append({"type": "state", "state": state})

    def _transcript(self, role: str, text: str) -> None:
        self._out.append({"type": "transcript", "role": role, "text": text, "final": True})

    def _user_said(self, words: Transcript) -> None:
        self._transcript("user", words.text)
        self._answer_due = words.end

    def idle(self) -> None:
        """The agent has nothing left to say or play."""
        if self.state in ("speaking", "thinking"):
            self._state("listening")

    def observe(self, event: Any) -> None:
        said = self._said.observe(event)
        if isinstance(event, UserStartedSpeaking):
            self._state("hearing you")
        elif isinstance(event, UserStoppedSpeaking):
            self._state("thinking")
        if said is not None:
            self._user_said(said)
        if isinstance(event, AgentSpeechSent):
            self._heard(event)
        elif isinstance(event, ResponseDone):
            if event.error:
                self._out.append({"type": "error", "message": f"turn dropped: {event.error}"})
            elif event.response_id == self._audible_reply:
                self._transcript("agent", event.text)
            else:
                self._unheard = event  # a speculative reply may yet be dropped
        elif isinstance(event, Interruption):
            self._state("hearing you")
            self._out.append({"type": "interrupted", "heard": event.heard})
        elif isinstance(event, ErrorEvent):
            self._out.append({"type": "error", "message": f"{event.where}: {event.message}"})

    def _heard(self, event: AgentSpeechSent) -> None:
        self._state("speaking")
        self._audible_reply = event.response_id
        if self._unheard is not None and self._unheard.response_id == event.response_id:
            self._transcript("agent", self._unheard.text)
            self._unheard = None
        if self._answer_due is not None:  # the first audio after the user's words (not the greeting)
            self._out.append({"type": "latency", "ms": ms(event.position - self._answer_due)})
            self._answer_due = None
