"""Which of the user's transcripts were really said, for anything that shows them.

A speculative transcript (made at a pause) is only a guess: the user may go
on. It counts once its turn ends as it stood; a transcript of a turn that
has already ended counts at once. Pure bookkeeping over bus events.
"""

from __future__ import annotations

from typing import Any

from ..core.events import Transcript, UserResumed, UserStoppedSpeaking


class SaidTranscripts:
    def __init__(self) -> None:
        self._guess: Transcript | None = None  # a speculative transcript, final once its turn ends
        self._ended: int | None = None  # start of the latest turn that ended (a guess for it is final)

    def observe(self, event: Any) -> Transcript | None:
        """The transcript `event` makes final, if any."""
        if isinstance(event, UserStoppedSpeaking):
            self._ended = event.start
            guess, self._guess = self._guess, None
            return guess if guess is not None and guess.start == event.start else None
        if isinstance(event, UserResumed):
            self._guess = None
        elif isinstance(event, Transcript):
            if event.speculative and event.start != self._ended:
                self._guess = event  # the user may yet go on
            else:
                return event
        return None
