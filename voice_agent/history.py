"""Conversation history for one session, bounded so long sessions stay small."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

INTERRUPTED_MARK = " [interrupted by the user]"


@dataclass
class History:
    system_prompt: str
    max_turns: int = 20  # user messages kept (each with the replies after it)
    max_chars: int = 12_000  # a rough token budget: about 4 characters a token
    _messages: list[dict[str, Any]] = field(default_factory=list)

    def add_user(self, text: str) -> None:
        self._messages.append({"role": "user", "content": text})
        self._trim()

    def add_assistant(self, text: str, interrupted: bool = False) -> None:
        """Record a reply; an interrupted one is marked so the LLM knows it was cut off."""
        if interrupted:
            text = text.rstrip() + INTERRUPTED_MARK if text.strip() else INTERRUPTED_MARK.strip()
        if not text.strip():
            return
        self._messages.append({"role": "assistant", "content": text})
        self._trim()

    def replace_last_assistant(self, text: str, interrupted: bool = False) -> None:
        """Rewrite the latest reply (to what was really heard of it)."""
        if self._messages and self._messages[-1]["role"] == "assistant":
            del self._messages[-1]
        self.add_assistant(text, interrupted)

    def add(self, message: dict[str, Any]) -> None:
        """Any other message (tool calls and results)."""
        self._messages.append(message)
        self._trim()

    def drop_last_user(self) -> None:
        """Forget the last user message (its turn failed and got no reply)."""
        for i in range(len(self._messages) - 1, -1, -1):
            if self._messages[i]["role"] == "user":
                del self._messages[i:]
                return

    def messages(self) -> list[dict[str, Any]]:
        return [{"role": "system", "content": self.system_prompt}, *self._messages]

    @property
    def turns(self) -> list[dict[str, Any]]:
        return list(self._messages)

    def _trim(self) -> None:
        # Drop whole exchanges from the front, so the history always starts at
        # a user message (a reply without its question confuses models).
        while self._messages and (self._user_count() > self.max_turns or self._chars() > self.max_chars):
            if self._user_count() <= 1:
                break
            del self._messages[0]
            while self._messages and self._messages[0]["role"] != "user":
                del self._messages[0]

    def _user_count(self) -> int:
        return sum(1 for m in self._messages if m["role"] == "user")

    def _chars(self) -> int:
        return len(self.system_prompt) + sum(len(str(m.get("content") or "")) for m in self._messages)
