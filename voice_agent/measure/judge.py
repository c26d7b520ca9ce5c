"""Judging a conversation from its audio: the user's recordings and what the agent played.

Everything here is a pure function over sample arrays on the session's 16 kHz
timeline. Nothing is taken from the agent's own account (its VAD decisions,
its turn events): where a user's speech ends is read from the recording's
energy, when the agent spoke is read from the agent track, and what the
LLM was given comes from the LLM server's request log.

The rules, in one place:

- Speech extent of a recording (`speech_extent`): 10 ms windows; threshold
  max(peak - 25 dB, 10th percentile + 15 dB); speech is a run of >= 50 ms of
  windows above it; onset = start of the first run, end of speech = end of
  the last run.
- Agent audio is audible in a 10 ms window whose level is above -50 dBFS
  (the agent track is clean synthesized speech, so any sound is the agent).
  One agent reply is the audible part of what the sink played for one reply
  id (`audible_spans`); read from the track alone, audible runs less than
  700 ms apart (`agent_replies`).
- A recording is answered if an agent reply starts at or after its end of
  speech and before the next recording is placed; the latency is from its
  end of speech to the first such start. It is premature if agent audio is
  audible anywhere between its speech onset and its end of speech, however
  briefly. `answers` counts the agent replies that start between its onset
  and the next recording: more than one is a failure.
- The words the LLM received for a recording: the user messages of the last
  request the server saw in its window that are new since the request
  before (a fragment kept as a turn of its own shows up as a repeat).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..conversation.metrics import summary
from .wer import normalize, wer

RATE = 16000
WINDOW_S = 0.010
SPEECH_RUN_S = 0.050
AGENT_FLOOR_DB = -50.0
REPLY_GAP_S = 0.700
STOP_SILENCE_S = 0.500  # a barge-in stop is followed by at least this much agent silence


def window_db(audio: np.ndarray, rate: int = RATE) -> np.ndarray:
    """Mean power of each whole 10 ms window, in dB relative to full scale (a +-1 square wave is 0 dB)."""
    n = int(rate * WINDOW_S)
    usable = len(audio) // n * n
    frames = np.asarray(audio[:usable], dtype=np.float64).reshape(-1, n)
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)


def runs(mask: np.ndarray, min_len: int = 1) -> list[tuple[int, int]]:
    """[start, end) index ranges where `mask` holds for at least `min_len` items."""
    padded = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2]) if b - a >= min_len]


def speech_extent(audio: np.ndarray, rate: int = RATE) -> tuple[int, int] | None:
    """(onset, end) of a recording's speech, in samples from its start; None if it holds none.

    The rule: 10 ms windows; threshold max(peak - 25 dB, 10th percentile + 15 dB),
    so a loud word sets the bar for a noisy recording and the background sets it
    for a quiet one; speech is any run of at least 50 ms of windows above the
    threshold (shorter blips are clicks); the onset is the start of the first
    run and the end of speech is the end of the last one.
    """
    db = window_db(audio, rate)
    if len(db) == 0:
        return None
    threshold = max(float(db.max()) - 25, float(np.percentile(db, 10)) + 15)
    n = int(rate * WINDOW_S)
    found = runs(db > threshold, min_len=round(SPEECH_RUN_S / WINDOW_S))
    if not found:
        return None
    return found[0][0] * n, found[-1][1] * n


def agent_replies(agent: np.ndarray, rate: int = RATE) -> list[tuple[int, int]]:
    """(start, end) of each agent reply on the agent track, in samples (rule in the module doc)."""
    n = int(rate * WINDOW_S)
    audible = runs(window_db(agent, rate) > AGENT_FLOOR_DB)
    gap = round(REPLY_GAP_S / WINDOW_S)
    replies: list[list[int]] = []
    for a, b in audible:
        if replies and a - replies[-1][1] < gap:
            replies[-1][1] = b
        else:
            replies.append([a, b])
    return [(a * n, b * n) for a, b in replies]


def audible_spans(agent: np.ndarray, spans: Sequence[tuple[int, int]], rate: int = RATE) -> list[tuple[int, int]]:
    """Each span's audible part (first to last audible window), for spans known to hold one reply each
    (the sink's record of what it played, grouped by reply); spans with nothing audible are left out."""
    n = int(rate * WINDOW_S)
    out = []
    for start, end in spans:
        first = max(0, start // n)
        loud = np.flatnonzero(window_db(agent[first * n : math.ceil(end / n) * n], rate) > AGENT_FLOOR_DB)
        if len(loud):
            out.append(((first + int(loud[0])) * n, (first + int(loud[-1]) + 1) * n))
    return out


def audible_between(agent: np.ndarray, start: int, end: int, rate: int = RATE) -> int:
    """Samples of audible agent audio in [start, end) (whole 10 ms windows)."""
    n = int(rate * WINDOW_S)
    first, last = max(0, start // n), max(0, math.ceil(end / n))
    db = window_db(agent[first * n : last * n], rate)
    return int(np.count_nonzero(db > AGENT_FLOOR_DB)) * n


def silent_from(agent: np.ndarray, position: int, rate: int = RATE) -> int | None:
    """Where the agent track goes silent (for at least 500 ms) at or after `position`; None if it never does."""
    n = int(rate * WINDOW_S)
    first = max(0, position // n)
    db = window_db(agent[first * n :], rate)
    quiet = runs(db <= AGENT_FLOOR_DB, min_len=round(STOP_SILENCE_S / WINDOW_S))
    if quiet:
        return (first + quiet[0][0]) * n
    tail = runs(db <= AGENT_FLOOR_DB)  # silent to the end of the track, however short
    if tail and tail[-1][1] == len(db):
        return (first + tail[-1][0]) * n
    return None


@dataclass(frozen=True)
class Placement:
    """One user recording placed on the user track."""

    name: str
    start: int  # timeline sample where the recording starts
    audio: np.ndarray  # the recording itself, 16 kHz mono
    reference: str = ""  # what was said (the manifest's transcript)


@dataclass(frozen=True)
class Request:
    """One request the LLM server received: when (timeline sample) and its messages."""

    at: int
    messages: list[dict[str, Any]]

    def user_lines(self) -> list[str]:
        return [str(m.get("content") or "") for m in self.messages if m.get("role") == "user"]


@dataclass
class Verdict:
    name: str
    onset: int | None  # timeline samples; None: no speech found in the recording
    end: int | None
    answered: bool
    premature: bool
    premature_ms: float  # agent audio audible while the user spoke
    latency_ms: float | None
    answers: int
    received: str  # the words the LLM received for this recording
    repeated: list[str] = field(default_factory=list)  # phrases the LLM received more often than said
    reference: str = ""

    def as_dict(self) -> dict[str, Any]:
        ms = lambda s: None if s is None else round(s / RATE * 1000, 1)
        return {
            "file": self.name,
            "speech_onset_ms": ms(self.onset),
            "speech_end_ms": ms(self.end),
            "answered": self.answered,
            "premature": self.premature,
            "premature_ms": self.premature_ms,
            "latency_ms": self.latency_ms,
            "answers": self.answers,
            "received": self.received,
            "repeated": self.repeated,
            "reference": self.reference,
        }


def repeated_phrases(received: str, reference: str = "") -> list[str]:
    """Phrases the LLM received more often than the user said them (words passed twice).

    Any run of two or more words that occurs more often in `received` than in
    `reference` (normalised as for WER), reported longest first with the
    phrases inside it left out; and single words said back to back ("yes yes")
    more often than the reference has them so.
    """
    got, ref = normalize(received), normalize(reference)
    found: list[tuple[str, ...]] = []
    for n in range(len(got) // 2, 1, -1):
        grams, ref_grams = Counter(_grams(got, n)), Counter(_grams(ref, n))
        for gram, count in grams.items():
            if count > max(1, ref_grams[gram]) and not any(_inside(gram, f) for f in found):
                found.append(gram)
    doubled, ref_doubled = Counter(_doubles(got)), Counter(_doubles(ref))
    for word, count in doubled.items():
        if count > ref_doubled[word] and not any(word in f for f in found):
            found.append((word,))
    return [" ".join(f) for f in found]


def _grams(words: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]


def _doubles(words: list[str]) -> list[str]:
    return [a for a, b in itertools.pairwise(words) if a == b]


def _inside(small: tuple[str, ...], big: tuple[str, ...]) -> bool:
    return any(big[i : i + len(small)] == small for i in range(len(big) - len(small) + 1))


def received_words(requests: Sequence[Request], start: int, stop: int, before: Request | None) -> tuple[str, Request | None]:
    """What the LLM received for the window [start, stop): the new user lines of its last request.

    New means after the last user line that `before` (the last request of the
    window before) also held; with no such line, only the last user line counts;
    with no `before` (the session's first window) every user line is new.
    Returns the words and that request (the `before` of the next window).
    """
    inside = [r for r in requests if start <= r.at < stop and r.messages and r.messages[-1].get("role") == "user"]
    if not inside:
        return "", before
    last = inside[-1]
    lines = last.user_lines()
    if before is not None:
        seen = set(before.user_lines())
        idx = max((i for i, line in enumerate(lines[:-1]) if line in seen), default=None)
        lines = lines[idx + 1 :] if idx is not None else lines[-1:]
    return " ".join(line.strip() for line in lines), last


def judge(
    placements: Sequence[Placement],
    agent: np.ndarray,
    requests: Sequence[Request] = (),
    reply_spans: Sequence[tuple[int, int]] | None = None,
) -> list[Verdict]:
    """One verdict per placed recording, from the recordings, the agent track and the request log.

    `agent` is the agent track at 16 kHz on the same timeline as the placements.
    `reply_spans`, when the sink's record says which audio belonged to one reply,
    are [start, end) spans of one reply each: a long silence inside a reply (a slow
    synthesis) is then not a new start. Without them, replies are read from the
    track alone (`agent_replies`).
    """
    ordered = sorted(placements, key=lambda p: p.start)
    replies = agent_replies(agent) if reply_spans is None else audible_spans(agent, sorted(reply_spans))
    verdicts: list[Verdict] = []
    before: Request | None = None
    for i, p in enumerate(ordered):
        stop = ordered[i + 1].start if i + 1 < len(ordered) else max(len(agent), p.start + len(p.audio))
        words, before = received_words(requests, p.start, stop, before)
        extent = speech_extent(p.audio)
        if extent is None:
            verdicts.append(Verdict(p.name, None, None, False, False, 0.0, None, 0, words, [], p.reference))
            continue
        onset, end = p.start + extent[0], p.start + extent[1]
        after = [a for a, _ in replies if end <= a < stop]
        overlap = audible_between(agent, onset, end)
        latency = round((after[0] - end) / RATE * 1000, 1) if after else None
        answers = sum(1 for a, _ in replies if onset <= a < stop)
        verdicts.append(
            Verdict(
                p.name, onset, end, bool(after), overlap > 0, round(overlap / RATE * 1000, 1), latency,
                answers, words, repeated_phrases(words, p.reference), p.reference,
            )
        )  # fmt: skip
    return verdicts


def summarize(verdicts: Sequence[Verdict]) -> dict[str, Any]:
    """The session's figures: counts, the failing files by kind, latency over recordings, session WER."""
    spoken = [v for v in verdicts if v.onset is not None]
    return {
        "recordings": len(verdicts),
        "answered": sum(v.answered for v in verdicts),
        "unanswered": [v.name for v in spoken if not v.answered],
        "premature": [v.name for v in verdicts if v.premature],
        "no_speech_found": [v.name for v in verdicts if v.onset is None],
        "answered_more_than_once": [v.name for v in verdicts if v.answers > 1],
        "words_passed_twice": [v.name for v in verdicts if v.repeated],
        "response_latency_ms": summary([v.latency_ms for v in verdicts if v.latency_ms is not None]),
        "session_wer": round(wer([v.reference for v in spoken], [v.received for v in spoken]), 3) if spoken else None,
    }
