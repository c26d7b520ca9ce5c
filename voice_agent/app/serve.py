"""`voice-agent serve`: the agent over a WebSocket, and a web page to talk to it.

    GET /            the page (microphone in, agent out, the conversation on screen)
    GET /ws          one WebSocket = one session (protocol: app/protocol.py)

Every session has its own agent, history, VAD and barge-in; all of them share
the process's one copy of the models (`Parts`). A session is a task group: a
closed tab or a dropped connection cancels it, and nothing of it outlives the
handler.

Safe by default: it listens on loopback; any other host needs a token; at most
`max_sessions` at once; a client that breaks the protocol (odd-length audio,
huge messages, audio faster than real time, silence on the wire) is closed
with a code and a reason, and never disturbs another session.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import os
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
from aiohttp import WSMsgType, web
from yarl import URL

from ..audio.microphone import MicClock
from ..audio.websocket import Outgoing, PcmSink, PcmSource, StreamError
from ..conversation.agent import Agent
from ..conversation.history import History
from ..conversation.parts import Parts
from ..core._compat import TaskGroup
from ..core.config import Config, ConfigError
from ..core.events import SAMPLE_RATE
from ..stages.vad import Vad
from .protocol import SessionMessages, client_rate, parse_client_text

log = logging.getLogger(__name__)

CLOSE_PROTOCOL = 1003  # bad data: odd-length audio, a bad sample rate
CLOSE_POLICY = 1008  # bad token, too fast, idle, not reading
CLOSE_BUSY = 1013  # too many sessions: try again later
CLOSE_INTERNAL = 1011
WEB = "web"
PAGES = {"/": ("index.html", "text/html"), "/app.js": ("app.js", "text/javascript"), "/worklet.js": ("worklet.js", "text/javascript")}


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None
    max_sessions: int = 4
    idle_timeout_s: float = 10.0  # no message at all for this long: the client is gone
    max_message_bytes: int = 256 * 1024  # over 2 s of 48 kHz audio in one message
    max_outbox: int = 2000  # messages a client has not taken yet (about 40 s of audio)
    lead_ms: int = 100  # agent audio is sent this far ahead of the clock
    cert: str | None = None  # HTTPS/WSS: browsers give the microphone to other hosts only over HTTPS
    key: str | None = None


def check_options(opts: ServeOptions) -> None:
    """Refuse to listen beyond this machine without a token."""
    if opts.max_sessions < 1:
        raise ConfigError("--max-sessions must be at least 1")
    if not is_loopback(opts.host) and not opts.token:
        raise ConfigError(f"--host {opts.host} is reachable from other machines: give --token SECRET too")
    if bool(opts.cert) != bool(opts.key):
        raise ConfigError("--cert and --key go together (the certificate chain and its private key, PEM)")


def tls_context(opts: ServeOptions) -> ssl.SSLContext | None:
    if not opts.cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(opts.cert, opts.key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot use --cert {opts.cert} --key {opts.key}: {exc}") from None
    return context


def check_port(opts: ServeOptions) -> None:
    """A port that is taken fails at once, not after the models have loaded."""
    try:
        with socket.create_server((opts.host, opts.port)):
            pass
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ConfigError(f"cannot listen on {opts.host}:{opts.port}: {reason}") from None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def same_origin(request: web.Request) -> bool:
    """A browser's WebSocket comes from this server's own page; programs send no Origin."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    return URL(origin).host_port_subcomponent == URL(f"http://{request.host}").host_port_subcomponent


class Server:
    def __init__(self, cfg: Config, parts: Parts, opts: ServeOptions) -> None:
        self.cfg = cfg
        self.parts = parts
        self.opts = opts
        self.sessions = 0
        self.served = 0
        self.app = web.Application()
        self.app.router.add_get("/ws", self.websocket)
        for path in PAGES:
            self.app.router.add_get(path, self.page)

    async def page(self, request: web.Request) -> web.Response:
        name, content_type = PAGES[request.path]
        body = (resources.files("voice_agent.app") / WEB / name).read_text(encoding="utf-8")
        return web.Response(text=body, content_type=content_type, headers={"Cache-Control": "no-store"})

    def _authorized(self, request: web.Request) -> bool:
        if not self.opts.token:
            return True
        given = request.query.get("token") or request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), self.opts.token.encode())

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        # Close reasons reach a browser only over an open socket, so refusals upgrade first.
        ws = web.WebSocketResponse(max_msg_size=self.opts.max_message_bytes, autoping=True)
        await ws.prepare(request)
        if not self._authorized(request):
            await ws.close(code=CLOSE_POLICY, message=b"a valid token is required (?token=... or Authorization: Bearer ...)")
            return ws
        if not same_origin(request):
            # Any web page the user visits could otherwise talk to a server on their loopback.
            await ws.close(code=CLOSE_POLICY, message=b"cross-origin WebSocket refused: use the page this server serves")
            return ws
        if self.sessions >= self.opts.max_sessions:
            await ws.close(code=CLOSE_BUSY, message=f"server busy: {self.sessions} sessions already (--max-sessions)".encode())
            return ws
        self.sessions += 1
        self.served += 1
        log.info("session %d opened (%d now)", self.served, self.sessions)
        try:
            code, reason = await Session(self, ws).run()
        except Exception:  # a bug in one session must not stop the server or the others
            log.exception("session failed")
            code, reason = CLOSE_INTERNAL, "internal error"
        finally:
            self.sessions -= 1
        log.info("session closed: %s %s", code, reason)
        await ws.close(code=code, message=reason.encode()[:120])
        return ws


