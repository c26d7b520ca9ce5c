"""Is the user done? A transcript that reads as finished ends the turn sooner.

The end-of-turn silence is dead time; most of it is spent making sure the
user is not just pausing mid-sentence. When the speculative transcript of a
pause already reads as a finished sentence (Whisper punctuates: a full stop,
question or exclamation mark, not a trailing "and" or "..."), the turn may
end after the shorter `quick_end_of_turn_ms`; otherwise the full silence is
waited for. If the user goes on anyway, barge-in treats them as still talking.
"""

from __future__ import annotations

import re

# Words a finished sentence rarely ends on: the speaker is likely to go on.
DANGLING = frozenset(
    """a an the and or but so because if then than that to of for with from in on at by as into about over
    under after before until is are was were be been being am do does did have has had can could will would
    shall should may might must not no very more most just also there this these those some any all every each
    my your our their his her its um uh er like which who whose whom what where when why how whether while although""".split()
)


def looks_complete(text: str) -> bool:
    text = text.strip()
    if not text or text.endswith(("...", "…", ",", "-", ":", ";")):
        return False
    if not re.search(r"[.?!][\"')\]]*$", text):
        return False
    words = re.findall(r"[\w']+", text.lower())
    return bool(words) and words[-1] not in DANGLING
