"""`voice-agent serve`: the audio edges, the protocol's messages, and the server with real clients.

The server tests run the real aiohttp server on loopback with the real models
and the scripted loopback LLM; a client speaks recorded speech in real time and
judges from the audio it received (measure/ws_client.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
import websockets
from conftest import SPEECH, free_port

from voice_agent.app.protocol import SessionMessages, client_rate, parse_client_text
from voice_agent.app.serve import ServeOptions, Server, check_options, serve
from voice_agent.app.sessions_bench import breaking_point
from voice_agent.audio.microphone import MicClock
from voice_agent.audio.source import read_audio
from voice_agent.audio.websocket import PcmSink, PcmSource, StreamError
from voice_agent.conversation.parts import Parts
from voice_agent.core.config import Config, ConfigError, LLMConfig
from voice_agent.core.events import (
    AgentSpeechSent,
    AudioChunk,
    Interruption,
    ResponseDone,
    Transcript,
    UserStartedSpeaking,
    UserStoppedSpeaking,
)
from voice_agent.measure.scripted_llm import Reply, ScriptedLLM
from voice_agent.measure.ws_client import Client, converse, speech_span
from voice_agent.stages.llm import OpenAIChat
from voice_agent.stages.stt import Transcriber
from voice_agent.stages.tts import Synthesizer
from voice_agent.testing import no_leaked_tasks

CFG = Config()
REPLY = "Going forward ten meters now."


def pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


# --- the audio edges --------------------------------------------------------------


def test_source_frames_client_audio_on_the_session_clock() -> None:
    async def run() -> list[tuple[int, np.ndarray]]:
        clock = MicClock()
        t = [0.0]
        source = PcmSource(320, clock, now=lambda: t[0])
        source.set_rate(48000)
        tone = np.sin(np.arange(48000) * 2 * np.pi * 440 / 48000).astype(np.float32) * 0.5
        for i in range(0, 48000, 960):  # 20 ms messages, in real time
            t[0] = i / 48000
            source.feed(pcm16(tone[i : i + 960]))
        source.close()
        return [f async for f in source.frames()]

    frames = asyncio.run(run())
    assert [p for p, _ in frames] == [i * 320 for i in range(len(frames))]
    assert 48 <= len(frames) <= 50  # one second at 16 kHz, less the resampler's delay
    assert all(len(f) == 320 for _, f in frames)
    level = np.sqrt(np.mean(np.concatenate([f for _, f in frames[5:]]) ** 2))
    assert 0.3 < level < 0.4  # the tone came through resampled, not garbled (0.5 / sqrt 2)


def test_source_refuses_broken_and_too_fast_audio() -> None:
    t = [0.0]
    source = PcmSource(320, MicClock(), slack_s=1.0, now=lambda: t[0])
    with pytest.raises(StreamError, match="not a whole number of samples") as odd:
        source.feed(b"\x00\x01\x02")
    assert odd.value.code == 1003
    source.feed(pcm16(np.zeros(16000, np.float32)))  # one second at once: allowed slack
    with pytest.raises(StreamError, match="faster than real time") as fast:
        source.feed(pcm16(np.zeros(16000, np.float32)))  # two seconds of audio in no time
    assert fast.value.code == 1008
    with pytest.raises(StreamError, match="before the first audio"):
        source.set_rate(48000)


def chunk(seconds: float, rid: int = 1) -> AudioChunk:
    return AudioChunk(rid, np.full(int(22050 * seconds), 1000, np.int16), 22050, "words")


def test_sink_sends_audio_as_it_comes_due_and_clear_on_stop() -> None:
    clock = MicClock()
    sent: list[bytes | dict] = []
    sink = PcmSink(clock, 22050, sent.append, lead_ms=100)
    placed = sink.play(chunk(1.0))
    assert (placed.start, placed.end) == (0, 16000)
    assert sum(len(m) for m in sent if isinstance(m, bytes)) == 2205 * 2  # only the lead: 100 ms
    clock.position = 8000  # half a second of the client's audio later
    sink.pump()
    assert sum(len(m) for m in sent if isinstance(m, bytes)) == 13230 * 2  # 600 ms: played + lead
    second = sink.play(chunk(0.5))
    assert second.start == 16000  # after the first, as a speaker plays
    assert sink.playing()
    assert sink.stop() == 8000
    assert sent[-1] == {"type": "clear"}
    assert not sink.playing()
    clock.position = 24000
    sink.pump()
    assert sum(len(m) for m in sent if isinstance(m, bytes)) == 13230 * 2  # nothing after the stop
    assert sink.stop() == 24000 and sent[-1] == {"type": "clear"} and sent.count({"type": "clear"}) == 1


# --- the protocol's messages ----------------------------------------------------------


def test_messages_follow_the_conversation() -> None:
    messages = SessionMessages()

    def see(event: object) -> list[dict]:
        messages.observe(event)
        return messages.take()

    assert see(UserStartedSpeaking(100)) == [{"type": "state", "state": "hearing you"}]
    assert see(Transcript("go forward", 0, 16000, 20000, speculative=True)) == []  # a guess: not yet
    stopped = see(UserStoppedSpeaking(0, 16000, 24000, np.zeros(1, np.float32)))
    assert stopped == [
        {"type": "state", "state": "thinking"},
        {"type": "transcript", "role": "user", "text": "go forward", "final": True},
    ]
    assert see(ResponseDone(1, "Going.")) == []  # not heard yet: a speculative reply may be dropped
    heard = see(AgentSpeechSent(1, "Going.", 28000, 30000))
    assert {"type": "state", "state": "speaking"} in heard
    assert {"type": "transcript", "role": "agent", "text": "Going.", "final": True} in heard
    assert {"type": "latency", "ms": 750.0} in heard  # 16000 -> 28000 samples
    assert see(AgentSpeechSent(1, "More.", 30000, 32000)) == []  # once per turn
    assert see(Interruption(1, 40000, 40320, "Going.")) == [
        {"type": "state", "state": "hearing you"},
        {"type": "interrupted", "heard": "Going."},
    ]
    # A guess that arrives after its turn ended (a slow transcription) is the turn's transcript.
    see(UserStoppedSpeaking(48000, 60000, 68000, np.zeros(1, np.float32)))
    late = see(Transcript("turn left", 48000, 60000, 56000, speculative=True))
    assert late == [{"type": "transcript", "role": "user", "text": "turn left", "final": True}]
    assert see(ResponseDone(2, "", error="cannot reach the LLM")) == [{"type": "error", "message": "turn dropped: cannot reach the LLM"}]


def test_client_text_is_checked() -> None:
    assert parse_client_text('{"type": "start", "sample_rate": 48000}') == ({"type": "start", "sample_rate": 48000}, None)
    assert parse_client_text("hello")[0] is None
    assert parse_client_text("[1, 2]")[0] is None
    assert client_rate({"sample_rate": 48000}) == 48000
    assert client_rate({"type": "start"}) is None
    for bad in (0, 1e9, "fast", True, 16000.5):
        with pytest.raises(ValueError, match="sample_rate"):
            client_rate({"sample_rate": bad})


def test_beyond_loopback_needs_a_token() -> None:
    check_options(ServeOptions(host="127.0.0.1"))
    check_options(ServeOptions(host="::1"))
    check_options(ServeOptions(host="0.0.0.0", token="s3cret"))
    with pytest.raises(ConfigError, match="--token"):
        check_options(ServeOptions(host="0.0.0.0"))


def test_cli_refuses_an_open_host_in_one_line() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "voice_agent", "serve", "--host", "0.0.0.0"], capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == ["error: --host 0.0.0.0 is reachable from other machines: give --token SECRET too"]


def test_cli_says_a_taken_port_in_one_line_before_loading_models() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        run = subprocess.run(
            [sys.executable, "-m", "voice_agent", "serve", "--port", str(port)], capture_output=True, text=True, timeout=60, check=False
        )
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [f"error: cannot listen on 127.0.0.1:{port}: Address already in use"]


# --- the server, with real clients ------------------------------------------------------


@pytest.fixture(scope="module")
def models() -> tuple[Transcriber, Synthesizer]:
    stt, tts = Transcriber(CFG.stt, CFG.models_dir), Synthesizer(CFG.tts, CFG.models_dir, CFG.audio.output_rate)
    stt.warm_up()
    tts.warm_up([])
    return stt, tts


@pytest.fixture
def parts(models: tuple[Transcriber, Synthesizer], llm_config: LLMConfig, llm_server: ScriptedLLM) -> Parts:
    llm_server.default_reply = REPLY
    return Parts(*models, llm=OpenAIChat(llm_config))


QUESTION = read_audio(SPEECH / "ps_goforward.wav")


@contextlib.asynccontextmanager
async def running(parts: Parts, opts: ServeOptions) -> AsyncIterator[Server]:
    server = Server(CFG, parts, opts)
    ready = asyncio.Event()
    task = asyncio.create_task(serve(server, lambda _: ready.set()))
    await ready.wait()
    try:
        yield server
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_session_answers_and_a_hang_up_frees_everything(parts: Parts, llm_server: ScriptedLLM) -> None:
    port = free_port()
    url = f"ws://127.0.0.1:{port}/ws"
    async with running(parts, ServeOptions(port=port)) as server:
        async with no_leaked_tasks():
            talk = await converse(url, [QUESTION])
            # A connection that drops mid-reply (no close frame, like a tab killed).
            await _drop_mid_reply(url)
            await _until(lambda: server.sessions == 0)
        # The sessions are gone and nothing of them runs: a new one is served as the first was.
        again = await converse(url, [QUESTION])
    assert server.served == 3 and server.sessions == 0
    for t in (talk, again):
        assert "forward" in " ".join(t.transcripts("user")).lower()
        assert t.transcripts("agent") == [REPLY]
        turn = t.turns()[0]
        assert turn["latency_ms"] is not None and not turn["premature"]
        # The whole reply reached the client: Piper speaks it for well over a second.
        assert t.audio_bytes / 2 / t.agent_rate > 1.0
        assert any(m.get("type") == "latency" for _, m in t.messages)
        ready_msg = t.messages[0][1]
        assert ready_msg == {"type": "ready", "sample_rate": 16000, "agent_sample_rate": 22050, "frame_ms": 20}


async def test_sessions_at_once_keep_their_own_conversations(parts: Parts, llm_server: ScriptedLLM) -> None:
    cards = read_audio(SPEECH / "ps_cards_003.wav")  # "seven of clubs"
    port = free_port()
    url = f"ws://127.0.0.1:{port}/ws"
    async with running(parts, ServeOptions(port=port)) as server:
        a, b = await asyncio.gather(converse(url, [QUESTION]), converse(url, [cards]))
    assert server.served == 2
    assert "forward" in " ".join(a.transcripts("user")).lower() and "clubs" not in " ".join(a.transcripts("user")).lower()
    assert "clubs" in " ".join(b.transcripts("user")).lower() and "forward" not in " ".join(b.transcripts("user")).lower()
    assert a.transcripts("agent") == b.transcripts("agent") == [REPLY]
    # Each LLM request carries one session's history: its own words, never the other's.
    asked = [[m["content"].lower() for m in r["messages"] if m["role"] == "user"] for r in llm_server.requests]
    assert len(asked) >= 2 and all(len(users) == 1 for users in asked), asked
    assert {("forward" in u[0], "clubs" in u[0]) for u in asked} == {(True, False), (False, True)}, asked


async def test_a_failing_llm_drops_the_turn_and_the_session_goes_on(parts: Parts, llm_server: ScriptedLLM) -> None:
    llm_server.push(Reply(fault="500"), Reply(fault="500"))  # retried once, then the turn fails
    port = free_port()
    async with running(parts, ServeOptions(port=port)):
        talk = await converse(f"ws://127.0.0.1:{port}/ws", [QUESTION, QUESTION])
    errors = [m["message"] for _, m in talk.messages if m.get("type") == "error"]
    assert len(errors) == 1 and errors[0].startswith("turn dropped:") and "500" in errors[0]
    first, second = talk.turns()
    assert first["latency_ms"] is not None  # the apology is heard
    assert talk.transcripts("agent") == [REPLY]  # the next turn is answered
    assert second["latency_ms"] is not None


async def _drop_mid_reply(url: str) -> None:
    """Speak, and cut the TCP connection at the first audio of the answer."""
    async with websockets.connect(url, max_size=None) as ws:
        audio = np.concatenate([QUESTION, np.zeros(16000 * 5, np.float32)])
        got_audio = asyncio.Event()

        async def read() -> None:
            async for message in ws:
                if isinstance(message, bytes):
                    got_audio.set()

        reader = asyncio.create_task(read())
        t0 = asyncio.get_running_loop().time()
        for i in range(0, len(audio), 320):
            await asyncio.sleep(max(0.0, t0 + i / 16000 - asyncio.get_running_loop().time()))  # real-time pacing
            if got_audio.is_set():
                break
            await ws.send(pcm16(audio[i : i + 320]))
        assert got_audio.is_set(), "no answer to cut off"
        ws.transport.abort()
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


async def _until(condition: Any, timeout_s: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while not condition():
        assert loop.time() < end, "timed out"
        await asyncio.sleep(0.05)  # polling the server's state


async def test_bad_clients_are_closed_and_the_good_one_goes_on(parts: Parts) -> None:
    port = free_port()
    base = f"ws://127.0.0.1:{port}/ws"
    opts = ServeOptions(port=port, token="s3cret", max_sessions=2, idle_timeout_s=1.0, max_message_bytes=64 * 1024)
    async with running(parts, opts) as server:
        good = asyncio.create_task(converse(f"{base}?token=s3cret", [QUESTION], lead_s=2.0))
        await _until(lambda: server.sessions == 1)  # it holds one of the two places
        outcomes = {
            "no token": await _bad(base, []),
            "wrong token": await _bad(f"{base}?token=nope", []),
            "odd-length audio": await _bad(f"{base}?token=s3cret", [b"\x00\x01\x02"]),
            "huge message": await _bad(f"{base}?token=s3cret", [bytes(100_000)]),
            "bad rate": await _bad(f"{base}?token=s3cret", ['{"type": "start", "sample_rate": 5}']),
            "too fast": await _bad(f"{base}?token=s3cret", [bytes(640)] * 200),
            "silent": await _bad(f"{base}?token=s3cret", []),
            "another site's page": await _bad(f"{base}?token=s3cret", [], {"Origin": "https://evil.example"}),
        }
        assert outcomes["no token"][0] == outcomes["wrong token"][0] == 1008
        assert "token" in outcomes["no token"][1]
        assert outcomes["odd-length audio"][0] == 1003 and "PCM16" in outcomes["odd-length audio"][1]
        assert outcomes["huge message"][0] == 1009
        assert outcomes["bad rate"][0] == 1003 and "sample_rate" in outcomes["bad rate"][1]
        assert outcomes["too fast"][0] == 1008 and "faster than real time" in outcomes["too fast"][1]
        assert outcomes["silent"][0] == 1008 and "nothing received" in outcomes["silent"][1]
        assert outcomes["another site's page"] == (1008, "cross-origin WebSocket refused: use the page this server serves")
        # Text that is not JSON is answered with an error and ignored; with two sessions
        # open (the good one and this one) a third is refused.
        bearer = {"Authorization": "Bearer s3cret"}  # the token as a header instead of in the URL
        async with aiohttp.ClientSession() as http, http.ws_connect(base, headers=bearer) as chatty:
            await chatty.send_str("not json")
            ignored = [json.loads((await chatty.receive()).data) for _ in range(3)]
            assert {"type": "error", "message": "text messages must be JSON objects; ignored"} in ignored
            assert await _bad(f"{base}?token=s3cret", []) == (1013, "server busy: 2 sessions already (--max-sessions)")
        talk = await good
    assert talk.transcripts("agent") == [REPLY]
    assert talk.turns()[0]["latency_ms"] is not None


async def _bad(url: str, send: list[bytes | str], headers: dict[str, str] | None = None) -> tuple[int | None, str]:
    """Connect, send these messages at once, and return how the server closed the socket."""
    async with aiohttp.ClientSession() as http, http.ws_connect(url, headers=headers) as ws:
        client = Client(ws)
        reader = asyncio.create_task(client.read())
        for message in send:
            if ws.closed:
                break
            await (ws.send_bytes(message) if isinstance(message, bytes) else ws.send_str(message))
        await asyncio.wait_for(reader, 10)
        return client.talk.close_code, client.talk.close_reason


def test_speech_span_finds_the_words() -> None:
    start, end = speech_span(QUESTION)  # "go forward ten meters", 2.79 s with background before and after
    assert 0.1 < start < 1.0 < end < 2.7


def test_the_sessions_bench_says_where_it_breaks() -> None:
    def round_(n: int, p95: float, unanswered: int = 0) -> dict:
        return {"sessions": n, "unanswered": unanswered, "premature": 0, "latency_ms": {"p50": p95, "p95": p95, "max": p95}}

    assert breaking_point([round_(1, 500), round_(2, 900), round_(4, 1100)]) == 4  # over twice 500
    assert breaking_point([round_(1, 500), round_(2, 600, unanswered=1)]) == 2
    assert breaking_point([round_(1, 500), round_(2, 700)]) is None


def test_cli_wants_cert_and_key_together() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "voice_agent", "serve", "--cert", "c.pem"], capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == ["error: --cert and --key go together (the certificate chain and its private key, PEM)"]


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    assert shutil.which("openssl"), "openssl makes the test certificate (.ci/run installs it)"
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


async def test_https_serves_the_page_and_the_socket(parts: Parts, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    port = free_port()
    trust = ssl.create_default_context(cafile=str(cert))
    async with running(parts, ServeOptions(port=port, cert=str(cert), key=str(key))), aiohttp.ClientSession() as http:
        async with http.get(f"https://127.0.0.1:{port}/", ssl=trust) as page:
            assert page.status == 200 and "app.js" in await page.text()
        async with http.ws_connect(f"wss://127.0.0.1:{port}/ws", ssl=trust) as ws:
            assert json.loads((await ws.receive()).data)["type"] == "ready"


def test_bench_sessions_refuses_bad_counts_in_one_line() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "voice_agent", "bench", "--sessions", "1,two"], capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == ["error: --sessions takes counts like 1,2,4,8, got '1,two'"]
