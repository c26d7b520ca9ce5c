"""A real OpenAI-compatible chat server with scripted replies, for tests and the benchmark.

It speaks `/v1/chat/completions` with SSE streaming over HTTP on loopback, so
the agent's real `openai` client is what gets tested. Each request takes the
next scripted `Reply` (or the default), waits `ttft_ms`, then streams the
reply's words at `tokens_per_s`. A reply can carry a fault instead:

    "500" / "401" / "429"  an HTTP error with an OpenAI-style error body
    "hang"                 accept the request and never send a byte
    "drop"                 send `drop_after` tokens, then cut the connection
    "garbage"              send a chunk that is not JSON, then the rest

A reply may end in tool calls (`Reply.tool_calls`); `after_tools` scripts the
answer to the request that carries their results.

The server records what it was asked (`requests`) and every stream the
client closed before the end (`disconnects`), so tests can see that an
interrupted reply really closed its HTTP stream.

Run standalone: `python -m voice_agent.measure.scripted_llm --port 8001 --reply "Hi there."`
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web


@dataclass
class Reply:
    text: str = ""
    fault: str | None = None
    ttft_ms: float | None = None  # overrides the server's default
    drop_after: int = 3
    retry_after: str = "1"  # the Retry-After header of a 429
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # [{"name", "arguments"}]


@dataclass
class Disconnect:
    at: float  # time.monotonic()
    tokens_sent: int


def split_tokens(text: str) -> list[str]:
    """Word-sized deltas that keep their leading space, like real LLM tokens."""
    return re.findall(r"\s*\S+", text) or ([text] if text else [])


class ScriptedLLM:
    def __init__(
        self,
        default_reply: str = "Sure. Here is a short answer.",
        ttft_ms: float = 0.0,
        tokens_per_s: float = 0.0,  # 0 = as fast as possible
        model: str = "scripted",
        keep_requests: int | None = None,  # remember only the latest N requests (long runs)
    ) -> None:
        self.default_reply = default_reply
        self.ttft_ms = ttft_ms
        self.tokens_per_s = tokens_per_s
        self.model = model
        self.script: deque[Reply] = deque()
        self.by_keyword: dict[str, Reply] = {}
        self.tool_reply: Reply | None = None
        self.requests: deque[dict[str, Any]] = deque(maxlen=keep_requests)
        self.request_times: deque[float] = deque(maxlen=keep_requests)  # time.monotonic() of each request
        self.disconnects: deque[Disconnect] = deque(maxlen=keep_requests)
        self.completed = 0
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.stream_closed = threading.Event()

    # --- control ------------------------------------------------------------

    def push(self, *replies: Reply | str) -> None:
        """Replies for the next requests, in order."""
        for r in replies:
            self.script.append(Reply(text=r) if isinstance(r, str) else r)

    def when(self, keyword: str, reply: Reply | str) -> None:
        """Answer every request whose last user message contains `keyword` with `reply`."""
        self.by_keyword[keyword.lower()] = Reply(text=reply) if isinstance(reply, str) else reply

    def after_tools(self, reply: Reply | str) -> None:
        """Answer every request that ends with tool results with `reply`;
        "{result}" in its text becomes the (last) result's content."""
        self.tool_reply = Reply(text=reply) if isinstance(reply, str) else reply

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        messages = body.get("messages", [])
        if self.tool_reply is not None and messages and messages[-1].get("role") == "tool":
            return replace(self.tool_reply, text=self.tool_reply.text.replace("{result}", str(messages[-1].get("content"))))
        users = [m for m in body.get("messages", []) if m.get("role") == "user"]
        last = str(users[-1].get("content", "")).lower() if users else ""
        for keyword, reply in self.by_keyword.items():
            if keyword in last:
                return reply
        return self.script.popleft() if self.script else Reply(text=self.default_reply)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self, port: int = 0) -> ScriptedLLM:
        """Serve from this event loop (the standalone server does this)."""
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # In tests the server runs on its own thread and event loop, like a real
    # server in another process: its connection tasks are not the agent's.

    def start_in_thread(self, port: int = 0) -> ScriptedLLM:
        ready = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self.start(port))
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self.stop())
            self._loop.close()

        self._thread = threading.Thread(target=serve, name="scripted-llm", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop_thread(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    async def __aenter__(self) -> ScriptedLLM:
        return self.start_in_thread()

    async def __aexit__(self, *exc: Any) -> None:
        self.stop_thread()

    # --- HTTP -----------------------------------------------------------------

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": self.model, "object": "model"}]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        self.request_times.append(time.monotonic())
        reply = self._next_reply(body)
        if reply.fault in ("500", "401", "429"):
            return _error(int(reply.fault), reply.retry_after)
        ttft = self.ttft_ms if reply.ttft_ms is None else reply.ttft_ms
        sent = 0
        try:
            if reply.fault == "hang":
                await asyncio.Event().wait()
            await asyncio.sleep(ttft / 1000)  # the scripted time to first token
            if not body.get("stream"):
                return web.json_response(_completion(self.model, reply.text))
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
            await resp.prepare(request)
            for i, token in enumerate(split_tokens(reply.text)):
                if reply.fault == "drop" and i == reply.drop_after:
                    request.transport.close()  # type: ignore[union-attr]
                    return resp
                if reply.fault == "garbage" and i == 1:
                    await resp.write(b"data: {this is not json\n\n")
                await resp.write(_sse(_delta(self.model, {"content": token})))
                sent += 1
                if self.tokens_per_s:
                    await asyncio.sleep(1 / self.tokens_per_s)
            for n, call in enumerate(reply.tool_calls):
                await resp.write(_sse(_delta(self.model, _tool_delta(n, call))))
            finish = "tool_calls" if reply.tool_calls else "stop"
            await resp.write(_sse(_delta(self.model, {}, finish_reason=finish)))
            await resp.write(b"data: [DONE]\n\n")
            await resp.write_eof()
            self.completed += 1
        except (asyncio.CancelledError, ConnectionResetError):
            self.disconnects.append(Disconnect(at=time.monotonic(), tokens_sent=sent))
            self.stream_closed.set()
            raise
        return resp


def _error(status: int, retry_after: str = "1") -> web.Response:
    kinds = {500: "server_error", 401: "invalid_api_key", 429: "rate_limit_exceeded"}
    headers = {"Retry-After": retry_after} if status == 429 else None
    body = {"error": {"message": f"scripted {status}", "type": kinds[status], "code": kinds[status]}}
    return web.json_response(body, status=status, headers=headers)


def _sse(obj: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(obj)}\n\n".encode()


def _delta(model: str, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def _tool_delta(index: int, call: dict[str, Any]) -> dict[str, Any]:
    return {
        "tool_calls": [
            {
                "index": index,
                "id": f"call_{index}",
                "type": "function",
                "function": {"name": call["name"], "arguments": json.dumps(call.get("arguments", {}))},
            }
        ]
    }


def _completion(model: str, text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=8001)
    ap.add_argument("--reply", default="Sure. Here is a short answer.")
    ap.add_argument("--ttft-ms", type=float, default=0.0)
    ap.add_argument("--tokens-per-s", type=float, default=0.0)
    args = ap.parse_args()

    async def serve() -> None:
        server = await ScriptedLLM(args.reply, args.ttft_ms, args.tokens_per_s).start(args.port)
        print(f"scripted LLM on {server.base_url}", flush=True)
        await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
