"""A conversation on the real-time timeline for tests: real models, a real HTTP LLM
server, a scripted user (`Say`, `Pause`, `Until`) and a sink that records what played."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from voice_agent.audio.sink import TimelineSink
from voice_agent.audio.source import ScriptedSource, Step, Until
from voice_agent.conversation.agent import Agent, Parts
from voice_agent.conversation.history import History
from voice_agent.core.config import Config
from voice_agent.core.events import ResponseDone
from voice_agent.core.timeline import WallClock
from voice_agent.measure.scripted_llm import ScriptedLLM
from voice_agent.stages.llm import OpenAIChat
from voice_agent.stages.stt import Transcriber
from voice_agent.stages.tools import Toolbox
from voice_agent.stages.tts import Synthesizer
from voice_agent.stages.turn_model import SmartTurn
from voice_agent.stages.vad import Vad
from voice_agent.testing import no_leaked_tasks


@dataclass
class Seen:
    clock: WallClock
    events: list[tuple[int, Any]] = field(default_factory=list)

    def observe(self, event: Any) -> None:
        self.events.append((self.clock.now(), event))

    def count(self, kind: type) -> int:
        return sum(isinstance(e, kind) for _, e in self.events)

    def when(self, kind: type) -> int:
        return next(t for t, e in self.events if isinstance(e, kind))

    def of(self, kind: type) -> list[Any]:
        return [e for _, e in self.events if isinstance(e, kind)]


Script = Callable[[Agent, Seen, WallClock], list[Step]]


async def converse(
    server: ScriptedLLM,
    models: tuple[Transcriber, Synthesizer],
    script: Script,
    cfg: Config | None = None,
    toolbox: Toolbox | None = None,
    turn_model: SmartTurn | None = None,
) -> tuple[Agent, Seen, TimelineSink]:
    cfg = cfg or Config()
    llm = OpenAIChat(replace(cfg.llm, base_url=server.base_url, api_key="k", model="scripted", backend="openai"))
    clock = WallClock()
    sink = TimelineSink(clock, cfg.audio.output_rate)
    agent = Agent(Parts(*models, llm=llm, toolbox=toolbox, turn_model=turn_model), History.for_config(cfg.llm), sink, cfg)
    vad = Vad(cfg.vad)
    seen = Seen(clock)
    agent.bus.tap(seen.observe)
    source = ScriptedSource(script(agent, seen, clock), vad.frame_len, clock)
    async with no_leaked_tasks():
        async with agent.bus:
            clock.start()
            await agent.listen(source, vad)
        await llm.aclose()
    return agent, seen, sink


def finished(agent: Agent, seen: Seen, text: str, after: type | None = None) -> Until:
    """Silence until a reply saying `text` (begun after the first `after` event) has played out."""

    def done() -> bool:
        events = [e for _, e in seen.events]
        if after is not None:
            starts = [i for i, e in enumerate(events) if isinstance(e, after)]
            events = events[starts[0] :] if starts else []
        return any(isinstance(e, ResponseDone) and e.text == text for e in events) and not agent.replying

    return Until(done, hold_s=0.3, max_s=30)
