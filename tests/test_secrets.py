"""The API key never appears in logs, reports, metrics, transcripts or error messages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import SPEECH

from voice_agent.measure.scripted_llm import Reply, ScriptedLLM

KEY = "sk-proj-SECRET-0123456789abcdefXYZ"


async def test_the_api_key_is_never_written_anywhere(tmp_path: Path) -> None:
    async with ScriptedLLM("Fine.") as server:
        server.when("forward", Reply(fault="401"))  # the error path: the key is what is wrong
        env = {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": KEY, "OPENAI_MODEL": "scripted", "PATH": "/usr/bin:/bin"}
        out = tmp_path / "out"
        out.mkdir()
        run = subprocess.run(
            [sys.executable, "-m", "voice_agent", "demo", "--fast", "--log-level", "DEBUG",
             "--input", str(SPEECH / "ps_goforward.wav"), "--input", str(SPEECH / "ps_cards_003.wav"),
             "--output", str(out / "o.wav"), "--report", str(out / "r.json"), "--transcript", str(out / "t.jsonl")],
            capture_output=True, text=True, timeout=300, env=env,
        )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    logs = run.stdout + run.stderr
    assert "rejected the API key (HTTP 401)" in logs, "the failure itself is reported"
    assert "HTTP Request: POST" in logs or "Request options" in logs, "debug logging of the HTTP client was on"
    assert KEY not in logs and KEY[-12:] not in logs
    for f in out.iterdir():
        assert KEY.encode() not in f.read_bytes(), f.name
