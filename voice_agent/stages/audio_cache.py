"""An LRU cache of synthesized speech, so phrases said again cost nothing.

Keyed by voice, speaking rate and text. Fillers, the greeting and the
apology are synthesized at start-up and pinned (never evicted); other short
phrases ("Sure.", "Okay.") are kept while they fit in `max_bytes`.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

Key = tuple[str, float | None, float, str]  # voice, length_scale, volume, text


class Sized(Protocol):
    @property
    def nbytes(self) -> int: ...


V = TypeVar("V", bound=Sized)  # the synthesized audio (tts.Speech), with its size


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0

    @property
    def hit_rate(self) -> float | None:
        total = self.hits + self.misses
        return round(self.hits / total, 3) if total else None


class AudioCache(Generic[V]):
    def __init__(self, max_bytes: int = 16 << 20, max_text_chars: int = 80) -> None:
        self.max_bytes = max_bytes
        self.max_text_chars = max_text_chars  # longer text rarely repeats: not worth the room
        self.stats = CacheStats()
        self._entries: OrderedDict[Key, V] = OrderedDict()
        self._pinned: dict[Key, V] = {}
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries) + len(self._pinned)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def get(self, key: Key) -> V | None:
        audio = self._pinned.get(key)
        if audio is None:
            audio = self._entries.get(key)
            if audio is not None:
                self._entries.move_to_end(key)
        if audio is None:
            self.stats.misses += 1
        else:
            self.stats.hits += 1
        return audio

    def put(self, key: Key, audio: V, pinned: bool = False) -> None:
        if pinned:
            self._pinned[key] = audio
            return
        if len(key[-1]) > self.max_text_chars or audio.nbytes > self.max_bytes or key in self._entries:
            return
        self._entries[key] = audio
        self._bytes += audio.nbytes
        while self._bytes > self.max_bytes:
            _, old = self._entries.popitem(last=False)
            self._bytes -= old.nbytes
