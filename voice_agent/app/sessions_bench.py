"""`voice-agent bench --sessions 1,2,4,8`: how many conversations one process holds.

It starts `voice-agent serve` as its own process (the scripted loopback LLM
runs here, as a remote LLM would), then for each N runs N WebSocket clients at
once, each speaking recorded utterances from the speech folder in real time
and waiting for each answer. Latency is judged on each client's own timeline
(measure/ws_client.py): end of the words in the recording -> first agent audio
as a client playing on arrival would hear it. Unanswered utterances and
answers that began before the words ended are counted, not hidden.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from ..audio.source import read_audio
from ..conversation.metrics import summary
from ..measure.ws_client import converse
from .bench import DEFAULT_REPLY, load_manifests, machine

MAX_CLIP_S = 6.0  # long readings would make a round last minutes


@contextlib.asynccontextmanager
async def serve_process(llm_url: str, *args: str) -> AsyncIterator[int]:
    """`voice-agent serve` on a free loopback port with an LLM at `llm_url` (and `args`); yields the port once it listens."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    cmd = [sys.executable, "-m", "voice_agent", "serve", "--port", str(port), "--base-url", llm_url, "--model", "scripted"]
    cmd += ["--tools", "none", *args]
    proc = await asyncio.create_subprocess_exec(*cmd, stderr=asyncio.subprocess.PIPE, env={**os.environ, "OPENAI_API_KEY": "scripted"})
    assert proc.stderr is not None
    drain = None
    try:
        lines = []
        while b"serving on" not in (line := await asyncio.wait_for(proc.stderr.readline(), 180)):
            if not line:
                raise RuntimeError("voice-agent serve exited: " + b"".join(lines).decode(errors="replace")[-500:])
            lines.append(line)
        drain = asyncio.create_task(proc.stderr.read())  # keep its pipe from filling
        yield port
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()
        if drain is not None:
            await drain


async def one_round(url: str, clips: list[tuple[str, np.ndarray]], sessions: int, turns: int) -> dict[str, Any]:
    """N sessions at once, each `turns` utterances; clients start 0.3 s apart, as people do."""

    async def client(i: int) -> list[dict[str, Any]]:
        picks = [(i * turns + j) % len(clips) for j in range(turns)]
        talk = await converse(url, [clips[k][1] for k in picks], lead_s=1.0 + 0.3 * i)
        said = [m["ms"] for _, m in talk.messages if m.get("type") == "latency"]
        return [t | {"session": i, "clip": clips[k][0]} for t, k in zip(talk.turns(), picks)] + [{"server_said_ms": said, "session": i}]

    results = await asyncio.gather(*(client(i) for i in range(sessions)))
    every = [t for r in results for t in r if "clip" in t]
    latencies = [t["latency_ms"] for t in every if t["latency_ms"] is not None]
    return {
        "sessions": sessions,
        "utterances": len(every),
        "unanswered": sum(t["latency_ms"] is None for t in every),
        "premature": sum(t["premature"] for t in every),
        "latency_ms": summary(latencies),
        "turns": every,
        # The server's own figures, for comparison only: the table is the clients' view.
        "server_latency_ms": [t for r in results for t in r if "server_said_ms" in t],
    }


async def run_sessions_bench(counts: list[int], speech_dirs: list[Path], turns: int, console: Console, config: str | None = None) -> dict[str, Any]:
    from ..measure.scripted_llm import ScriptedLLM

    items = load_manifests(speech_dirs)
    clips = [(i.path.name, a) for i, a in ((i, read_audio(i.path)) for i in items) if len(a) <= MAX_CLIP_S * 16000]
    llm = ScriptedLLM(DEFAULT_REPLY).start_in_thread()
    rounds = []
    try:
        args = ["--max-sessions", str(max(counts))] + (["--config", config] if config else [])
        async with serve_process(llm.base_url, *args) as port:
            url = f"ws://127.0.0.1:{port}/ws"
            for n in counts:
                with console.status(f"{n} concurrent session(s), {turns} utterances each"):
                    rounds.append(await one_round(url, clips, n, turns))
    finally:
        llm.stop_thread()
    return {"sessions_bench": rounds, "breaks_at": breaking_point(rounds), "machine": machine(), "llm": "scripted, no delay"}


def breaking_point(rounds: list[dict[str, Any]]) -> int | None:
    """The first N that leaves an utterance unanswered or doubles N=1's p95 latency."""
    base = rounds[0]["latency_ms"]["p95"] if rounds else None
    for r in rounds:
        p95 = r["latency_ms"]["p95"]
        if r["unanswered"] or r["premature"] or (base and p95 and p95 > 2 * base):
            return int(r["sessions"])
    return None


def print_sessions(result: dict[str, Any], console: Console) -> None:
    table = Table(title="concurrent sessions: end of speech -> first agent audio at the client")
    for col in ("sessions", "utterances", "p50 ms", "p95 ms", "max ms", "unanswered", "premature"):
        table.add_column(col, justify="right")
    for r in result["sessions_bench"]:
        lat = r["latency_ms"]
        table.add_row(*(str(v) for v in (r["sessions"], r["utterances"], lat["p50"], lat["p95"], lat["max"], r["unanswered"], r["premature"])))
    console.print(table)
    breaks = result["breaks_at"]
    console.print(f"breaks at {breaks} sessions (unanswered, premature, or p95 over twice one session's)" if breaks else "no breaking point in this range")


async def bench_sessions(args: Any, console: Console) -> int:
    """The command: `voice-agent bench --sessions 1,2,4,8 [--limit TURNS] [--json OUT.json]`."""
    import json

    from ..core.config import ConfigError

    try:
        counts = [int(n) for n in args.sessions.split(",")]
    except ValueError:
        raise ConfigError(f"--sessions takes counts like 1,2,4,8, got {args.sessions!r}") from None
    if not counts or min(counts) < 1:
        raise ConfigError("--sessions counts must be at least 1")
    result = await run_sessions_bench(counts, args.speech_dir, args.limit or 3, console, args.config)
    print_sessions(result, console)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0
