"""Files a live session appends to as it goes: one JSON object per line.

Every line is flushed and fsynced as it is written, so a crash or `kill -9`
loses at most what was in progress.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..core.events import UserStoppedSpeaking
from .metrics import Turn, TurnRecorder


class JsonLines:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("a", encoding="utf-8")

    def write(self, obj: dict[str, Any]) -> None:
        self._file.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


class MetricsLog:
    """`--metrics`: a `turn` line per finished turn and the (rate-limited) `progress` lines it is given."""

    def __init__(self, path: Path, recorder: TurnRecorder) -> None:
        self.recorder = recorder
        self._out = JsonLines(path)
        self._written: set[int] = set()  # ids of the turns written (the recorder keeps only recent ones)

    def progress(self, record: dict[str, Any]) -> None:
        """A `progress.ProgressTracker` snapshot."""
        self._out.write({"type": "progress", **record})

    def observe(self, event: Any) -> None:
        if isinstance(event, UserStoppedSpeaking):
            self._write(list(self.recorder.turns)[:-1])  # all but the turn ending now

    def _write(self, turns: list[Turn]) -> None:
        for turn in turns:
            if turn.user_text and id(turn) not in self._written:
                self._out.write({"type": "turn", **turn.report()})
                self._written.add(id(turn))
        live = {id(t) for t in self.recorder.turns}
        self._written &= live

    def close(self) -> None:
        self._write(list(self.recorder.turns))
        self._out.close()
