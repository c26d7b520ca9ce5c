"""Echo cancellation: the agent must not hear its own voice from laptop speakers.

WebRTC's audio processing module (through the `livekit` package) removes the
played signal from the microphone signal, using what the speaker played as
the reference. On Piper speech mixed into the microphone at -10 dB with a
60 ms delay it removes about 44 dB of echo (scripts/measure_echo.py), so
webrtcvad never fires on the agent's own voice, while a user talking over it
is still detected; it costs under 1 % of a core.

The APM copes with a reference that leads its echo by up to ~350 ms, and
fails when it leads by more (replaying a room recording offline at
150 ms of echo: one false barge-in with the reference 210 or 350 ms ahead,
23 with it 550 ms ahead). Fed "as it comes" (when the speaker's callback
hands a block over, before each microphone frame is processed), the lead
is whatever the event loop's delay is at that moment: while Whisper, the
turn model and Piper run at the start of a reply, microphone frames wait
and the reference runs ahead, so the first half second of each reply
came through and counted as the user going on.

So the reference is laid on the microphone's clock where the speaker plays
it (`place`: Speaker.position_of, from the DAC and ADC times), and fed in
lockstep with the capture: before the 10 ms of microphone audio at position
p, the reference up to p + `lead_ms`. The APM then sees the rest of the echo
path (the room, buffers the clocks do not report, such as a Bluetooth
speaker's) plus `lead_ms`, however late the loop runs. That rest is measured
too (echo_delay.EchoPath: GCC-PHAT while the agent speaks) and the reference
held back to `margin_ms` before its echo, so a path beyond the APM's reach
(the virtual room's loopback drifted from 150 to 350 ms under load) is
cancelled once measured, about 1.5 s into the first reply. Both streams run
all the time (silence between replies), so the APM never loses its alignment.
(A room run with both skipped between replies to save idle CPU, under load,
had the echo back at the start of replies: 12 extra agent starts in 10 turns
at -10 dB/150 ms.)

What the pause hears (`pause_hears`, `near_end`): the APM's suppressor, with the
echo as loud as the user, took the first 100-250 ms of a cut-in down. A linear
filter (linear_echo.py) runs beside it; once it takes 25 dB or more off this
voice's echo, the pause hears its output, which keeps the user's onset whole.

Measured in the virtual room: see README ("Measured in the room") and
`python scripts/measure_live.py --grid`.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

import numpy as np
import soxr

from ..core.events import SAMPLE_RATE
from ..core.level import level_db
from .echo_delay import EchoPath
from .linear_echo import LinearEcho

log = logging.getLogger(__name__)

TEN_MS = SAMPLE_RATE // 100
# The stream has moved (an underrun, a restarted stream) when the clocks put its blocks this far
# off. Smaller offsets are the clocks' own wander (15-17 ms seen between replies in the room), and
# each move is an echo path change that the APM learns again only while the agent speaks: the
# first words of the next replies came through. The measured path takes up what is left.
MOVED = SAMPLE_RATE * 40 // 1000
MOVE_AFTER = SAMPLE_RATE * 180 // 1000  # samples of blocks (180 ms, whatever the block size) the clocks must agree over
LEARN_WINDOWS = 24  # of the agent speaking (250 ms each): the echo path is found, ruled out, or given up on by then
MUTE_TAIL = SAMPLE_RATE * 3 // 10  # while learning: how long after the agent's voice its echo may still come
TAIL_MARGIN = SAMPLE_RATE * 50 // 1000  # the room's reverberation and the APM's frames, past the path's lag
NEAR_END_DB = -15.0  # the APM kept this much of the capture or more: a voice in the room, not the agent's echo
MIN_LEAD = SAMPLE_RATE * 10 // 1000  # the reference must reach the APM at least this long before its echo
SLACK = SAMPLE_RATE * 40 // 1000  # a reference this much further ahead of its echo than planned is still fine
SETTLE_FRAMES = 100  # of 10 ms with the agent's echo in them: the APM has settled once it took ...
SETTLED_DB = -20.0  # ... at least this much off every one of them
ECHO_DB = -50.0  # a capture frame quieter than this holds too little echo to tell
TRUSTED_ERLE_DB = 25.0  # the linear filter takes this much off the echo (median of this voice's last 50 loud frames) ...
TRUSTED_AFTER = 20  # ... measured on at least this many 10 ms frames of it: the pause may hear its output
LINEAR_NEAR_DB = -15.0  # the linear filter left this much of the capture or more: a voice in the room
OVER_PEAK_DB = -15.0  # a voice left by the linear filter is at most this far under the capture's peak (last second)


class ReferenceTrack:
    """What the speaker played, on the microphone's sample count: written where the clocks put it,
    read in order. The clocks place each block with some jitter (here pairs of 20 ms blocks
    came 20 ms apart, then 40), so blocks are laid back to back, and only moved when the
    clocks agree over several blocks that the stream has moved (an underrun, a restarted stream)."""

    def __init__(self, keep: int = 4 * SAMPLE_RATE) -> None:
        self._audio = np.zeros(keep, np.float32)  # ring buffer indexed by position % keep
        self._keep = keep
        self._end: int | None = None  # position after the last sample written
        self._read = 0  # positions before this have been read
        self._offsets: deque[tuple[int, int]] = deque()  # (where the clocks put a recent block, less where it was laid; its length)
        self.moves = 0  # how often the stream has moved

    def write(self, at: int, block: np.ndarray) -> int:
        """Lay `block` where the clocks put it (`at`), smoothed as above: where it was laid."""
        if len(block) == 0:
            return at if self._end is None else self._end
        if self._end is not None:
            self._offsets.append((at - self._end, len(block)))
            while sum(n for _, n in self._offsets) - self._offsets[0][1] >= MOVE_AFTER:
                self._offsets.popleft()
            agreed = sum(n for _, n in self._offsets) >= MOVE_AFTER
            moved = int(np.median([offset for offset, _ in self._offsets])) if agreed else 0
            if abs(moved) >= MOVED:
                log.info("the speaker's stream moved by %.0f ms: the echo reference follows it", moved * 1000 / SAMPLE_RATE)
                self._offsets.clear()
                self.moves += 1
                at = self._end + moved
            else:
                at = self._end
        n, laid = len(block), at
        self._end = at + n
        if at + n <= self._read:
            return laid
        if at < self._read:  # the start is already read: keep the rest
            block, at = block[self._read - at :], self._read
        block = block[-self._keep :]
        at = self._end - len(block)
        index = (at + np.arange(len(block))) % self._keep
        self._audio[index] = block
        return laid

    def read(self, until: int) -> np.ndarray:
        """The reference from where the last read ended up to `until` (silence where nothing played)."""
        start, self._read = self._read, max(self._read, until)
        if until <= start:
            return np.zeros(0, np.float32)
        skipped = max(0, until - start - self._keep)  # not read for seconds (the microphone stalled)
        index = (start + skipped + np.arange(until - start - skipped)) % self._keep
        out = np.concatenate([np.zeros(skipped, np.float32), self._audio[index]])
        self._audio[index] = 0  # read once: a stale block must not come round again
        return out

    @property
    def written_to(self) -> int:
        """Positions before this have been written (or read)."""
        return max(self._read, self._end or 0)

    @property
    def read_to(self) -> int:
        """Positions before this have been read."""
        return self._read

    def skip_to(self, position: int) -> None:
        self._read = max(self._read, position)


class EchoCanceller:
    def __init__(
        self,
        speaker_rate: int,
        place: Callable[[int], int] | None = None,
        delay_ms: int = 60,
        lead_ms: int = 20,
        margin_ms: int = 30,
        linear: bool = True,
    ) -> None:
        """`place(n)`: where the speaker's output sample n plays, on the microphone's count
        (Speaker.position_of). Without it (a test), blocks are laid where the capture is when
        they are taken, which is "as it comes". `linear=False`: no linear filter, the pause
        hears the APM's output (to compare, scripts/replay_room.py --apm-only)."""
        try:
            from livekit import rtc
        except ImportError:
            raise RuntimeError("echo cancellation needs the livekit package: pip install livekit") from None
        self._rtc = rtc
        self._apm = rtc.AudioProcessingModule(echo_cancellation=True, noise_suppression=True, high_pass_filter=True)
        self._apm.set_stream_delay_ms(delay_ms)
        # With no echo (see `process`) the microphone goes through this one: the same noise
        # suppression and filter, no echo canceller. Run all along, so that switching to it
        # changes nothing a listener (or the VAD's noise floor) would notice.
        self._plain = rtc.AudioProcessingModule(echo_cancellation=False, noise_suppression=True, high_pass_filter=True)
        self._place = place
        self._lead = lead_ms * SAMPLE_RATE // 1000
        self._lock = threading.Lock()
        self._played: deque[tuple[np.ndarray, int]] = deque(maxlen=500)  # (int16 block at the speaker's rate, its first sample)
        self._resample = None if speaker_rate == SAMPLE_RATE else soxr.ResampleStream(speaker_rate, SAMPLE_RATE, 1, dtype="float32")
        self._track = ReferenceTrack()
        self._started = False
        self._origin = 0  # the microphone position the echo path's streams count from
        self.path = EchoPath()
        self._margin = margin_ms * SAMPLE_RATE // 1000
        self._hold = 0  # how far the reference is held back (see `_held_back`)
        self._carry = np.zeros(0, np.float32)  # reference read but short of a whole 10 ms
        self._echo_until = 0  # microphone position up to which an echo of what was fed may come
        self._voice_from = self._voice_until = 0  # the microphone's frames while the agent's latest voice was fed
        self._heard_at: int | None = None  # where the microphone first heard sound during it
        self._kept_db: deque[float] = deque(maxlen=3)  # output level minus capture level, last 60 ms
        self._settling: deque[float] = deque(maxlen=SETTLE_FRAMES)  # the same, per 10 ms, while learning
        self._learn_from = 0  # path.attempts when learning last began: the session's start, or a move
        self._linear = LinearEcho() if linear else None
        self._lin_reference = np.zeros(2 * SAMPLE_RATE, np.float32)  # what was read of the track, by its position
        self._lin_read = 0  # positions before this have been read into it
        self._lin_levels: deque[tuple[float, float]] = deque(maxlen=6)  # (left, kept) in dB, last 60 ms
        self._mic_peak: deque[float] = deque(maxlen=100)  # capture levels, last second
        self._erle: deque[float] = deque(maxlen=50)  # dB the linear filter took off loud frames of echo, this voice
        self._for_pause = np.zeros(0, np.float32)  # the last frame, as the pause should hear it (see `process`)

    def played(self, block: np.ndarray, first: int = 0) -> None:
        """What the speaker just played from its output sample `first` on (called from its audio thread)."""
        with self._lock:
            self._played.append((block.copy(), first))

    def process(self, frame: np.ndarray, position: int | None = None) -> np.ndarray:
        """A microphone frame (16 kHz float32, a multiple of 10 ms, at microphone sample
        `position`) with the echo removed."""
        if position is None:  # a caller without a clock: the capture is where the reference is
            position = self._track.read_to
        if not self._started:
            self._track.skip_to(position)  # what played before the microphone ran has no echo to come
            self._started, self._origin = True, position
        self._take_reference(position)
        lag = self.path.lag
        if self.path.captured(frame) is not None and self.path.lag != lag:
            log.info("echo path: %.0f ms after the speaker plays it", (self.path.lag or 0) * 1000 / SAMPLE_RATE)
        hold = self._held_back()
        out, linear = np.empty_like(frame), np.empty_like(frame)
        # With the echo ruled out (headphones) the filter's output would never be heard: not run.
        lin_filter = self._linear if self.path.coupling != 0.0 else None
        for i in range(0, len(frame), TEN_MS):
            # An echo that comes before where the clocks lay its reference (hold < 0) needs the
            # reference read further ahead, but never past what the speaker has handed over:
            # a position read is a position lost to a block that comes later.
            due = position + i + TEN_MS + self._lead
            due = min(due - hold, max(due, self._track.written_to))
            read = self._track.read(due)
            self._lin_keep(read, due)
            reference = np.concatenate([self._carry, read])
            whole = len(reference) // TEN_MS * TEN_MS
            for k in range(0, whole, TEN_MS):
                self._apm.process_reverse_stream(self._frame(self._pcm(reference[k : k + TEN_MS])))
            self._carry = reference[whole:]
            if reference[:whole].any():
                if position + i >= self._echo_until:  # the agent starts speaking again
                    self._voice_from, self._heard_at = position + i, None
                    self._erle.clear()  # the path may have moved a little since: the linear filter proves itself again
                self._voice_until, self._echo_until = position + i + TEN_MS, due + MUTE_TAIL
            pcm = self._pcm(frame[i : i + TEN_MS])  # one conversion; each APM works on its own frame in place
            audio, plain = self._frame(pcm), self._frame(pcm)
            self._apm.process_stream(audio)
            self._plain.process_stream(plain)
            at, captured, learning = position + i, level_db(frame[i : i + TEN_MS]), self.learning
            if learning and captured > ECHO_DB and self._heard_at is None and at < self._voice_until:
                self._heard_at = at
            # No echo (headphones, a muted speaker; or none heard yet past the voice): the canceller, still
            # fed so that it stays in step should an echo come, only blurs the user's voice (its suppressor
            # took the first 100 ms of an answer given at once 50 dB down).
            echo = self._echo_may_come(at) if learning else self.path.coupling != 0.0
            out[i : i + TEN_MS] = np.frombuffer((audio if echo else plain).data, dtype=np.int16).astype(np.float32) / 32768
            if lin_filter is not None:
                linear[i : i + TEN_MS] = self._lin_process(lin_filter, frame[i : i + TEN_MS], at - hold)
            if learning and echo and at < self._echo_until:
                if captured > ECHO_DB:
                    self._settling.append(level_db(out[i : i + TEN_MS]) - captured)
                out[i : i + TEN_MS] = 0  # digital silence: the VAD's noise floor leaves it out
        self._kept_db.append(level_db(out) - level_db(frame))
        # Noticing a voice over the agent's: the linear filter's output, which keeps the user's onset
        # whole where the APM's suppressor takes it down; once it is seen to remove the echo.
        self._for_pause = linear if self.linear_trusted else out  # (never trusted without the filter: no ERLE)
        return out

    def _lin_keep(self, read: np.ndarray, until: int) -> None:
        """Keep what was read of the track (positions until - len(read) .. until) for the linear filter."""
        n, read = len(self._lin_reference), read[-len(self._lin_reference) :]
        self._lin_reference[(until - len(read) + np.arange(len(read))) % n] = read
        self._lin_read = max(self._lin_read, until)

    def _lin_process(self, lin_filter: LinearEcho, frame: np.ndarray, at: int) -> np.ndarray:
        """10 ms of capture through the linear filter, its reference the track from `at` (its
        echo comes `margin_ms` later once the path is measured: within the filter's reach)."""
        n = len(self._lin_reference)
        positions = at + np.arange(TEN_MS)
        # Not read yet (the speaker has not handed it over): silence, not what the ring held 2 s ago.
        reference = np.where(positions < self._lin_read, self._lin_reference[positions % n], 0)
        left = lin_filter.process(reference, frame)
        captured, kept = level_db(frame), level_db(left)
        self._mic_peak.append(captured)
        self._lin_levels.append((kept, kept - captured))
        # Loud frames only: on quiet ones the noise floor caps the figure.
        if captured > max(ECHO_DB, max(self._mic_peak) + OVER_PEAK_DB) and level_db(reference) > ECHO_DB:
            self._erle.append(captured - kept)
        return left

    def pause_hears(self, frame: np.ndarray) -> np.ndarray:
        """The frame just processed (`frame`, its output) as the pause should hear it."""
        return self._for_pause

    def is_echo(self) -> bool:
        """The linear filter took most of the last 60 ms off: the agent's own echo, even where the APM let it
        through (in a room run, the first words of three replies in a row after a cut-in). It cannot take a
        user's voice off, and one that has not found the echo yet leaves it: either way this says no."""
        if self.learning or not self.path.coupling or len(self._lin_levels) < (self._lin_levels.maxlen or 0):
            return False
        return max(kept for _, kept in self._lin_levels) < LINEAR_NEAR_DB

    @property
    def linear_trusted(self) -> bool:
        """The echo is measured, the APM has settled on it, and the linear filter removes it too."""
        if self.learning or not self.path.coupling or len(self._erle) < TRUSTED_AFTER:
            return False
        return float(np.median(self._erle)) >= TRUSTED_ERLE_DB

    def _echo_may_come(self, at: int) -> bool:
        """While learning: may an echo of the agent's voice reach the microphone at `at`? During it, and for
        MUTE_TAIL after if the microphone heard sound begin in its first 2 x MUTE_TAIL (lead-in, then lag) or
        before its last MUTE_TAIL (or it was too short to tell). Muted regardless, a user's "seven of clubs"
        begun 20 ms before the speaker's last sample was heard as "have enough clothes"."""
        if at < self._voice_until or self._voice_until - self._voice_from < MUTE_TAIL:
            return True
        began = self._heard_at
        return began is not None and began < max(self._voice_from + 2 * MUTE_TAIL, self._voice_until - MUTE_TAIL)

    def _held_back(self) -> int:
        """How far to hold the reference back: to `margin_ms` before its echo, moved only when the
        path has moved past what the APM follows on its own.

        The path is re-measured every 250 ms of the agent's voice and wanders by 5-10 ms
        between replies. Each move of the reference is an echo path change to the APM, which
        it learns again only once the agent speaks: replaying a room recording offline with
        the reference moved by 7 ms between replies, the first word of replies came through
        (10-40 dB removed instead of 50-90), and in the room "The" was taken for the user.
        """
        lag = self.path.lag
        if lag is None:
            return 0
        if self._hold > lag - MIN_LEAD or self._hold < lag - self._margin - SLACK:
            self._hold = lag - self._margin
            self._relearn()  # a new echo path to the APM
        return self._hold

    def _relearn(self) -> None:
        """The APM has a new echo path: learn it again, muted, as at the start."""
        self._settling.clear()
        self._learn_from = self.path.attempts

    def tail(self) -> int:
        """Samples after a sound stops at the speaker that its echo still reaches the microphone."""
        return (self.path.lag or 0) + TAIL_MARGIN

    def near_end(self) -> bool:
        """Is the sound at the microphone now someone in the room rather than the agent's own echo?

        The APM takes 25-45 dB off an echo it has converged on, and leaves a voice
        in the room nearly whole (within 12 dB at the onsets of the room's
        cut-ins), so what it kept of the last 60 ms tells them apart. An echo
        it lets through (misaligned for a moment) is kept too: then this says
        yes, and barge-in's own checks remain.
        """
        if self.linear_trusted:  # the linear filter's output is most of the capture, and loud enough to be a voice
            left = max(level for level, _ in self._lin_levels)
            kept = max(kept for _, kept in self._lin_levels)
            return kept >= LINEAR_NEAR_DB and left >= max(self._mic_peak) + OVER_PEAK_DB
        return max(self._kept_db, default=0.0) >= NEAR_END_DB

    @property
    def learning(self) -> bool:
        """The first seconds the agent speaks (and again after the speaker's stream moved), until the
        echo path is measured (or found absent) and the APM is seen to remove the echo: until then
        the reference may not be where its echo is, so the microphone is muted while an echo may
        come. A user cannot cut in then: ~2.5 s into a session's first reply in the room, up to
        6 s (LEARN_WINDOWS) if the path slides or the user talks over it."""
        if self.path.attempts - self._learn_from >= LEARN_WINDOWS:
            return False
        if self.path.coupling is None:
            return True
        # Measured, and the reference moved to its echo: until the APM is seen to remove it.
        settled = len(self._settling) == SETTLE_FRAMES and max(self._settling) <= SETTLED_DB
        return self.path.coupling > 0 and not settled

    @staticmethod
    def _pcm(samples: np.ndarray) -> bytes:
        return (np.clip(samples, -1, 1) * 32767).astype(np.int16).tobytes()

    def _frame(self, pcm: bytes) -> object:
        return self._rtc.AudioFrame(pcm, SAMPLE_RATE, 1, len(pcm) // 2)

    def _take_reference(self, capture_at: int) -> None:
        with self._lock:
            blocks = list(self._played)
            self._played.clear()
        moves = self._track.moves
        for block, first in blocks:
            samples = block.astype(np.float32) / 32768
            if self._resample is not None:
                samples = self._resample.resample_chunk(samples)
            at = self._place(first) if self._place is not None else capture_at
            # The path is measured against the reference as the APM gets it: laid back to back.
            # Placed block by block where the clocks put them (jitter of 10-20 ms), the measuring
            # stream was torn, and its correlation peak too broad to trust: in a room run at
            # -10 dB/150 ms the lags of successive windows spread over 120-154 ms, below the bar
            # in 47 of 48 windows, and the path was found only in the third reply.
            laid = self._track.write(at, samples)
            self.path.played(samples, laid - self._origin)
        if self._track.moves != moves:
            # The echo path has changed under the APM: its first words would come through, as in a
            # room run where "The" cut the next reply off.
            self._relearn()
