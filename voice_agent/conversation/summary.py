"""Summarizing what the history trimmed away, so a long conversation keeps its gist.

Optional (`[llm] summarize_history = true`). After a turn that pushed old
exchanges out of the token budget, the LLM is asked, in the background, for
a short summary of the previous summary plus those exchanges; the history
then sends it with the system prompt. A failed summary keeps the old one.
"""

from __future__ import annotations

import logging
from typing import Any

from ..stages.llm import ChatBackend, LLMError
from .history import History

log = logging.getLogger(__name__)

INSTRUCTION = (
    "Summarize this earlier part of a spoken conversation in at most three short sentences. "
    "Keep names, numbers and anything decided or promised."
)
MAX_SUMMARY_CHARS = 600


def summary_request(previous: str, dropped: list[dict[str, Any]]) -> list[dict[str, Any]]:
    lines = [f"Summary so far: {previous}"] if previous else []
    for m in dropped:
        if m.get("content") and m["role"] in ("user", "assistant", "tool"):
            lines.append(f"{m['role']}: {m['content']}")
    return [{"role": "system", "content": INSTRUCTION}, {"role": "user", "content": "\n".join(lines)}]


async def summarize(llm: ChatBackend, history: History) -> None:
    """Fold the exchanges the history dropped into its summary."""
    dropped = history.take_dropped()
    if not dropped:
        return
    try:
        parts = [p async for p in llm.stream(summary_request(history.summary, dropped)) if isinstance(p, str)]
    except LLMError as exc:
        log.warning("could not summarize earlier turns: %s", exc)
        return
    except Exception:  # noqa: BLE001 - a background nicety must never end the session
        log.exception("summarizing earlier turns failed")
        return
    text = " ".join("".join(parts).split())[:MAX_SUMMARY_CHARS]
    if text:
        history.set_summary(text)
        log.info("history summary: %s", text)
