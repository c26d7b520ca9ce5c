"""Conversation history for one session, bounded so long sessions stay small.

The bound is a token budget (and a number of turns): the system prompt is
always kept, and whole exchanges are dropped from the oldest, so the history
always starts at a user message. Tokens are estimated, not counted: the
agent talks to any model, whose tokenizer it does not have, and about four
characters a token (plus a few per message) is what OpenAI documents for
English.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..core.config import LLMConfig

INTERRUPTED_MARK = " [interrupted by the user]"


def estimate_tokens(message: dict[str, Any]) -> int:
    text = str(message.get("content") or "")
    if "tool_calls" in message:
        text += json.dumps(message["tool_calls"])
    return 4 + (len(text) + 3) // 4


@dataclass
class History:
    """The conversation the LLM sees: system prompt, then whole exchanges, trimmed to a budget."""

    system_prompt: str
    max_turns: int = 20  # user messages kept (each with the replies after it)
    max_tokens: int = 3_000  # the system prompt and the kept messages, estimated
    journal: Callable[[dict[str, Any]], None] | None = None  # told of every change (the transcript file)
    summary: str = ""  # of exchanges trimmed away (see summary.py), sent with the system prompt
    keep_dropped: bool = False  # keep trimmed exchanges in `dropped` until summarized
    dropped: list[dict[str, Any]] = field(default_factory=list)
    _messages: list[dict[str, Any]] = field(default_factory=list)
    _tokens: int = 0  # of `_messages`
    _users: int = 0

    @classmethod
    def for_config(cls, cfg: LLMConfig) -> History:
        return cls(cfg.system_prompt, cfg.history_turns, cfg.history_tokens, keep_dropped=cfg.summarize_history)

    def restore(self, messages: list[dict[str, Any]]) -> None:
        """Start from an earlier conversation (not journaled: it is in the transcript already)."""
        journal, self.journal = self.journal, None
        for m in messages:
            self.add(m)
        self.journal = journal

    def add_user(self, text: str) -> None:
        self.add({"role": "user", "content": text})

    def add_assistant(self, text: str, interrupted: bool = False) -> None:
        """Record a reply; an interrupted one is marked so the LLM knows it was cut off."""
        if interrupted:
            text = text.rstrip() + INTERRUPTED_MARK if text.strip() else INTERRUPTED_MARK.strip()
        if not text.strip():
            return
        self.add({"role": "assistant", "content": text})

    def replace_last_assistant(self, text: str, interrupted: bool = False) -> None:
        """Rewrite the latest reply (to what was really heard of it)."""
        if self._messages and self._messages[-1]["role"] == "assistant":
            self._delete(len(self._messages) - 1)
            self._note({"retract": "last_assistant"})
        self.add_assistant(text, interrupted)

    def add(self, message: dict[str, Any]) -> None:
        """Any message (user, assistant, tool calls and results)."""
        self._messages.append(message)
        self._tokens += estimate_tokens(message)
        self._users += message["role"] == "user"
        self._note(message)
        self._trim()

    def drop_last_user(self) -> None:
        """Forget the last user message and what followed (its turn failed or was dropped)."""
        for i in range(len(self._messages) - 1, -1, -1):
            if self._messages[i]["role"] == "user":
                self._delete(i, len(self._messages))
                self._note({"retract": "last_user"})
                return

    def _note(self, change: dict[str, Any]) -> None:
        if self.journal is not None:
            self.journal(change)

    @property
    def tokens(self) -> int:
        """Estimated tokens of what `messages()` sends."""
        return estimate_tokens({"content": self._system()}) + self._tokens

    def messages(self) -> list[dict[str, Any]]:
        return [{"role": "system", "content": self._system()}, *self._messages]

    def _system(self) -> str:
        if not self.summary:
            return self.system_prompt
        return f"{self.system_prompt}\n\nEarlier in this conversation (summary): {self.summary}"

    def take_dropped(self) -> list[dict[str, Any]]:
        dropped, self.dropped = self.dropped, []
        return dropped

    def set_summary(self, summary: str) -> None:
        self.summary = summary
        self._trim()

    @property
    def turns(self) -> list[dict[str, Any]]:
        return list(self._messages)

    def _trim(self) -> None:
        while self._users > 1 and (self._users > self.max_turns or self.tokens > self.max_tokens):
            # Drop the oldest exchange: its user message and everything up to the next one.
            end = next((i for i, m in enumerate(self._messages) if i and m["role"] == "user"), len(self._messages))
            if self.keep_dropped:
                self.dropped += self._messages[:end]
                del self.dropped[: -4 * self.max_turns]  # bounded, should summaries fail for a while
            self._delete(0, end)

    def _delete(self, start: int, end: int | None = None) -> None:
        end = start + 1 if end is None else end
        for m in self._messages[start:end]:
            self._tokens -= estimate_tokens(m)
            self._users -= m["role"] == "user"
        del self._messages[start:end]
