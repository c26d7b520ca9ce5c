"""voice_agent: a real-time, interruptible, local voice agent.

The package reads like the pipeline:

    audio source -> vad -> stt -> llm (or your node) -> sentences -> tts -> audio sink

with `core` (events, routes, the clock) as the streaming core, `stages` one
module per box, `audio` the edges, `conversation` the session, `app` the
commands. What is exported here is the public API; the modules behind it can
be imported but are not promised to stay where they are.

Write a node (see the README's "Your own node"):

    from voice_agent import Turn

    async def shout(turn: Turn):  # yields str or TextChunk, maybe Filler and tool events
        async for chunk in turn.stream_llm():
            yield chunk.text.upper() if isinstance(chunk, TextChunk) else chunk

and run it with `voice-agent --node mymodule:shout`, or embed the agent:
`Agent(parts, History.for_config(cfg.llm), sink, cfg, node=shout)` then
`agent.listen(source, Vad(cfg.vad))` inside `async with agent.bus:`.
"""

from .audio.sink import TimelineSink
from .audio.source import read_audio
from .conversation.agent import Agent
from .conversation.history import History
from .conversation.node import Node, Turn
from .conversation.parts import build_parts, close_parts
from .core.config import Config, load_config
from .core.events import (
    SAMPLE_RATE,
    AgentResponse,
    AudioChunk,
    Filler,
    Interruption,
    ResponseDone,
    TextChunk,
    ToolResult,
    Transcript,
)
from .core.timeline import Placed, Sink, Source
from .stages.tools import tool
from .stages.vad import Vad

__version__ = "0.1.0"

__all__ = [
    # run an agent, or embed one in your program
    "Agent",
    "Config",
    "History",
    "Vad",
    "build_parts",
    "close_parts",
    "load_config",
    # write a node, and tools
    "Node",
    "Turn",
    "tool",
    # what a node yields, and what a session publishes on `agent.bus`
    "AgentResponse",
    "AudioChunk",
    "Filler",
    "Interruption",
    "ResponseDone",
    "TextChunk",
    "ToolResult",
    "Transcript",
    # the edges: your own source and sink, on the one 16 kHz clock
    "SAMPLE_RATE",
    "Placed",
    "Sink",
    "Source",
    "TimelineSink",
    "read_audio",
]
