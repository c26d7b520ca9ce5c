"""`voice-agent bench` end to end on a small slice of the real speech (figures are not judged here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from voice_agent.app.bench import sentence_gaps
from voice_agent.conversation.metrics import summary
from voice_agent.core.events import AudioChunk
from voice_agent.core.timeline import Placed


def test_summary_uses_nearest_rank_percentiles() -> None:
    assert summary(list(range(1, 21))) == {"p50": 10, "p95": 19, "max": 20}
    assert summary([]) == {"p50": None, "p95": None, "max": None}


def test_sentence_gaps_are_the_silences_inside_each_reply() -> None:
    def at(rid: int, start: int, end: int, planned_end: int = 0) -> Placed:
        return Placed(start, end, AudioChunk(rid, np.zeros(1, np.int16), 22050, "x"), planned_end)

    # Reply 1: back to back, then 20 ms late. Reply 2 was cut off: its planned end counts, not the cut.
    placed = [at(1, 0, 1600), at(1, 1600, 3200), at(1, 3520, 4000), at(2, 9000, 9100, planned_end=9600), at(2, 9600, 9700)]
    assert sentence_gaps(placed) == [0.0, 20.0, 0.0]


def test_soak_writes_the_documented_json(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    proc = subprocess.run(
        [sys.executable, "-m", "voice_agent", "bench", "--soak", "8", "--json", str(out)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    soak = json.loads(out.read_text())["soak"]
    assert {"turns", "rss_growth_pct", "fd_growth", "task_growth", "stale_audio"} <= set(soak)
    assert soak["turns"] == 8 and isinstance(soak["stale_audio"], int)


def test_bench_writes_the_documented_json_and_plot(tmp_path: Path) -> None:
    out, plot = tmp_path / "bench.json", tmp_path / "bench.png"
    proc = subprocess.run(
        [sys.executable, "-m", "voice_agent", "bench", "--limit", "2", "--bargein-trials", "1",
         "--ttft-ms", "50", "--json", str(out), "--plot", str(plot)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    for key in ("response_latency_ms", "baseline_response_latency_ms", "bargein_stop_ms", "sentence_gap_ms"):
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
        [sys.executable, "-m", "voice_agent", "bench", "--speech-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("error: no manifest.tsv")
