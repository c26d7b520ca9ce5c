"""The user's utterance across the turns the VAD cuts it into.

A pause can end a turn that was not the end of what the user meant to say;
the agent then transcribes and answers a fragment. When the user goes on,
the fragment's words must neither be lost nor passed to the LLM twice. The
rule that keeps both true: a transcript is always *all* the unanswered words
(`carried`, then the new ones), and `carried` is only ever *set* from such a
transcript or cleared when a reply to it is heard, never appended to.

Speculative transcripts (made at a pause, before the turn is known to be
over) go stale the moment the user goes on: `went_on` bumps an epoch, and a
transcript made in an older epoch is thrown away instead of answered.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Utterance:
    carried: str = ""  # words of earlier fragments no heard reply has answered yet
    epoch: int = 0  # bumped each time the user goes on after a pause

    def words(self, new: str) -> str:
        """What a reply must answer: the carried words, then `new`."""
        return f"{self.carried} {new}".strip()

    def went_on(self) -> None:
        """The user spoke again after a pause: speculations made before are stale."""
        self.epoch += 1

    def current(self, epoch: int) -> bool:
        return epoch == self.epoch

    def answered(self) -> None:
        """A reply to all carried words is going ahead."""
        self.carried = ""

    def unanswered(self, text: str) -> None:
        """The reply to `text` (a full transcript, carried words included) did not count: keep them."""
        self.carried = text.strip()


def goes_on(speech_start: int, first_audible: int | None, window: int) -> bool:
    """Did the user start speaking within `window` samples of the reply becoming audible?

    Then their pause was not the end of their turn: the reply was premature
    and they are still talking, rather than cutting a reply off.
    """
    return first_audible is not None and speech_start - first_audible <= window
