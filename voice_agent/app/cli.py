"""`voice-agent`: the command line.

    voice-agent [--input-device D] [--output-device D] [--metrics FILE.jsonl]   live conversation
    voice-agent --list-devices
    voice-agent demo [--input FILE.wav ...] [--output OUT.wav] [--report REPORT.json]

User mistakes (a missing file, a bad config, no model) print one line and exit
non-zero; they never show a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from ..audio.source import AudioInputError
from ..core.config import Config, ConfigError, load_config
from ..stages.models import ModelError
from ..stages.tools import ToolError

if TYPE_CHECKING:
    from ..conversation.parts import Parts
    from .bench import BenchOptions

EXIT_USAGE = 2
DEFAULT_SPEECH = Path(__file__).resolve().parents[2] / "tests" / "speech"
DEFAULT_SPEECH_DIRS = [DEFAULT_SPEECH, DEFAULT_SPEECH / "pauses"]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE.toml", help="settings file (see README)")
    p.add_argument("--model", help="LLM model name (default: $OPENAI_MODEL or gpt-4o-mini)")
    p.add_argument("--base-url", help="OpenAI-compatible endpoint (default: $OPENAI_BASE_URL)")
    p.add_argument("--system-prompt", help="the assistant's instructions")
    p.add_argument("--embedded", action="store_true", help="use the embedded demo LLM even if a server is configured")
    p.add_argument("--greeting", metavar="TEXT", help="what the agent says when the session starts")
    p.add_argument("--transcript", metavar="FILE.jsonl", help="append the conversation to FILE as it happens")
    p.add_argument("--resume", metavar="FILE.jsonl", help="continue the conversation in this transcript (and append to it)")
    p.add_argument(
        "--tools",
        action="append",
        metavar="TOOL",
        help="tools the LLM may call: time, calculate, package.module:function, or none (repeatable; default: time, calculate)",
    )
    p.add_argument("--node", metavar="PKG.MOD:FN", help="your own reply node, an async generator function (see README)")
    p.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="voice-agent", description="A local, interruptible voice agent.")
    ap.add_argument("--list-devices", action="store_true", help="list audio devices and exit")
    ap.add_argument("--input-device", metavar="D", help="microphone: index or part of the name")
    ap.add_argument("--output-device", metavar="D", help="speaker: index or part of the name")
    ap.add_argument("--metrics", type=Path, metavar="FILE.jsonl", help="append one JSON line per turn")
    ap.add_argument("--headphones", action="store_true", help="no echo cancellation (the mic cannot hear the agent)")
    _common(ap)
    sub = ap.add_subparsers(dest="command")
    demo = sub.add_parser("demo", help="headless demo: WAV in, spoken answer out")
    demo.add_argument("--input", action="append", type=Path, metavar="FILE.wav", help="a user turn (repeatable)")
    demo.add_argument("--output", type=Path, default=Path("demo_output.wav"), metavar="OUT.wav")
    demo.add_argument("--report", type=Path, metavar="REPORT.json")
    demo.add_argument("--mono", action="store_true", help="mix user and agent into one channel")
    demo.add_argument("--fast", action="store_true", help="faster than real time (latency figures are then not wall-clock)")
    demo.add_argument(
        "--interrupt-after",
        type=float,
        metavar="S",
        help="speak each input after the first S seconds into the agent's answer to the one before (barge-in)",
    )
    _common(demo)
    bench = sub.add_parser("bench", help="turn-taking, latency, barge-in and STT benchmark over recorded speech, judged from the audio")
    bench.add_argument(
        "--speech-dir", type=Path, action="append", metavar="DIR",
        help="manifest.tsv + WAV files (repeatable; default: tests/speech and tests/speech/pauses)",
    )  # fmt: skip
    bench.add_argument("--llm", default="scripted", help="scripted (default), embedded, or an OpenAI-compatible URL")
    bench.add_argument("--ttft-ms", type=float, default=0.0, help="the scripted LLM's time to first token")
    bench.add_argument("--tokens-per-s", type=float, default=30.0, help="the scripted LLM's streaming rate (0: all at once)")
    bench.add_argument("--reply", metavar="TEXT", help="the scripted LLM's reply (default: two sentences, 26 words, the first 13)")
    bench.add_argument("--json", type=Path, metavar="OUT.json")
    bench.add_argument("--user-waits-s", type=float, default=1.5, metavar="S", help="the user speaks again once the agent has been quiet this long")
    bench.add_argument("--output", type=Path, metavar="OUT.wav", help="also write the judged conversation (user left, agent right)")
    bench.add_argument("--plot", type=Path, metavar="OUT.png")
    bench.add_argument("--limit", type=int, help="only the first N utterances")
    bench.add_argument("--bargein-trials", type=int, default=6)
    bench.add_argument("--soak", type=int, metavar="N", help="instead: a long session of N turns, watched for leaks")
    bench.add_argument("--sessions", metavar="N,N,...", help="instead: N concurrent WebSocket sessions of `serve` (e.g. 1,2,4,8; --limit: utterances per session, 3)")
    _common(bench)
    serve = sub.add_parser("serve", help="talk to the agent from a browser, or any client over a WebSocket")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (beyond loopback needs --token)")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("--token", metavar="SECRET", help="required from clients: ?token=SECRET or Authorization: Bearer SECRET")
    serve.add_argument("--max-sessions", type=int, default=4, metavar="N", help="concurrent sessions; more are refused")
    serve.add_argument("--cert", metavar="CERT.pem", help="serve HTTPS/WSS with this certificate chain (and --key KEY.pem)")
    serve.add_argument("--key", metavar="KEY.pem")
    _common(serve)
    return ap


def build_config(args: argparse.Namespace) -> Config:
    if os.getcwd() not in sys.path:  # `--node mynode:answer` finds ./mynode.py, as `python -m` would
        sys.path.insert(0, os.getcwd())
    cfg = load_config(args.config)
    llm = cfg.llm
    if args.model:
        llm = replace(llm, model=args.model)
    if args.base_url:
        llm = replace(llm, base_url=args.base_url)
    if args.system_prompt:
        llm = replace(llm, system_prompt=args.system_prompt)
    if args.embedded:
        llm = replace(llm, backend="embedded")
    if args.node:
        llm = replace(llm, node=args.node)
    if llm.node:
        from ..conversation.node import load_node

        load_node(llm.node)  # a bad spec fails now, in one line, not after the models load
    if args.greeting:
        cfg = replace(cfg, greeting=args.greeting)
    if getattr(args, "transcript", None) or getattr(args, "resume", None):
        cfg = replace(cfg, transcript=args.transcript or cfg.transcript, resume=args.resume or cfg.resume)
    if args.tools:
        names = [n.strip() for spec in args.tools for n in spec.split(",") if n.strip() and n.strip() != "none"]
        cfg = replace(cfg, tools=replace(cfg.tools, enabled=names))
    audio = cfg.audio
    if getattr(args, "input_device", None):
        audio = replace(audio, input_device=args.input_device)
    if getattr(args, "output_device", None):
        audio = replace(audio, output_device=args.output_device)
    if getattr(args, "headphones", False):
        audio = replace(audio, echo_cancellation=False)
    return replace(cfg, llm=llm, audio=audio)


async def _demo(args: argparse.Namespace, console: Console) -> int:
    from ..conversation.parts import build_parts, close_parts
    from .demo import default_input, run_demo

    cfg = build_config(args)
    from ..audio.source import read_audio

    _check_resume(cfg)

    # Read (and so check) the inputs before spending seconds on models.
    clips = [read_audio(p) for p in args.input or [default_input()]]
    if args.interrupt_after is not None and (args.interrupt_after < 0 or len(clips) < 2):
        raise ConfigError("--interrupt-after needs 0 or more seconds and at least two --input files")
    with console.status("loading models"):
        parts, llm_desc = build_parts(cfg)
    console.print(f"LLM: {llm_desc}", soft_wrap=True)
    try:
        await run_demo(
            cfg, parts, clips, args.output, args.report, fast=args.fast, stereo=not args.mono, console=console, interrupt_after_s=args.interrupt_after
        )
    finally:
        await close_parts(parts)
    return 0


async def _bench(args: argparse.Namespace, console: Console) -> int:
    from ..conversation.parts import build_parts, close_parts
    from ..measure.scripted_llm import ScriptedLLM
    from .bench import (
        DEFAULT_REPLY,
        BenchOptions,
        load_manifests,
        print_table,
        run_bench,
        save,
        scripted_config,
    )

    cfg = build_config(args)
    args.speech_dir = args.speech_dir or DEFAULT_SPEECH_DIRS
    load_manifests(args.speech_dir)  # a bad folder fails before models load
    if args.sessions:
        from .sessions_bench import bench_sessions

        return await bench_sessions(args, console)
    if args.soak is not None and args.soak < 2:
        raise ConfigError("--soak needs at least 2 turns")
    if args.tokens_per_s < 0 or args.ttft_ms < 0:
        raise ConfigError("--tokens-per-s and --ttft-ms cannot be negative")
    reply = args.reply or DEFAULT_REPLY
    server = None
    if args.llm == "scripted":
        # A soak remembers only the latest requests: the server shares the process being measured.
        keep = 10 if args.soak else None
        server = ScriptedLLM(reply, ttft_ms=args.ttft_ms, tokens_per_s=args.tokens_per_s, keep_requests=keep).start_in_thread()
        cfg = scripted_config(cfg, server.base_url)
    elif args.llm == "embedded":
        cfg = replace(cfg, llm=replace(cfg.llm, backend="embedded"))
    else:
        cfg = replace(cfg, llm=replace(cfg.llm, base_url=args.llm, backend="openai"))
    try:
        with console.status("loading models"):
            parts, llm_desc = build_parts(cfg)
        if server is not None:
            llm_desc = (
                f"scripted loopback server: {len(reply.split())}-word reply, {args.tokens_per_s:g} tokens/s, "
                f"time to first token {args.ttft_ms:g} ms"
            )
        opts = BenchOptions(args.speech_dir, args.llm, args.ttft_ms, args.tokens_per_s, reply, args.bargein_trials, args.limit, gap_s=args.user_waits_s, output=args.output)
        try:
            if args.soak:
                return await _soak(cfg, parts, opts, args, console, server)
            result = await run_bench(cfg, parts, opts, llm_desc, console, server)
        finally:
            await close_parts(parts)
    finally:
        if server is not None:
            server.stop_thread()
    print_table(result, console)
    save(result, args.json, args.plot)
    return 0


async def _soak(cfg: Config, parts: Parts, opts: BenchOptions, args: argparse.Namespace, console: Console, server: Any) -> int:
    import json

    from ..audio.source import read_audio
    from .bench import LONG_REPLY, load_manifests, machine
    from .soak import report_dict, run_soak

    if server is not None:
        server.default_reply = LONG_REPLY  # long enough to be cut off
        server.tokens_per_s = 0.0  # fast timeline mode: the reply's pace is not what is watched
    clips = [read_audio(i.path) for i in load_manifests(opts.speech_dirs)[: opts.limit]]
    with console.status(f"soak: {args.soak} turns"):
        report = await run_soak(cfg, parts, clips, args.soak)
    result = report_dict(report) | {"machine": machine()}
    console.print_json(json.dumps(result["soak"]))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


async def _live(args: argparse.Namespace, console: Console) -> int:
    from ..audio.devices import resolve_device
    from ..audio.microphone import MicClock
    from ..conversation.metrics import TurnRecorder
    from ..conversation.parts import build_parts, close_parts
    from .live import run_live
    from .ui import View

    cfg = build_config(args)
    _check_resume(cfg)
    resolve_device(cfg.audio.input_device, "input")  # no device: say so before loading models
    resolve_device(cfg.audio.output_device, "output")
    with console.status("loading models"):
        parts, llm_desc = build_parts(cfg)
    console.print(f"LLM: {llm_desc}", soft_wrap=True)
    _cancel_on_sigterm()
    try:
        with View(console, TurnRecorder(MicClock(), keep=100)) as view:
            await run_live(cfg, parts, view, args.metrics)
    finally:
        await close_parts(parts)
    return 0


def _check_resume(cfg: Config) -> None:
    """A transcript that cannot be resumed fails before the models load."""
    if cfg.resume:
        from ..conversation.transcript import load

        load(Path(cfg.resume))


def _cancel_on_sigterm() -> None:
    """SIGTERM ends the session like Ctrl-C: devices closed, files complete."""
    import signal

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    if task is not None:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=getattr(args, "log_level", "WARNING"), format="%(levelname)s %(name)s: %(message)s")
    console = Console(stderr=True)
    from ..audio.devices import AudioDeviceError

    try:
        if args.list_devices:
            from ..audio.devices import list_devices

            print(list_devices())
            return 0
        if args.command is None:
            return asyncio.run(_live(args, console))
        if args.command == "bench":
            return asyncio.run(_bench(args, console))
        if args.command == "serve":
            from .serve import run_serve

            return asyncio.run(run_serve(args, build_config(args), console))
        return asyncio.run(_demo(args, console))
    except asyncio.CancelledError:
        return 0  # SIGTERM
    except (ConfigError, ModelError, AudioInputError, AudioDeviceError, ToolError) as exc:
        print(f"error: {exc}", file=sys.stderr)  # one line, never wrapped
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
