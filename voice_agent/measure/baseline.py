"""The naive sequential pipeline most hobby agents are: the benchmark's yardstick.

Wait for the end-of-turn silence, run stock `WhisperModel.transcribe` (30 s
window), wait for the whole LLM reply, synthesize all of it, then play. Each
stage runs for real on the same models; the latency is the sum.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..conversation.agent import Parts
from ..conversation.metrics import ms
from ..core.events import UserStoppedSpeaking


@dataclass
class BaselineTurn:
    response_latency_ms: float
    stages: dict[str, float]
    text: str


async def naive_turn(parts: Parts, turn: UserStoppedSpeaking, messages: list[dict[str, Any]]) -> BaselineTurn:
    t0 = time.perf_counter()
    text = parts.stt.transcribe_stock(turn.audio).text
    t1 = time.perf_counter()
    reply = "".join([chunk async for chunk in parts.llm.stream([*messages, {"role": "user", "content": text}])])
    t2 = time.perf_counter()
    audio = parts.tts.synthesize_sync(reply) if reply.strip() else np.zeros(0, np.int16)
    t3 = time.perf_counter()
    stages = {
        "vad_end_of_turn_ms": ms(turn.decided_at - turn.end),
        "stt_ms": round((t1 - t0) * 1000, 1),
        "llm_whole_reply_ms": round((t2 - t1) * 1000, 1),
        "tts_whole_reply_ms": round((t3 - t2) * 1000, 1),
    }
    del audio
    return BaselineTurn(round(sum(stages.values()), 1), stages, text)
