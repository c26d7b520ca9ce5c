"""Voice activity detection: where the user's turns start and end.

`TurnDetector` is a pure state machine over (frame, voiced) pairs: it decides
when speech really started (at least `min_speech_ms` voiced within a short
window, so clicks do not count), keeps `pre_roll_ms` of audio from before that
so first syllables reach the recogniser, and ends the turn after
`end_of_turn_ms` of silence. Positions are sample indices on the input clock.

`Vad` feeds it with webrtcvad's per-frame decision.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
import webrtcvad

from ..core.config import VADConfig
from ..core.events import (
    SAMPLE_RATE,
    UserPaused,
    UserResumed,
    UserStartedSpeaking,
    UserStoppedSpeaking,
)
from ..core.level import level_db

VadEvent = UserStartedSpeaking | UserStoppedSpeaking | UserPaused | UserResumed

MAX_TURN_S = 30  # Whisper's window: a longer turn is cut here


@dataclass
class TurnDetector:
    cfg: VADConfig
    _frames: deque[tuple[int, np.ndarray, bool, bool]] = field(default_factory=deque)  # (pos, audio, voiced, loud)
    _speech: list[np.ndarray] = field(default_factory=list)
    _in_speech: bool = False
    _audio_start: int = 0
    _sound_start: int = 0  # the turn's first sound (UserStartedSpeaking's position)
    _last_voiced_end: int = 0
    _silent_frames: int = 0
    _paused: bool = False
    _early_frames: int = 0  # when set, this much silence (not end_of_turn_ms) ends the current turn

    def __post_init__(self) -> None:
        if self.cfg.frame_ms not in (10, 20, 30):
            raise ValueError(f"VAD frame must be 10, 20 or 30 ms, not {self.cfg.frame_ms}")
        self.frame_len = SAMPLE_RATE * self.cfg.frame_ms // 1000
        self._min_voiced = max(1, -(-self.cfg.min_speech_ms // self.cfg.frame_ms))
        self._window = self._min_voiced + max(1, self._min_voiced // 2)  # tolerate short dips
        self._min_heard = max(1, -(-self._min_voiced // 2))  # of them, voiced by webrtcvad
        self._pre_roll = self.cfg.pre_roll_ms // self.cfg.frame_ms
        self._end_frames = max(1, self.cfg.end_of_turn_ms // self.cfg.frame_ms)
        speculate = self.cfg.speculate_ms // self.cfg.frame_ms
        self._pause_frames = speculate if 0 < speculate < self._end_frames else 0

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    @property
    def stirring(self) -> bool:
        """Between turns, a sound within the last start window: maybe a turn starting, too soon to tell."""
        return not self._in_speech and any(f[2] or f[3] for f in list(self._frames)[-self._window :])

    @property
    def sound_start(self) -> int | None:
        """Where the sound in progress began: the turn's start in a turn, else its first frame in the start window."""
        if self._in_speech:
            return self._sound_start
        return next((f[0] for f in list(self._frames)[-self._window :] if f[2] or f[3]), None)

    def sounding(self, now: int, min_frames: int, quiet_samples: int) -> bool | None:
        """Is someone making a sound (over the agent's voice)? True: yes; False: quiet again; None: unsure.

        Between turns, yes at `min_frames` of sound in the last start window once
        webrtcvad has heard one of them, and quiet when none is left in it; in a
        turn, yes until it has been quiet for `quiet_samples`.
        """
        if self._in_speech:
            return now - self._last_voiced_end < quiet_samples
        recent = list(self._frames)[-self._window :]
        if not any(f[2] or f[3] for f in recent):
            return False
        heard = any(f[2] for f in recent) and sum(f[2] or f[3] for f in recent) >= min_frames
        return True if heard else None

    @property
    def voiced_until(self) -> int:
        """The end of the latest loud frame of the turn in progress."""
        return self._last_voiced_end

    def end_after(self, turn_start: int, silence_ms: int) -> None:
        """The turn that started at `turn_start` ends after `silence_ms` of silence (shorter or longer)."""
        if self._in_speech and self._paused and self._audio_start == turn_start and silence_ms > 0:
            self._early_frames = max(1, silence_ms // self.cfg.frame_ms)

    def update(
        self, position: int, frame: np.ndarray, voiced: bool, loud: bool | None = None
    ) -> list[VadEvent]:
        """One frame starting at sample `position`; returns the events it caused.

        `voiced` decides that speech goes on; `loud` (clearly above the noise
        floor, default: same as voiced) places the boundaries on the words.
        """
        loud = voiced if loud is None else loud
        end = position + len(frame)
        if not self._in_speech:
            self._frames.append((position, frame, voiced, loud))
            while len(self._frames) > self._window + self._pre_roll:
                self._frames.popleft()
            recent = list(self._frames)[-self._window :]
            # webrtcvad may lose a word it has begun to hear (a telephone "Hello?" was voiced for
            # 4 frames, then only loud): once it has heard some, loud frames count as speech too.
            heard = sum(f[2] for f in recent) >= self._min_heard
            if (voiced or loud) and heard and sum(f[2] or f[3] for f in recent) >= self._min_voiced:
                return [self._start(recent)]
            return []
        self._speech.append(frame)
        events: list[VadEvent] = []
        if loud:
            self._last_voiced_end = end
        # Inside a turn, level decides: webrtcvad hangs on for 100-400 ms after
        # the words end (that would be dead time) and may miss a loud fricative.
        if loud:
            self._silent_frames = 0
            if self._paused:
                self._paused = False
                self._early_frames = 0
                events.append(UserResumed(position))
        else:
            self._silent_frames += 1
        too_long = end - self._audio_start >= MAX_TURN_S * SAMPLE_RATE
        if self._silent_frames >= (self._early_frames or self._end_frames) or too_long:
            return [*events, self._stop(decided_at=end)]
        if self._pause_frames and self._silent_frames == self._pause_frames:
            self._paused = True
            start, last, audio = self._turn_audio()
            events.append(UserPaused(start=start, end=last, decided_at=end, audio=audio))
        return events

    def reset(self) -> None:
        self._frames.clear()
        self._speech = []
        self._in_speech = False
        self._silent_frames = 0
        self._paused = False
        self._early_frames = 0

    def _start(self, recent: list[tuple[int, np.ndarray, bool, bool]]) -> UserStartedSpeaking:
        first_voiced = next(f[0] for f in recent if f[2])
        first = next((f[0] for f in recent if f[3]), first_voiced)
        self._in_speech = True
        self._sound_start = first
        self._audio_start = self._frames[0][0]
        self._speech = [f[1] for f in self._frames]
        self._last_voiced_end = recent[-1][0] + len(recent[-1][1])
        self._silent_frames = 0
        self._frames.clear()
        return UserStartedSpeaking(position=first)

    def _turn_audio(self) -> tuple[int, int, np.ndarray]:
        audio = np.concatenate(self._speech) if self._speech else np.zeros(0, np.float32)
        # Keep a little of the trailing silence: Whisper ends words better with it.
        keep = min(len(audio), self._last_voiced_end - self._audio_start + SAMPLE_RATE // 5)
        return self._audio_start, self._last_voiced_end, audio[:keep]

    def _stop(self, decided_at: int) -> UserStoppedSpeaking:
        start, end, audio = self._turn_audio()
        self.reset()
        return UserStoppedSpeaking(start=start, end=end, decided_at=decided_at, audio=audio)


class NoiseFloor:
    """The background level: a low percentile of the last few seconds of frames.

    A percentile ignores a single very quiet frame (which would make steady
    room noise look like speech) and follows a room that gets noisier within
    seconds, while the gaps between words keep it from climbing during speech.
    Digital silence (a muted or not yet started input, zero padding) is not
    background: it says nothing about the room, so it is left out. Otherwise
    a second of zeros pins the floor at `lowest_db` for the whole window and
    the hiss that follows looks like speech. The first real frame sets the
    floor at once.
    """

    def __init__(
        self, window_frames: int = 150, percentile: float = 5.0, lowest_db: float = -70.0, digital_db: float = -90.0
    ) -> None:
        self._recent: deque[float] = deque(maxlen=window_frames)
        self.percentile = percentile
        self.lowest_db = lowest_db
        self.digital_db = digital_db
        self.level = lowest_db
        self._count = 0

    def update(self, db: float) -> float:
        if db < self.digital_db:
            return self.level
        first = not self._recent
        self._recent.append(db)
        self._count += 1
        # The floor moves slowly; recomputing it every 5th frame (and on any
        # quieter frame) costs a fifth of the CPU, which matters while idle.
        if first or self._count % 5 == 1 or db < self.level:
            self.level = max(float(np.percentile(self._recent, self.percentile)), self.lowest_db)
        return self.level


class Vad:
    """webrtcvad's per-frame decision, gated by level, driving a `TurnDetector`.

    webrtcvad alone fires on steady noise and holds on for 100-400 ms after
    speech ends (measured on tests/speech); requiring the frame to stand
    `margin_db` above the noise floor fixes both, so turn boundaries land
    where the words do.
    """

    def __init__(self, cfg: VADConfig, margin_db: float = 10.0, loud_db: float = 15.0) -> None:
        if not 0 <= cfg.aggressiveness <= 3:
            raise ValueError(f"VAD aggressiveness must be 0..3, not {cfg.aggressiveness}")
        self.detector = TurnDetector(cfg)
        self.frame_len = self.detector.frame_len
        self.margin_db = margin_db
        self.loud_db = loud_db
        self.floor = NoiseFloor()
        self._vad = webrtcvad.Vad(cfg.aggressiveness)

    def classify(self, frame: np.ndarray) -> tuple[bool, bool]:
        """(voiced, loud) for one frame."""
        db = level_db(frame)
        floor = self.floor.update(db)
        if db < floor + self.margin_db:
            return False, False
        pcm = (np.clip(frame, -1.0, 1.0) * 32767).astype(np.int16).tobytes()
        voiced = bool(self._vad.is_speech(pcm, SAMPLE_RATE))
        return voiced, db >= floor + self.loud_db

    def process(self, position: int, frame: np.ndarray) -> list[VadEvent]:
        return self.detector.update(position, frame, *self.classify(frame))
