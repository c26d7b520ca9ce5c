"""Sentence buffer: text deltas from an LLM in, speakable chunks out.

Pure logic, no I/O. `SentenceBuffer.push(delta)` returns the chunks that are
ready; `flush()` returns the rest when the reply ends. The invariant the tests
check: `" ".join(chunks) == speakable(whole_text)`, no chunk is empty and no
word is split.

A full stop is only a boundary once the next word's first character is known,
because "3.14", "e.g. the" and "Dr. Smith" look like sentence ends until then.
The first chunk of a reply may end at a clause (comma, colon, dash) so speech
starts sooner; later chunks wait for whole sentences, which sound better.
Without a clause mark, the first chunk may still end after `first_words`
words, before a word that opens a phrase ("and", "with", "because"...),
where a speaker could breathe: an LLM at 30 tokens/s needs half a second for
a 13-word sentence, and those first words play for longer than the rest of
the sentence takes to arrive and be synthesized, so no gap follows them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Abbreviations that end with a full stop but rarely end a sentence.
ABBREVIATIONS = frozenset(
    """mr mrs ms dr prof sr jr st vs etc e.g i.e u.s u.k u.n a.m p.m approx
    no fig inc ltd co corp dept est mt jan feb mar apr jun jul aug sep sept
    oct nov dec mon tue wed thu fri sat sun""".split()
)
_CLOSERS = "\"')]}»”’"
_SENTENCE_END = re.compile(r"([.!?…]+)([" + re.escape(_CLOSERS) + r"]*)(?=\s)")
# Words that open a phrase: a cut just before one sounds like a breath, not a break.
PHRASE_OPENERS = frozenset(
    """and but or so because since although though which that who whom whose when while where if unless
    until to with without for of in on at from about as than like into onto over under after before""".split()
)
_CLAUSE_END = re.compile(r"(?:[,;:]|\s[-–—])(?=\s)")
_TOKENS = re.compile(r"\n|[^\S\n]+|\S+")
_HEADING = re.compile(r"#{1,6}")
_BULLET = re.compile(r"[-*+•]")
_INLINE_MARKUP = re.compile(r"`+|\*\*|__|(?<!\d)\*|\*(?!\d)|~~")


def clean_word(word: str, line_start: bool) -> str:
    """A word with the markdown a listener should not hear removed ('' to drop it)."""
    if line_start and (_HEADING.fullmatch(word) or _BULLET.fullmatch(word)):
        return ""
    return _INLINE_MARKUP.sub("", word)


def speakable(text: str) -> str:
    """The whole of `text` as it should be spoken: markdown stripped, spaces collapsed."""
    words: list[str] = []
    line_start = True
    for token in _TOKENS.findall(text):
        if token == "\n":
            line_start = True
        elif not token.isspace():
            word = clean_word(token, line_start)
            line_start = False
            if word:
                words.append(word)
    return " ".join(words)


@dataclass
class SentenceBuffer:
    max_chars: int = 220  # flush unpunctuated text at a word boundary past this
    first_clause_min_chars: int = 12  # 0 disables the early first clause
    first_words: int = 5  # the first chunk may end after this many words, before a phrase opener (0: off)
    first_words_max: int = 7  # ... and at the latest here, at any word

    def __post_init__(self) -> None:
        self._raw = ""  # text whose last word may still be incomplete
        self._text = ""  # cleaned, complete words; "\n" kept as a line mark
        self._line_start = True
        self._chunks_out = 0

    def push(self, delta: str) -> list[str]:
        self._raw += delta
        cut = max(self._raw.rfind(" "), self._raw.rfind("\n"), self._raw.rfind("\t"))
        if cut >= 0:
            self._absorb(self._raw[: cut + 1])
            self._raw = self._raw[cut + 1 :]
        return self._release(final=False)

    def flush(self) -> list[str]:
        """End of the reply: everything left, as chunks."""
        self._absorb(self._raw + " ")
        self._raw = ""
        chunks = self._release(final=True)
        self.__post_init__()
        return chunks

    # --- internals ------------------------------------------------------------

    def _absorb(self, text: str) -> None:
        for token in _TOKENS.findall(text):
            if token == "\n":
                self._line_start = True
                self._text += "\n"
            elif token.isspace():
                if self._text and not self._text[-1].isspace():
                    self._text += " "
            else:
                word = clean_word(token, self._line_start)
                self._line_start = False
                if word:
                    self._text += word

    def _release(self, final: bool) -> list[str]:
        chunks: list[str] = []
        while True:
            cut = self._find_cut(final)
            if cut is None:
                break
            chunk = " ".join(self._text[:cut].split())
            self._text = self._text[cut:].lstrip(" \t")
            if chunk:
                chunks.append(chunk)
                self._chunks_out += 1
        if final:
            rest = " ".join(self._text.split())
            if rest:
                chunks.append(rest)
            self._text = ""
        return chunks

    def _find_cut(self, final: bool) -> int | None:
        """Index just past the earliest boundary in `_text`, or None to wait."""
        text = self._text
        candidates: list[int] = []
        newline = text.find("\n")
        if newline >= 0:
            candidates.append(newline + 1)
        for m in _SENTENCE_END.finditer(text):
            verdict = self._is_sentence_end(text, m, final)
            if verdict is None:
                break  # undecided until more text arrives
            if verdict:
                candidates.append(m.end())
                break
        if self._chunks_out == 0 and self.first_clause_min_chars:
            for m in _CLAUSE_END.finditer(text):
                if m.start() >= self.first_clause_min_chars:
                    candidates.append(m.end())
                    break
        if self._chunks_out == 0 and self.first_words and not final:
            cut = self._first_words_cut(text)
            if cut is not None:
                candidates.append(cut)
        if candidates:
            return min(candidates)
        if len(text) > self.max_chars:
            space = text.rfind(" ", 0, self.max_chars + 1)
            if space <= 0:
                space = text.find(" ", self.max_chars)
            return space if space > 0 else None
        return None

    def _first_words_cut(self, text: str) -> int | None:
        """Just before the first phrase opener after `first_words` words (every word in `text` is complete)."""
        words = list(re.finditer(r"\S+", text))
        for i in range(self.first_words, len(words)):
            if i >= self.first_words_max or words[i].group().lower() in PHRASE_OPENERS:
                return words[i].start()
        return None

    def _is_sentence_end(self, text: str, m: re.Match[str], final: bool) -> bool | None:
        # The incomplete word still in _raw is enough to see the next character.
        following = (text[m.end() :] + self._raw).lstrip()
        if not following:
            return True if final else None
        if following[0].islower():
            return False
        if m.group(1) in ("...", "…") and re.match(r"I\b", following):
            return False  # "Well... I guess" trails off, it does not end
        if m.group(1) != ".":
            return True
        word_start = max(text.rfind(" ", 0, m.start()), text.rfind("\n", 0, m.start())) + 1
        word = text[word_start : m.start()].lower().lstrip("(\"'“‘[")
        if word in ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
            return False
        at_line_start = word_start == 0 or text[word_start - 1] == "\n"
        if word.isdigit() and at_line_start:
            return False  # "1. Apples" in a numbered list
        return True
