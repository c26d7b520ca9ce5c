"""Is it speech? Silero VAD (v6, the ONNX model shipped inside faster-whisper).

webrtcvad hears any broadband sound as voice: a cough, a clap, a door, a
dropped object. Silero is a small recurrent network trained to tell speech
from such noise, ~1 ms per 32 ms window on a CPU. Two uses:

- `voiced_ms`: how much of a whole clip is speech (the recogniser drops
  words Whisper invents for breath and noise);
- `SpeechConfirmer`: the same model run window by window as frames arrive,
  from the start of the user's speech, so that a barge-in is confirmed by the
  time webrtcvad has heard enough of it, not after.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.config import BargeInConfig
from ..core.events import SAMPLE_RATE

WINDOW = 512  # samples per Silero decision (32 ms)
CONTEXT = 64  # samples of the window before that the v6 model sees with each window
THRESHOLD = 0.5  # Silero's own speech threshold
WARM_UP = 8 * WINDOW  # run from this long before the start: from a cold state the model misses soft onsets


def silero() -> Any:
    """faster-whisper's Silero session, loaded once per process (its `get_vad_model` is cached)."""
    from faster_whisper.vad import get_vad_model

    return get_vad_model()


def voiced_ms(audio: np.ndarray, enough_ms: float | None = None) -> float:
    """How much of `audio` is speech to Silero VAD.

    Silero decides per 32 ms window, and where the windows fall matters for a
    short word: "Hello?" after 200 ms of pre-roll was 96 ms of speech, 160 ms
    with the windows shifted by half of one. With `enough_ms`, a count under it
    is taken again with the windows shifted, and the larger count is returned.
    """
    best = 0.0
    for shift in (0, WINDOW // 2):
        x = np.asarray(audio[shift:], np.float32)
        padded = np.pad(x, (0, -len(x) % WINDOW or WINDOW))
        probs = np.asarray(silero()(padded)).reshape(-1)
        best = max(best, float(np.sum(probs >= THRESHOLD)) * WINDOW * 1000 / SAMPLE_RATE)
        if enough_ms is None or best >= enough_ms:
            break
    return best


@dataclass
class RecentAudio:
    """The last `keep_s` seconds of the input, on its clock: what the confirmers run Silero over.

    One is fed per input, however many confirmers read it (the pause's two grids of windows)."""

    keep_s: float = 3.0
    audio: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32), repr=False)
    start: int = 0  # input position of audio[0]

    def feed(self, position: int, frame: np.ndarray) -> None:
        if position != self.start + len(self.audio):  # a gap in the input: start afresh
            self.audio, self.start = np.zeros(0, np.float32), position
        keep = int(self.keep_s * SAMPLE_RATE)
        audio = np.concatenate([self.audio, np.asarray(frame, np.float32)])
        self.start += max(0, len(audio) - keep)
        self.audio = audio[-keep:]


