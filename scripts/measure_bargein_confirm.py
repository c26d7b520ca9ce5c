#!/usr/bin/env python3
"""Barge-in with and without Silero's confirmation: false stops on real noises, stop time on real speech.

Each trial is a fresh agent on the real-time timeline (real models, the
loopback LLM server): the user asks a question, and half a second into the
agent's long reply plays a real noise (tests/speech/noises) or another real
recording (tests/speech) over it. Judged from the audio of the agent track
(voice_agent/app/confirm_bench.py): a false stop is the agent falling silent
over a noise; the stop time runs from the cut-in's first word to silence.

    python scripts/measure_bargein_confirm.py                  # both settings, all noises and recordings
    python scripts/measure_bargein_confirm.py --json out.json --limit 4
    python scripts/measure_bargein_confirm.py --confirm silero --min-speech-ms 120
    python scripts/measure_bargein_confirm.py --decisions      # quick: the decision alone, no agent

`--decisions` runs only webrtcvad and Silero, frame by frame as the agent
does, on every recording of tests/speech and tests/speech/pauses and on every
noise: how much later Silero's half of the decision is ready than
webrtcvad's, and which noises each would let through (deterministic).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import replace
from pathlib import Path

from voice_agent.app.bench import machine, scripted_config
from voice_agent.app.confirm_bench import decisions, measure
from voice_agent.audio.source import read_audio
from voice_agent.conversation.metrics import summary
from voice_agent.conversation.parts import build_parts, close_parts
from voice_agent.core.config import Config
from voice_agent.measure.scripted_llm import ScriptedLLM

ROOT = Path(__file__).resolve().parent.parent
SPEECH = ROOT / "tests" / "speech"


async def run(args: argparse.Namespace) -> dict:
    speech = [read_audio(p) for p in sorted(SPEECH.glob("ps_*.wav"))[: args.limit]]
    noises = {p.stem: read_audio(p) for p in sorted((SPEECH / "noises").glob("*.wav"))}
    server = ScriptedLLM(tokens_per_s=args.tokens_per_s).start_in_thread()
    try:
        cfg = scripted_config(Config(), server.base_url)
        if args.min_speech_ms is not None:
            cfg = replace(cfg, bargein=replace(cfg.bargein, min_speech_ms=args.min_speech_ms))
        parts, _ = build_parts(cfg)
        try:
            results = []
            for confirm in args.confirm:
                print(f"confirm = {confirm!r}: {len(noises)} noises, {len(speech)} cut-ins", file=sys.stderr)
                results.append((await measure(cfg, parts, server, confirm, speech, noises)).as_dict())
        finally:
            await close_parts(parts)
    finally:
        server.stop_thread()
    return {"results": results, "machine": machine(), "min_speech_ms": cfg.bargein.min_speech_ms, "confirm_ms": cfg.bargein.confirm_ms}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def table(report: dict) -> str:
    lines = [
        "| confirm | false stops (noises) | paused, then went on (noises) | stop p50 ms | stop p95 ms | stop max ms | cut-ins not stopped |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        stop = r["stop_ms"]
        paused = ", ".join(f"{name} {ms:.0f} ms" for name, ms in r["pauses_ms"].items()) or "none"
        lines.append(
            f"| {r['confirm']} | {r['false_stops']} of {r['noise_trials'] - len(r['noises_not_judged'])} "
            f"({', '.join(r['false_stop_noises']) or 'none'}) | {paused} | {_ms(stop['p50'])} | {_ms(stop['p95'])} | {_ms(stop['max'])} "
            f"| {r['speech_not_stopped']} of {r['speech_trials'] - r['speech_not_judged']} |"
        )
    return "\n".join(lines)


def decision_report() -> None:
    cfg = Config()
    clips = sorted(SPEECH.glob("*.wav")) + sorted((SPEECH / "pauses").glob("*.wav"))
    question = read_audio(SPEECH / "ps_goforward.wav")
    later = []
    for path in clips:
        d = decisions(cfg, question, read_audio(path))
        if d.webrtcvad is not None:
            later.append(None if d.silero is None else max(0, d.silero - d.webrtcvad) / 16)
    waits = [w for w in later if w is not None]
    s = summary(waits)
    print(f"speech: {len(later)} recordings; Silero's half ready after webrtcvad's on {sum(w > 0 for w in waits)}, "
          f"never on {later.count(None)}; extra wait p50 {s['p50']:.0f} / p95 {s['p95']:.0f} / max {s['max']:.0f} ms")
    for path in sorted((SPEECH / "noises").glob("*.wav")):
        d = decisions(cfg, question, read_audio(path))
        verdict = "webrtcvad: no" if d.webrtcvad is None else f"webrtcvad: yes, Silero: {'yes' if d.silero is not None else 'no'}"
        print(f"  {path.name:22s} {verdict}")
    print(f"[bargein] min_speech_ms {cfg.bargein.min_speech_ms}, confirm_ms {cfg.bargein.confirm_ms}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--confirm", nargs="+", default=["none", "silero"], choices=["none", "silero"])
    parser.add_argument("--limit", type=int, help="only the first N speech recordings as cut-ins")
    parser.add_argument("--min-speech-ms", type=int, help="[bargein] min_speech_ms (default: the config's, 200)")
    parser.add_argument("--tokens-per-s", type=float, default=30.0)
    parser.add_argument("--json", type=Path, metavar="OUT.json")
    parser.add_argument("--decisions", action="store_true", help="only the decision, frame by frame, no agent (quick)")
    args = parser.parse_args()
    if args.decisions:
        decision_report()
        return
    report = asyncio.run(run(args))
    print(table(report))
    c = report["machine"]
    print(f"{c['cores']} cores, {c['cpu_model']}; [bargein] min_speech_ms {report['min_speech_ms']}, confirm_ms {report['confirm_ms']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
