"""Barge-in confirmed by Silero, end to end: a real noise over the reply does not cut it
off, real speech over it still does.

Headless, on the real-time timeline sink, with real models and the loopback
LLM server; each trial is judged from what the sink played
(voice_agent/app/confirm_bench.py, the trials of scripts/measure_bargein_confirm.py).
The same noise with `confirm = "none"` shows it is loud and long enough to
cut the agent off without the confirmation.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from conftest import SPEECH

from voice_agent.app.confirm_bench import LONG_REPLY, SHORT_REPLY, noise_trial, speech_trial
from voice_agent.audio.source import read_audio
from voice_agent.conversation.parts import Parts
from voice_agent.core.config import Config
from voice_agent.measure.scripted_llm import ScriptedLLM
from voice_agent.stages.llm import OpenAIChat
from voice_agent.stages.stt import Transcriber
from voice_agent.stages.tts import Synthesizer

CFG = Config()
QUESTION = read_audio(SPEECH / "ps_goforward.wav")
CUT_IN = read_audio(SPEECH / "ps_cards_003.wav")


@pytest.fixture(scope="module")
def models() -> tuple[Transcriber, Synthesizer]:
    return Transcriber(CFG.stt, CFG.models_dir), Synthesizer(CFG.tts, CFG.models_dir, CFG.audio.output_rate)


def configured(server: ScriptedLLM, confirm: str) -> Config:
    server.default_reply = SHORT_REPLY
    server.push(LONG_REPLY)
    llm = replace(CFG.llm, base_url=server.base_url, api_key="k", model="scripted", backend="openai")
    return replace(CFG, llm=llm, bargein=replace(CFG.bargein, confirm=confirm))


# The dropped object reaches the pause's lower bar (0.15) after the agent's voice: it may pause
# the agent for its length, never cut it off. Applause and a door closing do not even pause it.
@pytest.mark.parametrize("noise, may_pause", [("applause", False), ("door_close", False), ("dropped_object", True)])
async def test_a_real_noise_cuts_the_agent_off_only_without_confirmation(models, noise: str, may_pause: bool) -> None:
    """With confirmation the noise does not cut the agent off; without, it does."""
    sound = read_audio(SPEECH / "noises" / f"{noise}.wav")
    verdicts = {}
    for confirm in ("none", "silero"):
        async with ScriptedLLM() as server:
            cfg = configured(server, confirm)
            llm = OpenAIChat(cfg.llm)
            verdicts[confirm] = await noise_trial(cfg, Parts(*models, llm=llm), QUESTION, sound)
            await llm.aclose()
    assert verdicts["none"] is not None and verdicts["none"].stopped
    assert verdicts["silero"] is not None and not verdicts["silero"].stopped
    assert may_pause or verdicts["silero"].paused_ms == 0


async def test_real_speech_still_cuts_the_agent_off_with_confirmation(models) -> None:
    async with ScriptedLLM() as server:
        cfg = configured(server, "silero")
        llm = OpenAIChat(cfg.llm)
        stop = await speech_trial(cfg, Parts(*models, llm=llm), QUESTION, CUT_IN)
        await llm.aclose()
    assert isinstance(stop, float), stop  # a stop time: it went silent after the words began
