"""`voice-agent bench` end to end on a small slice of the real speech (figures are not judged here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from voice_agent.metrics import summary


def test_summary_uses_nearest_rank_percentiles() -> None:
    assert summary(list(range(1, 21))) == {"p50": 10, "p95": 19, "max": 20}
    assert summary([]) == {"p50": None, "p95": None, "max": None}


def test_bench_writes_the_documented_json_and_plot(tmp_path: Path) -> None:
    out, plot = tmp_path / "bench.json", tmp_path / "bench.png"
    proc = subprocess.run(
        [sys.executable, "-m", "voice_agent.cli", "bench", "--limit", "2", "--bargein-trials", "1",
         "--ttft-ms", "50", "--json", str(out), "--plot", str(plot)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    for key in ("response_latency_ms", "baseline_response_latency_ms", "bargein_stop_ms"):
        assert set(result[key]) == {"p50", "p95", "max"} and result[key]["p50"] is not None, key
    assert set(result["stt"]) == {"agent", "stock"}
    assert all(set(v) == {"wer", "mean_ms"} for v in result["stt"].values())
    assert set(result["stages_p50_ms"]) >= {"stt_ms", "llm_first_token_ms", "tts_first_audio_ms"}
    assert len(result["turns"]) >= 2 and result["end_of_turn_silence_ms"] == 500
    assert result["machine"]["cores"] >= 1 and result["machine"]["cpu_model"]
    assert result["stages_p50_ms"]["llm_first_token_ms"] >= 50  # the scripted time to first token
    assert plot.stat().st_size > 10_000 and plot.read_bytes()[:4] == b"\x89PNG"
    assert "response_latency_ms" in proc.stderr  # the table


def test_bench_with_a_bad_speech_dir_is_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "voice_agent.cli", "bench", "--speech-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("error: no manifest.tsv")
