"""The TTS audio cache: LRU by bytes, pinned phrases, hit statistics. Pure."""

from __future__ import annotations

import numpy as np

from voice_agent.stages.audio_cache import AudioCache


def key(text: str) -> tuple[str, float | None, float, str]:
    return ("voice.onnx", None, 1.0, text)


def audio(n: int) -> np.ndarray:
    return np.zeros(n, np.int16)  # 2 bytes a sample


def test_least_recently_used_goes_first_and_pinned_never_goes() -> None:
    cache = AudioCache(max_bytes=3000)
    cache.put(key("One moment."), audio(5000), pinned=True)  # bigger than the budget: pinned anyway
    for word in ("a", "b", "c"):
        cache.put(key(word), audio(500))  # 1000 bytes each
    assert cache.get(key("a")) is not None  # "a" is now the most recent
    cache.put(key("d"), audio(500))  # over budget: "b" goes
    assert cache.get(key("b")) is None
    assert all(cache.get(key(w)) is not None for w in ("a", "c", "d", "One moment."))
    assert cache.nbytes == 3000 and len(cache) == 4


def test_long_text_is_not_worth_the_room_and_stats_count() -> None:
    cache = AudioCache(max_bytes=1 << 20, max_text_chars=20)
    cache.put(key("x" * 21), audio(10))
    assert cache.get(key("x" * 21)) is None
    cache.put(key("Sure."), audio(10))
    assert cache.get(key("Sure.")) is not None and cache.get(key("Sure.")) is not None
    assert (cache.stats.hits, cache.stats.misses, cache.stats.hit_rate) == (2, 1, 0.667)
    other_voice = ("other.onnx", None, 1.0, "Sure.")
    assert cache.get(other_voice) is None, "keyed by voice too"
