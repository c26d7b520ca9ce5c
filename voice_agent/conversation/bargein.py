"""What the user heard of an interrupted reply, and what is left to say.

Pure functions over where each piece of audio played on the input clock. A
piece cut off part-way is credited with the words whose audio had ended by
the cut (Piper says where each word ends: `AudioChunk.word_ends`); without
those, with the share of its words proportional to the share of its audio
that played, rounded down to a whole word. The history then never claims a
word the user did not hear.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..core.events import AudioChunk

# A word counts as heard once this much more has played after its end: where the speaker stopped is
# known from the devices' clocks to within tens of ms (a 200 ms sound server jitters most), and the
# history must never claim a word that was cut off in its last sounds.
WORD_END_MARGIN_MS = 50


@dataclass(frozen=True)
class Spoken:
    """One audio piece of the current reply, as placed on the input clock."""

    start: int
    end: int
    text: str
    sentence_index: int
    audio: AudioChunk | None = field(default=None, repr=False, compare=False)  # kept so a paused reply can go on


def _words_heard(piece: Spoken, stop_at: int) -> int:
    words = piece.text.split()
    if stop_at >= piece.end:
        return len(words)
    if stop_at <= piece.start:
        return 0
    share = (stop_at - piece.start) / max(1, piece.end - piece.start)
    audio = piece.audio
    if audio is not None and len(audio.word_ends) == len(words):
        played = share * len(audio.samples) - audio.sample_rate * WORD_END_MARGIN_MS // 1000
        return sum(end <= played for end in audio.word_ends)
    return int(share * len(words))


def heard_text(spoken: list[Spoken], stop_at: int) -> str:
    """The words that had played by `stop_at`, cut at a word boundary."""
    words: list[str] = []
    for piece in spoken:
        words += piece.text.split()[: _words_heard(piece, stop_at)]
    return " ".join(words)


def unheard_text(sentences: list[str], spoken: list[Spoken], stop_at: int, mode: str = "repeat") -> str:
    """What is left to say of `sentences` after an interruption at `stop_at`.

    mode "repeat" restarts the sentence that was cut; "continue" picks up at
    the first word not heard. Sentences not yet played are all left.
    """
    if mode not in ("repeat", "continue"):
        raise ValueError(f"resume mode must be 'repeat' or 'continue', not {mode!r}")
    heard_per_sentence: dict[int, int] = {}
    for piece in spoken:
        heard_per_sentence[piece.sentence_index] = heard_per_sentence.get(piece.sentence_index, 0) + _words_heard(piece, stop_at)
    rest: list[str] = []
    for index, sentence in enumerate(sentences):
        words = sentence.split()
        heard = heard_per_sentence.get(index, 0)
        if heard >= len(words):
            continue  # fully heard
        if heard and mode == "continue":
            words = words[heard:]
        rest.append(" ".join(words))
    return " ".join(rest)


def split_at(spoken: list[Spoken], stop_at: int) -> tuple[list[Spoken], list[AudioChunk]]:
    """A reply paused at `stop_at`: its pieces as heard up to there, and the audio still to play.

    The piece cut part-way keeps the words credited as heard (as `heard_text`
    counts them) and its audio up to the cut; the rest of its audio, with the
    other words, goes first in the audio to play, then every later piece. So
    a paused reply that goes on says every word once, and the history's
    account of what was heard does not change.
    """
    heard: list[Spoken] = []
    rest: list[AudioChunk] = []
    for piece in spoken:
        if piece.end <= stop_at:
            heard.append(piece)
            continue
        if piece.audio is None:
            raise ValueError("a piece without its audio cannot be paused")
        if piece.start >= stop_at:
            rest.append(piece.audio)
            continue
        words, n = piece.text.split(), _words_heard(piece, stop_at)
        chunk = piece.audio
        cut = len(chunk.samples) * (stop_at - piece.start) // (piece.end - piece.start)
        ends = chunk.word_ends if len(chunk.word_ends) == len(words) else ()
        before = replace(chunk, samples=chunk.samples[:cut], text=" ".join(words[:n]), last_in_sentence=False, word_ends=ends[:n])
        heard.append(replace(piece, end=stop_at, text=before.text, audio=before))
        after = tuple(max(0, e - cut) for e in ends[n:])
        rest.append(replace(chunk, samples=chunk.samples[cut:], text=" ".join(words[n:]), word_ends=after))
    return heard, rest
