"""The pause set holds what its manifest says: real utterances, each pause where it was put, no digital silence."""

from __future__ import annotations

import csv

import numpy as np
import soundfile as sf
from conftest import SPEECH

from voice_agent.measure.judge import speech_extent

PAUSES = SPEECH / "pauses"


def rows() -> list[dict[str, str]]:
    with (PAUSES / "manifest.tsv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def test_the_set_has_thirty_utterances_with_each_pause_length_and_the_short_answers() -> None:
    table = rows()
    with_pauses = [r for r in table if r["pauses_ms"]]
    assert len(with_pauses) >= 30
    lengths = {int(p) for r in with_pauses for p in r["pauses_ms"].split(",")}
    assert lengths == {300, 500, 800}
    shorts = {r["transcript"] for r in table if r["kind"] == "short"}
    assert {"six", "no", "thank you", "goodbye"} <= shorts
    assert all(r["transcript"].strip() for r in table)


def test_every_pause_put_in_is_heard_in_the_audio() -> None:
    """Each pause asked for shows up as a silence between words within 60 ms (by the judge's rule)."""
    for r in rows():
        for pause in filter(None, r["pauses_ms"].split(",")):
            measured = [int(g) for g in r["measured_gaps_ms"].split(",") if g]
            assert any(abs(g - int(pause)) <= 60 for g in measured), (r["file"], pause, measured)


def test_files_are_16k_mono_pcm16_with_speech_and_no_digital_silence() -> None:
    for r in rows():
        info = sf.info(PAUSES / r["file"])
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16"), r["file"]
        audio, _ = sf.read(PAUSES / r["file"], dtype="int16")
        assert speech_extent(audio.astype(np.float32) / 32768) is not None, r["file"]
        frames = audio[: len(audio) // 160 * 160].reshape(-1, 160)
        assert not np.any(np.all(frames == 0, axis=1)), f"{r['file']} has 10 ms of digital silence"