class Session:
    """One connection: an agent fed by the client's audio, speaking back over the socket."""

    def __init__(self, server: Server, ws: web.WebSocketResponse) -> None:
        cfg = server.cfg
        self.ws = ws
        self.opts = server.opts
        self.clock = MicClock()
        self.outbox: asyncio.Queue[Outgoing] = asyncio.Queue(self.opts.max_outbox)
        self.failure: StreamError | None = None
        self.sink = PcmSink(self.clock, cfg.audio.output_rate, self.send, self.opts.lead_ms)
        self.agent = Agent(server.parts, History.for_config(cfg.llm), self.sink, cfg)
        self.vad = Vad(cfg.vad)
        self.source = PcmSource(self.vad.frame_len, self.clock)
        self.messages = SessionMessages()
        self.agent.bus.tap(self._observe)

    def send(self, message: Outgoing) -> None:
        try:
            self.outbox.put_nowait(message)
        except asyncio.QueueFull:
            self.failure = self.failure or StreamError("the client is not reading what it is sent", code=CLOSE_POLICY)

    def _observe(self, event: Any) -> None:
        self.messages.observe(event)
        for message in self.messages.take():
            self.send(message)

    async def run(self) -> tuple[int, str]:
        """Until the client goes or breaks the protocol: the close code and reason."""
        rate = self.sink.rate
        self.send({"type": "ready", "sample_rate": SAMPLE_RATE, "agent_sample_rate": rate, "frame_ms": self.vad.frame_len * 1000 // SAMPLE_RATE})
        self.send({"type": "state", "state": "listening"})
        async with self.agent.bus:
            await self.agent.greet()
            async with TaskGroup() as tg:
                writer = tg.create_task(self._write(), name="serve:writer")
                listener = tg.create_task(self.agent.listen(self, self.vad), name="serve:listen")
                try:
                    return await self._read()
                except StreamError as exc:
                    return exc.code, str(exc)
                finally:
                    # The client is gone or broke the protocol: nothing more to say to it, end at once.
                    listener.cancel()
                    writer.cancel()

    async def frames(self) -> AsyncIterator[tuple[int, np.ndarray]]:
        """The session as the agent's `Source`: the client's frames; each one moves the
        clock, so the agent audio that comes due is sent."""
        async for position, frame in self.source.frames():
            self.sink.pump()
            if not self.agent.replying:
                self.messages.idle()
                for message in self.messages.take():
                    self.send(message)
            yield position, frame

    async def _read(self) -> tuple[int, str]:
        while True:
            if self.failure is not None:
                raise self.failure
            try:
                msg = await self.ws.receive(timeout=self.opts.idle_timeout_s)
            except asyncio.TimeoutError:
                return CLOSE_POLICY, f"nothing received for {self.opts.idle_timeout_s:g} s (send audio continuously)"
            if msg.type == WSMsgType.BINARY:
                self.source.feed(msg.data)
            elif msg.type == WSMsgType.TEXT:
                self._text(msg.data)
            elif msg.type == WSMsgType.ERROR:
                exc = self.ws.exception()
                code = getattr(exc, "code", CLOSE_PROTOCOL)
                return code, f"bad message: {exc}"
            else:  # CLOSE, CLOSING, CLOSED
                return 1000, "bye"

    def _text(self, text: str) -> None:
        message, problem = parse_client_text(text)
        if message is None:
            self.send({"type": "error", "message": problem})
            return
        try:
            rate = client_rate(message)
        except ValueError as exc:
            raise StreamError(str(exc)) from None
        if rate is not None:
            self.source.set_rate(rate)

    async def _write(self) -> None:
        while True:
            message = await self.outbox.get()
            if isinstance(message, bytes):
                await self.ws.send_bytes(message)
            else:
                await self.ws.send_json(message)


async def serve(server: Server, ready: Any = None) -> None:
    """Serve until cancelled. `ready(url)` is called once it listens."""
    opts = server.opts
    tls = tls_context(opts)
    runner = web.AppRunner(server.app, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, opts.host, opts.port, ssl_context=tls)
        try:
            await site.start()
        except OSError as exc:
            raise ConfigError(f"cannot listen on {opts.host}:{opts.port}: {exc.strerror or exc}") from None
        url = f"{'https' if tls else 'http'}://{opts.host}:{opts.port}/"
        if ready is not None:
            ready(url)
        await asyncio.Event().wait()  # until cancelled (Ctrl-C, SIGTERM)
    finally:
        await runner.cleanup()


async def run_serve(args: Any, cfg: Config, console: Any) -> int:
    """The `serve` command: check the options, load the models once, serve until Ctrl-C or SIGTERM."""
    import signal

    from ..conversation.parts import build_parts, close_parts

    opts = ServeOptions(args.host, args.port, args.token, args.max_sessions, cert=args.cert, key=args.key)
    check_options(opts)
    tls_context(opts)  # a bad certificate fails before the models load
    check_port(opts)
    if cfg.transcript or cfg.resume:
        log.warning("serve keeps no transcript file: each connection is a conversation of its own")
    with console.status("loading models"):
        parts, llm_desc = build_parts(cfg)
    console.print(f"LLM: {llm_desc}", soft_wrap=True)
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)

    def ready(url: str) -> None:
        query = f"?token={opts.token}" if opts.token else ""
        console.print(f"serving on {url}{query}  (WebSocket: {url.replace('http', 'ws', 1)}ws{query}); Ctrl-C to stop", soft_wrap=True)

    try:
        await serve(Server(cfg, parts, opts), ready)
    finally:
        await close_parts(parts)
    return 0
