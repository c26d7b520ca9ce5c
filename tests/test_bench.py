"""`voice-agent bench` end to end on a small slice of the real speech: the JSON is the judge's reading of the audio.

Timing figures are not thresholds here (noisy machines); what is asserted is that
they were read from the recorded conversation and hang together."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from conftest import SPEECH

from voice_agent.app.bench import DEFAULT_REPLY, load_manifest, load_manifests, reply_spans, sentence_gaps
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


def test_the_default_reply_is_two_sentences_of_26_words_the_first_13() -> None:
    first, second = (part.strip() for part in DEFAULT_REPLY.split(".")[:2])
    assert len(first.split()) == 13 and len(second.split()) == 13
    assert DEFAULT_REPLY.count(".") == 2 and not DEFAULT_REPLY.startswith("Sure")


def test_bench_judges_the_recorded_conversation_and_writes_the_documented_json(tmp_path: Path) -> None:
    out, plot = tmp_path / "bench.json", tmp_path / "bench.png"
    proc = subprocess.run(
        [sys.executable, "-m", "voice_agent", "bench", "--speech-dir", str(SPEECH), "--speech-dir", str(SPEECH / "pauses"),
         "--limit", "2", "--bargein-trials", "1", "--ttft-ms", "50", "--json", str(out), "--plot", str(plot)],
        capture_output=True, text=True, timeout=900, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert result["recordings"] == 2 and len(result["per_recording"]) == 2
    for key in ("unanswered", "premature", "answered_more_than_once", "words_passed_twice", "words_carried_from_before", "no_speech_found"):
        assert isinstance(result[key], list), key
    rows = result["per_recording"]
    assert [r["file"] for r in rows] == ["speech/ps_librivox_sense_and_sensibility_0870.wav", "speech/ps_librivox_sense_and_sensibility_0880.wav"]
    assert result["answered"] == sum(r["answered"] for r in rows)
    assert sorted(result["unanswered"]) == sorted(r["file"] for r in rows if not r["answered"])
    for r in rows:
        # The end of speech is the recording's own (the judge's rule), placed on the session's timeline.
        assert r["speech_onset_ms"] < r["speech_end_ms"]
        if r["answered"]:
            assert r["latency_ms"] is not None and r["latency_ms"] >= 0 and r["answers"] >= 1
        # What the LLM received comes from the scripted server's request log.
        assert r["received"] or not r["answered"]
        # Where the time went (the agent's stage stamps on the judged timeline): in pipeline order.
        st = r["stages_ms"]
        if r["answered"]:
            chain = [st[k] for k in ("stt_done", "llm_first_token", "first_chunk", "tts_first_audio")]
            assert None not in chain and chain == sorted(chain), st
            assert st["placed"] <= st["heard"] == r["latency_ms"], st
    assert set(result["stages_ms_median"]) >= {"speculation_start", "stt_done", "tts_first_audio", "heard"}
    for key in ("response_latency_ms", "bargein_stop_ms", "sentence_gap_ms"):
        assert set(result[key]) == {"p50", "p95", "max"}, key
    assert set(result["baseline"]["response_latency_ms"]) == {"p50", "p95", "max"}
    assert len(result["baseline"]["per_recording"]) == 2
    assert 0 <= result["session_wer"] <= 2
    assert set(result["stt"]) == {"agent", "stock"}
    assert all(set(v) == {"wer", "mean_ms"} for v in result["stt"].values())
    assert result["settings"]["tokens_per_s"] == 30 and result["settings"]["scripted_reply"] == DEFAULT_REPLY
    assert result["machine"]["cores"] >= 1 and result["machine"]["cpu_model"]
    assert result["cpu_s_per_recording"] > 0 and result["peak_rss_mb"] > 0
    assert plot.stat().st_size > 10_000 and plot.read_bytes()[:4] == b"\x89PNG"
    assert "judged from the audio" in proc.stderr  # the table


def test_bench_with_a_bad_speech_dir_is_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "voice_agent", "bench", "--speech-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("error: no manifest.tsv")


def test_a_manifest_may_list_files_in_subfolders_and_folders_add_up(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.wav").write_bytes((SPEECH / "ps_cards_001.wav").read_bytes())
    (tmp_path / "manifest.tsv").write_text("file\ttranscript\nsub/a.wav\tten of clubs\n")
    items = load_manifests([tmp_path, SPEECH])
    assert items[0].name == f"{tmp_path.name}/sub/a.wav" and items[0].reference == "ten of clubs"
    assert items[0].path.is_file() and len(items) == 1 + len(load_manifest(SPEECH))


def test_reply_spans_are_what_the_sink_played_per_reply() -> None:
    def at(rid: int, start: int, end: int) -> Placed:
        return Placed(start, end, AudioChunk(rid, np.zeros(1, np.int16), 22050, "x"))

    assert reply_spans([at(1, 0, 100), at(1, 400, 500), at(2, 900, 950), at(1, 100, 200)]) == [(0, 500), (900, 950)]
