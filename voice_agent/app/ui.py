"""What the user sees during a live conversation.

`View` turns bus events into a state (listening / hearing you / thinking /
speaking), a level meter, the conversation and each turn's latency. On a
terminal it is a rich live panel redrawn at most `fps` times a second (a fast
token stream never floods the terminal); otherwise it prints one line per
happening, which is also what tests read.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.text import Text

from ..conversation.metrics import TurnRecorder, ms
from ..conversation.progress import RateLimiter
from ..conversation.said import SaidTranscripts
from ..core.events import (
    AgentSpeechSent,
    ErrorEvent,
    Interruption,
    ResponseDone,
    ToolResult,
    UserStartedSpeaking,
    UserStoppedSpeaking,
)


class View:
    def __init__(self, console: Console, recorder: TurnRecorder, fps: float = 10.0, fancy: bool | None = None) -> None:
        self.console = console
        self.recorder = recorder
        self.state = "listening"
        self.level_db = -90.0
        self.lines: deque[Text] = deque(maxlen=12)
        self.fancy = console.is_terminal if fancy is None else fancy
        self._said = SaidTranscripts()  # a speculative transcript is shown once its turn ends
        # Replies come one at a time: the latest one heard, and one streamed but not yet heard.
        self._audible_reply: int | None = None
        self._unheard: ResponseDone | None = None
        self._live: Live | None = None
        self._redraw = RateLimiter(1.0 / fps)
        self._progress = ""

    def __enter__(self) -> View:
        if self.fancy:
            self._live = Live(self._render(), console=self.console, auto_refresh=False, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)

    # --- inputs ---------------------------------------------------------------

    def level(self, db: float) -> None:
        self.level_db = db
        self._draw()

    def status(self, message: str) -> None:
        self._say(Text(f"[{message}]", style="yellow"), force=True)

    def observe(self, event: Any) -> None:
        said = self._said.observe(event)
        if isinstance(event, UserStartedSpeaking):
            self.state = "hearing you"
        elif isinstance(event, UserStoppedSpeaking):
            self.state = "thinking"
        if said is not None:
            self._say(Text(f"you:   {said.text}", style="cyan"))
        if isinstance(event, AgentSpeechSent):
            self.state = "speaking"
            self._audible_reply = event.response_id
            if self._unheard is not None and self._unheard.response_id == event.response_id:
                self._say(Text(f"agent: {self._unheard.text}", style="green"))
                self._unheard = None
            turn = self.recorder.turn_of(event.response_id)
            if turn is not None and turn.user_text and turn.first_audio_at == event.position:  # not the greeting
                self._say(Text(f"        ({ms(event.position - turn.speech_end):.0f} ms to first audio)", style="dim"))
        elif isinstance(event, ResponseDone):
            if event.error:
                self._say(Text(f"agent turn dropped: {event.error}", style="red"), force=True)
            elif event.response_id == self._audible_reply:
                self._say(Text(f"agent: {event.text}", style="green"))
            else:
                # A speculative reply may yet be dropped: show it once it is heard.
                self._unheard = event
        elif isinstance(event, Interruption):
            self.state = "hearing you"
            self._say(Text("        (interrupted)", style="dim"))
        elif isinstance(event, ToolResult):
            mark = "failed: " if event.is_error else ""
            self._say(Text(f"        (tool {event.name}: {mark}{event.content[:80]})", style="dim"))
        elif isinstance(event, ErrorEvent):
            self._say(Text(f"error in {event.where}: {event.message}", style="red"), force=True)

    def progress(self, record: dict[str, Any]) -> None:
        """A reply's progress (already rate-limited by its tracker), shown beside the state."""
        self._progress = f"{record['sentences_spoken']}/{record['sentences']} sentences, {record['audio_s_played']:.1f} s"
        self._draw()

    def idle(self) -> None:
        if self.state == "speaking":
            self.state = "listening"
            if self.fancy:
                self._draw(force=True)
            else:
                self.console.print(Text("        (done speaking)", style="dim"), soft_wrap=True)

    # --- output ---------------------------------------------------------------

    def _say(self, line: Text, force: bool = False) -> None:
        if self.fancy:
            self.lines.append(line)
            self._draw(force=True)
        else:
            self.console.print(line, soft_wrap=True)

    def _draw(self, force: bool = False) -> None:
        if self._live is not None and self._redraw.ready(force):
            self._live.update(self._render(), refresh=True)

    def _render(self) -> Panel:
        bars = max(0, min(30, int((self.level_db + 70) / 2)))
        meter = Text("mic " + "█" * bars + "·" * (30 - bars), style="magenta")
        head = Text(f"{self.state:<12}", style="bold")
        if self.state == "speaking" and self._progress:
            head += Text(f"({self._progress}) ", style="dim")
        return Panel(Group(head + meter, *self.lines), title="voice-agent (Ctrl-C to quit)")
