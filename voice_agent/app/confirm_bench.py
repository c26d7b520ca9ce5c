"""What Silero's confirmation of barge-in buys and costs, judged from the audio.

Two kinds of trial, each a fresh agent on the real-time timeline (real
models, the loopback LLM server), the user asks a question and, half a
second into the agent's long reply, plays a sound over it:

- a noise (tests/speech/noises: applause, a dropped object, a door, ...):
  a *false stop* if the reply was cut (the sink's record of what it played:
  a piece cut short, or the resumed words, a new reply after the noise);
- real speech (another recording): the *stop time*, from the recording's first
  word to the agent track's silence (the rule of bench.py's `bargein_trial`).

Both run with `[bargein] confirm = "none"` and `"silero"`.
scripts/measure_bargein_confirm.py is the command.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..conversation.agent import Parts
from ..conversation.metrics import summary
from ..core.config import Config
from ..core.events import SAMPLE_RATE, UserStartedSpeaking, UserStoppedSpeaking
from ..measure import judge
from ..stages.speech_check import SpeechConfirmer
from ..stages.vad import Vad
from .bench import LONG_REPLY, OverReply, over_reply

SHORT_REPLY = "Okay."  # to whatever comes after: the trial need not wait for a second long reply


def stopped(run: OverReply) -> bool:
    """The reply was cut: its audio ends in a piece cut short, or another reply's audio follows the sound.

    A silence inside one reply is a late sentence (the CPU busy) or a pause at the sound that
    went on (the piece cut there goes on after it), not a stop: a stop ends the reply's audio,
    and what follows (the resumed words, an answer) is another reply's.
    """
    placed = run.sink.placed
    after = {p.chunk.response_id for p in placed if p.end > run.placed}
    last = {p.chunk.response_id: p for p in sorted(placed, key=lambda p: p.start)}  # each reply's last piece
    return len(after) > 1 or any(p.planned_end > p.end for p in last.values())


def paused_ms(run: OverReply) -> float:
    """The longest silence put into a reply that went on: from a piece cut short to the same reply's next."""
    gaps = [0]
    placed = sorted(run.sink.placed, key=lambda p: p.start)
    for cut, after in itertools.pairwise(placed):
        if cut.planned_end > cut.end and after.chunk.response_id == cut.chunk.response_id:
            gaps.append(after.start - cut.end)
    return max(gaps) * 1000 / SAMPLE_RATE


@dataclass(frozen=True)
class NoiseVerdict:
    stopped: bool  # the reply was cut off
    paused_ms: float  # the agent paused at the sound and went on after this long (0: no pause)


async def noise_trial(cfg: Config, parts: Parts, question: np.ndarray, noise: np.ndarray) -> NoiseVerdict | None:
    """A noise over the agent's reply: did the agent stop, or pause? None if it was not audible when the noise began."""
    run = await over_reply(cfg, parts, question, noise)
    if run is None or not run.audible:
        return None
    return NoiseVerdict(stopped(run), paused_ms(run))


async def speech_trial(cfg: Config, parts: Parts, question: np.ndarray, cut_in: np.ndarray) -> float | str:
    """Speech over the reply: ms from its first word to the agent track's silence, or why there is no figure."""
    run = await over_reply(cfg, parts, question, cut_in)
    extent = judge.speech_extent(cut_in)
    if run is None or extent is None or not run.audible:
        return "not audible"
    silent = judge.silent_from(run.track, run.placed)
    if silent is None or not stopped(run):
        return "not stopped"
    return round((silent - run.placed - extent[0]) / 16, 1)


