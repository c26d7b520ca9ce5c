"""Word error rate, with the normalisation speech recognisers need to be compared fairly."""

from __future__ import annotations

import re

_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(n: int) -> str:
    """English words for 0 <= n < 1,000,000 ("10" is said "ten")."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        rest = "" if n % 100 == 0 else " " + number_words(n % 100)
        return _ONES[n // 100] + " hundred" + rest
    rest = "" if n % 1000 == 0 else " " + number_words(n % 1000)
    return number_words(n // 1000) + " thousand" + rest


def normalize(text: str) -> list[str]:
    # Whisper writes "all right" as "alright" on some takes and not on others: one spelling for both.
    text = text.lower().replace("mr.", "mister").replace("-", " ").replace("alright", "all right")
    text = re.sub(r"\d+", lambda m: " " + number_words(int(m.group())) + " " if int(m.group()) < 10**6 else m.group(), text)
    text = re.sub(r"[^a-z0-9' ]+", " ", text)
    return [w.strip("'") for w in text.split() if w.strip("'")]


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def wer(references: list[str], hypotheses: list[str]) -> float:
    """Corpus WER: total edits over total reference words."""
    edits = words = 0
    for ref, hyp in zip(references, hypotheses, strict=True):
        r, h = normalize(ref), normalize(hyp)
        edits += edit_distance(r, h)
        words += len(r)
    return edits / max(words, 1)
