"""`voice-agent serve` as its own process, for tests whose client is a real program."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from conftest import free_port


@asynccontextmanager
async def serve_process(llm_url: str, *args: str) -> AsyncIterator[int]:
    """Start the server on a free loopback port with the scripted LLM; yield the port once it listens."""
    port = free_port()
    env = {**os.environ, "OPENAI_API_KEY": "sk-test-secret-1234"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "voice_agent", "serve", "--port", str(port), "--base-url", llm_url,
        "--model", "scripted", "--tools", "none", *args,
        stderr=asyncio.subprocess.PIPE, env=env,
    )
    assert proc.stderr is not None
    seen: list[str] = []

    async def started() -> None:
        assert proc.stderr is not None
        while b"serving on" not in (line := await proc.stderr.readline()):
            seen.append(line.decode(errors="replace"))
            assert line, f"serve exited: {''.join(seen)}"

    drain = None
    try:
        await asyncio.wait_for(started(), 120)
        drain = asyncio.create_task(proc.stderr.read())  # keep the pipe from filling
        yield port
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()
        if drain is not None:
            await drain