@dataclass
class ConfirmFigures:
    confirm: str
    false_stops: list[str] = field(default_factory=list)  # the noises that cut the agent off
    pauses_ms: dict[str, float] = field(default_factory=dict)  # the noises that paused the agent, and for how long
    noise_trials: int = 0
    noises_not_judged: list[str] = field(default_factory=list)  # the agent was not audible when they began
    stop_ms: list[float] = field(default_factory=list)
    speech_trials: int = 0
    speech_not_stopped: int = 0  # cut-ins that did not stop the agent
    speech_not_judged: int = 0  # cut-ins that found the agent silent

    def as_dict(self) -> dict[str, Any]:
        return {
            "confirm": self.confirm,
            "false_stops": len(self.false_stops),
            "noise_trials": self.noise_trials,
            "false_stop_noises": self.false_stops,
            "pauses_ms": self.pauses_ms,
            "noises_not_judged": self.noises_not_judged,
            "stop_ms": summary(self.stop_ms),
            "stop_trials": self.stop_ms,
            "speech_trials": self.speech_trials,
            "speech_not_stopped": self.speech_not_stopped,
            "speech_not_judged": self.speech_not_judged,
        }


async def measure(cfg: Config, parts: Parts, server: Any, confirm: str, speech: list[np.ndarray], noises: dict[str, np.ndarray]) -> ConfirmFigures:
    """Every noise and every speech cut-in over a reply, with `[bargein] confirm = confirm`."""
    cfg = replace(cfg, bargein=replace(cfg.bargein, confirm=confirm))
    out = ConfirmFigures(confirm)
    for i, (name, noise) in enumerate(noises.items()):
        _script(server)
        verdict = await noise_trial(cfg, parts, speech[i % len(speech)], noise)
        out.noise_trials += 1
        if verdict is None:
            out.noises_not_judged.append(name)
        elif verdict.stopped:
            out.false_stops.append(name)
        elif verdict.paused_ms:
            out.pauses_ms[name] = verdict.paused_ms
    for i, clip in enumerate(speech):
        _script(server)
        stop = await speech_trial(cfg, parts, clip, speech[(i + 1) % len(speech)])
        out.speech_trials += 1
        if stop == "not stopped":
            out.speech_not_stopped += 1
        elif stop == "not audible":
            out.speech_not_judged += 1
        else:
            out.stop_ms.append(float(stop))
    return out


def _script(server: Any) -> None:
    """The question gets the long reply, anything after it a short one."""
    server.script.clear()
    server.default_reply = SHORT_REPLY
    server.push(LONG_REPLY)


@dataclass(frozen=True)
class Decision:
    """When, from the start of the input, webrtcvad's and Silero's halves of a barge-in decision were ready."""

    webrtcvad: int | None  # `[bargein] min_speech_ms` of webrtcvad speech since the start: None if never
    silero: int | None  # `confirm_ms` of speech to Silero since the start: None if never


def decisions(cfg: Config, question: np.ndarray, audio: np.ndarray) -> Decision:
    """Both halves of the barge-in decision on `audio`, frame by frame as the agent runs them, after
    `question` and 1.5 s of quiet as in the trials (the VAD's noise floor has heard speech); times
    from the start of `audio`. A diagnostic of the decision: the trials above judge what played."""
    vad, confirmer = Vad(cfg.vad), SpeechConfirmer(cfg.bargein.confirm_ms)
    n = vad.frame_len
    lead = np.concatenate([np.zeros(SAMPLE_RATE * 3 // 10, np.float32), question, np.zeros(SAMPLE_RATE * 3 // 2, np.float32)])
    lead = lead[: len(lead) // n * n]
    padded = np.concatenate([lead, audio, np.zeros(SAMPLE_RATE, np.float32)])
    start, web, sil = None, None, None
    for position in range(0, len(padded) - n + 1, n):
        frame = padded[position : position + n]
        for event in vad.process(position, frame):
            start = event.position if isinstance(event, UserStartedSpeaking) else None if isinstance(event, UserStoppedSpeaking) else start
        confirmer.feed(position, frame)
        if start is None or start < len(lead):
            continue
        if web is None and vad.detector.voiced_until - start >= cfg.bargein.min_speech_ms * SAMPLE_RATE // 1000:
            web = position + n
        if sil is None and confirmer.confirms(start, position + n):
            sil = position + n
        if web is not None and sil is not None:
            break
    return Decision(None if web is None else web - len(lead), None if sil is None else sil - len(lead))