@dataclass
class SpeechConfirmer:
    """Silero over the audio since a start position, one window at a time, state carried between.

    `feed` every input frame (`recent` keeps only the last seconds; two
    confirmers may share one `recent`, fed once through either: `pause_confirmer`);
    `confirms(start, now)` runs the model on the windows not yet seen between
    `start` and `now`, and says whether `min_speech_ms` of them were speech.
    It begins `WARM_UP` before `start`, where the input allows, without
    counting those windows. Run window by window with the state carried, the
    model gives the same probabilities as faster-whisper's whole-clip call.
    """

    min_speech_ms: int = 64
    threshold: float = THRESHOLD  # a window with at least this probability is speech
    recent: RecentAudio = field(default_factory=RecentAudio, repr=False)
    offset: int = 0  # the windows fall this many samples earlier (see StaggeredConfirmer)
    _start: int | None = None  # the speech being judged began here
    _next: int = 0  # the next window to run starts here
    _voiced: int = 0  # samples of speech found since _start
    _state: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        silero()  # loaded now (once per process), not during the first barge-in

    def feed(self, position: int, frame: np.ndarray) -> None:
        self.recent.feed(position, frame)

    def confirms(self, start: int, now: int) -> bool:
        """Has Silero heard `min_speech_ms` of speech between `start` and `now`?"""
        kept = self.recent
        if start != self._start:
            self._start, self._next, self._voiced = start, max(start - WARM_UP - self.offset, kept.start), 0
            self._state = None
        if self._next < kept.start:  # not asked for longer than the audio kept: go on from what is left
            self._next, self._state = kept.start, None
        while self._next + WINDOW <= min(now, kept.start + len(kept.audio)):
            if self._window(self._next) >= self.threshold and self._next + WINDOW > start:
                self._voiced += WINDOW
            self._next += WINDOW
        return self._voiced * 1000 >= self.min_speech_ms * SAMPLE_RATE

    def speech_ms(self) -> float:
        """Speech found so far in the sound being judged."""
        return self._voiced * 1000 / SAMPLE_RATE

    def _window(self, at: int) -> float:
        audio, i = self.recent.audio, at - self.recent.start
        before = audio[max(0, i - CONTEXT) : i]
        x = np.concatenate([np.zeros(CONTEXT - len(before), np.float32), before, audio[i : i + WINDOW]])
        h, c = self._state or (np.zeros((1, 1, 128), np.float32), np.zeros((1, 1, 128), np.float32))
        out, h, c = silero().session.run(None, {"input": x[None], "h": h, "c": c})
        self._state = (h, c)
        return float(np.asarray(out).reshape(-1)[0])


@dataclass
class StaggeredConfirmer:
    """Two confirmers whose windows fall half a window apart; either one hearing speech is enough.

    Where a 32 ms window falls on a soft first word matters: in a room replay
    (the canceller's output) one grid of windows gave "seven" under 0.15 for
    250 ms while the other, 16 ms off, passed 0.15 at 144 ms. Replaying 122
    cut-ins of 26 room recordings, the pause's decision came p50 113 / p95
    250 ms after the first word (one grid: 118 / 264; 34 rather than 42 of
    them later than 150 ms), and the agent's echo alone met it 19 times
    rather than 18 (replays with a cold canceller, so not the live figures).
    """

    first: SpeechConfirmer
    second: SpeechConfirmer

    def feed(self, position: int, frame: np.ndarray) -> None:
        self.first.feed(position, frame)  # they share `recent`

    def confirms(self, start: int, now: int) -> bool:
        return self.first.confirms(start, now) or self.second.confirms(start, now)


class NoConfirmation:
    """`[bargein] confirm = "none"`: webrtcvad's decision stands alone."""

    def feed(self, position: int, frame: np.ndarray) -> None:
        pass

    def confirms(self, start: int, now: int) -> bool:
        return True


def speech_confirmer(cfg: BargeInConfig, recent: RecentAudio | None = None) -> SpeechConfirmer | NoConfirmation:
    """The confirmer `[bargein] confirm` asks for (the config has checked the name)."""
    if cfg.confirm != "silero":
        return NoConfirmation()
    return SpeechConfirmer(cfg.confirm_ms, recent=recent or RecentAudio())


def pause_confirmer(cfg: BargeInConfig, recent: RecentAudio | None = None) -> StaggeredConfirmer | NoConfirmation:
    """What a sound needs to pause the agent: one Silero window (of two staggered grids) at `pause_voice_threshold` (0.15;
    `pause_for = "voice"`), or nothing (`pause_for = "sound"`, or no Silero at all: `confirm = "none"`).

    The canceller takes the soft onset of a word down while the agent talks: in
    room replays Silero gave a user's first windows 0.1-0.2 (0.26-0.41 clean):
    a bar at 0.5 paused 100-160 ms later than one at 0.3 on some cut-ins, and
    0.3 60-100 ms later than 0.15 on the slowest. The price: some noises reach
    it (tests/test_speech_check.py and README: a pause, not a cut).
    """
    if cfg.pause_for != "voice" or cfg.confirm != "silero":
        return NoConfirmation()
    recent = recent or RecentAudio()
    one = WINDOW * 1000 // SAMPLE_RATE
    return StaggeredConfirmer(*(SpeechConfirmer(one, cfg.pause_voice_threshold, recent, offset) for offset in (0, WINDOW // 2)))
