"""voice_agent: a real-time, interruptible, local voice agent.

The package reads like the pipeline:

    audio source -> vad -> stt -> llm -> sentences -> tts -> audio sink

with `events` (what flows) and `routes` (how it flows) as the streaming core.
"""

__version__ = "0.1.0"
