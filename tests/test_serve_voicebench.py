"""voicebench, a harness from PyPI, judges `voice-agent serve` from the audio it recorded.

The scenario (tests/voicebench/conversation.yaml) plays recorded speech into the
server over the WebSocket protocol in real time: a question that must be
answered, speech over the agent's reply that must stop it, and a cough over the
next reply that must not. voicebench's own report says whether each passed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import TESTS

from voice_agent.app.sessions_bench import serve_process
from voice_agent.measure.scripted_llm import ScriptedLLM

LONG = (
    "The old lighthouse stood on the rocks for two hundred years. Sailors trusted its light on every "
    "stormy night. Its keeper climbed the stairs each evening. Nobody remembers his name today."
)


async def test_voicebench_scenario_passes(llm_server: ScriptedLLM, tmp_path: Path) -> None:
    llm_server.default_reply = LONG  # long enough to be interrupted, and to cough over
    async with serve_process(llm_server.base_url) as port:
        run = await _run_voicebench(TESTS / "voicebench" / "conversation.yaml", f"ws://127.0.0.1:{port}/ws", tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    report = json.loads((tmp_path / "report.json").read_text())
    # voicebench's own verdict: every assertion of the scenario held ...
    assert report["passed"] and len(report["assertions"]) == 4, report["assertions"]
    summary = report["summary"]
    assert summary["missed_responses"] == 0 and summary["false_barge_ins"] == 0
    assert summary["barge_in_success_rate"] == 1.0
    # ... and turn by turn, as it judged them from the audio it recorded.
    turns = {t["id"]: t for s in report["sessions"] for t in s["turns"]}
    assert turns["question"]["passed"] and turns["question"]["responded"]
    assert turns["question"]["wer"] is not None and turns["question"]["wer"] <= 0.35
    assert turns["barge-in"]["stopped"]  # silent within the scenario's max_stop_ms of the speech
    assert turns["cough"]["false_barge_in"] is False and turns["cough"]["passed"]


async def _run_voicebench(scenario: Path, url: str, out: Path) -> subprocess.CompletedProcess[str]:
    import asyncio

    cmd = [sys.executable, "-m", "voicebench", "run", str(scenario), "--url", url, "--out", str(out), "--format", "json"]
    return await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, timeout=240, check=False)
