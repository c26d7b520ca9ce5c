"""The conversation on disk: `--transcript FILE.jsonl` writes it, `--resume FILE.jsonl` reads it back.

One JSON object per line, appended and fsynced as the history changes, so a
crash or `kill -9` loses at most the turn in progress. A line is a chat
message (`role`, `content`, ... and `at`, when it was said), or a
correction: `{"retract": "last_user"}` (a turn that failed or that the user
talked over) or `{"retract": "last_assistant"}` (a reply rewritten to the
words that were really heard). Replaying the lines gives the history.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..core.config import Config, ConfigError
from .history import History
from .session_log import JsonLines

log = logging.getLogger(__name__)


class TranscriptError(ConfigError):
    """A transcript that cannot be resumed: one line for the user."""


def replay(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for line in lines:
        retract = line.get("retract")
        if retract == "last_user":
            last = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=None)
            if last is not None:
                del messages[last:]
        elif retract == "last_assistant":
            if messages and messages[-1]["role"] == "assistant":
                messages.pop()
        else:
            messages.append({k: v for k, v in line.items() if k != "at"})
    return messages


def load(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The conversation in `path` up to its last answered turn, and how many user messages after it got no answer."""
    try:
        raw = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise TranscriptError(f"transcript not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TranscriptError(f"cannot read transcript {path}: {exc}") from None
    lines: list[dict[str, Any]] = []
    for n, text in enumerate(raw, 1):
        if not text.strip():
            continue
        try:
            line = json.loads(text)
        except json.JSONDecodeError:
            if n == len(raw):
                log.warning("%s: last line incomplete (the session was killed while writing it): skipped", path)
                continue
            raise TranscriptError(f"{path} line {n} is not JSON: not a transcript") from None
        if not isinstance(line, dict) or not ("role" in line or "retract" in line):
            raise TranscriptError(f"{path} line {n} is neither a message nor a correction: not a transcript")
        lines.append(line)
    messages = replay(lines)
    unanswered = 0
    while messages and messages[-1]["role"] != "assistant":
        unanswered += messages.pop()["role"] == "user"  # the turn in progress when the session ended
    return messages, unanswered


class TranscriptWriter:
    """`History.journal`: each change appended to the file the moment it happens."""

    def __init__(self, path: Path) -> None:
        self._out = JsonLines(path)

    def __call__(self, change: dict[str, Any]) -> None:
        if "role" in change:
            change = change | {"at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        self._out.write(change)

    def close(self) -> None:
        self._out.close()


def open_history(cfg: Config) -> tuple[History, TranscriptWriter | None]:
    """The session's history: resumed from `cfg.resume`, journaled to `cfg.transcript` (or the resumed file)."""
    history = History.for_config(cfg.llm)
    messages, unanswered = load(Path(cfg.resume)) if cfg.resume else ([], 0)
    history.restore(messages)
    path = cfg.transcript or cfg.resume
    if path is None:
        return history, None
    writer = TranscriptWriter(Path(path))
    if cfg.resume and Path(path).resolve() == Path(cfg.resume).resolve():
        for _ in range(unanswered):
            writer({"retract": "last_user"})  # so the file replays to what the session goes on from
    else:
        for m in messages:
            writer(m)  # a new file holds the whole conversation
    history.journal = writer
    return history, writer
