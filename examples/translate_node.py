"""Live translation: each thing you say is answered with its translation, streamed from the LLM.

    voice-agent demo --node examples.translate_node:translate --input tests/speech/ps_goforward.wav
    TRANSLATE_TO=German voice-agent --node examples.translate_node:translate     # live, on the microphone

The node asks the configured LLM (OpenAI-compatible, or the embedded one)
with its own instructions instead of the conversation, so every utterance is
translated on its own. The first words are spoken while the LLM is still
writing the rest; talking over it stops it, as with any reply.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator

from voice_agent import AgentResponse, Turn


def instructions(language: str) -> str:
    return (
        f"You are an interpreter. Translate what the user says into {language}. "
        "Answer with the translation only: no quotes, no notes, no explanations."
    )


async def translate(turn: Turn) -> AsyncIterator[AgentResponse]:
    language = os.environ.get("TRANSLATE_TO", "French")
    messages = [{"role": "system", "content": instructions(language)}, {"role": "user", "content": turn.user_text}]
    async for chunk in turn.stream_llm(messages, tools=False):
        yield chunk


if __name__ == "__main__":
    from voice_agent.app.cli import main

    sys.exit(main(["demo", "--node", "__main__:translate", *sys.argv[1:]]))
