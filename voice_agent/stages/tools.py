"""Tools the LLM may call mid-reply (OpenAI function calling).

A tool is a plain Python function (sync or async). Its signature and
docstring become the JSON schema the LLM sees:

    def weather(city: str, unit: Literal["C", "F"] = "C") -> str:
        \"\"\"Today's weather in a city.

        city: the city's name
        \"\"\"

Only tools the user enabled exist (the allowlist): the built-ins by name
(`time`, `calculate`) and their own as `package.module:function`. Arguments
are checked against the schema before the call; a bad call, a failing tool
or a slow one becomes an error result the LLM can read, never a crash.

`on_interrupt` says what a barge-in does to a running call: "cancel" it, or
let it "finish" in the background and hand its result to the next turn.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from ..core._compat import timeout
from ..core.config import load_object

log = logging.getLogger(__name__)

OnInterrupt = Literal["cancel", "finish"]
_JSON_TYPES: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}


class ToolError(ValueError):
    """A user mistake in enabling a tool (bad spec, missing module): one line."""


class ToolArgumentError(ValueError):
    """The LLM called a tool with arguments that do not fit its schema."""


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]  # JSON schema of the arguments
    fn: Callable[..., Any] = field(repr=False)
    on_interrupt: OnInterrupt = "cancel"

    def schema(self) -> dict[str, Any]:
        return {"type": "function", "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}

    async def __call__(self, arguments: dict[str, Any]) -> str:
        result = self.fn(**arguments)
        if inspect.isawaitable(result):
            result = await result
        return result if isinstance(result, str) else json.dumps(result, default=str)


@dataclass(frozen=True)
class CallRequest:
    """One tool call as the LLM streamed it: arguments still as JSON text."""

    id: str
    name: str
    arguments: str


def tool(on_interrupt: OnInterrupt = "cancel") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator for a tool function that should not be cancelled by a barge-in: `@tool("finish")`."""

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.__tool_on_interrupt__ = on_interrupt  # type: ignore[attr-defined]
        return fn

    return mark


def _json_type(hint: Any) -> dict[str, Any]:
    origin = typing.get_origin(hint)
    if origin is Literal:
        values = list(typing.get_args(hint))
        return {"type": _JSON_TYPES.get(type(values[0]), "string"), "enum": values}
    if origin in (typing.Union, getattr(types, "UnionType", None)):  # Optional[X], X | None (3.10+)
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return _json_type(inner[0]) if len(inner) == 1 else {}
    if hint in _JSON_TYPES:
        return {"type": _JSON_TYPES[hint]}
    if origin is list or hint is list:
        return {"type": "array"}
    if origin is dict or hint is dict:
        return {"type": "object"}
    return {}


def _doc_parts(fn: Callable[..., Any]) -> tuple[str, dict[str, str]]:
    """The docstring's first paragraph, and `name: description` lines for parameters."""
    doc = inspect.getdoc(fn) or ""
    paragraphs = doc.split("\n\n")
    described: dict[str, str] = {}
    for line in doc.splitlines():
        name, sep, text = line.strip().partition(":")
        if sep and name.isidentifier() and text.strip():
            described[name] = text.strip()
    return " ".join(paragraphs[0].split()), described


def from_function(fn: Callable[..., Any], name: str | None = None) -> Tool:
    hints = typing.get_type_hints(fn)
    description, described = _doc_parts(fn)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        prop = _json_type(hints.get(param.name, str))
        if param.name in described:
            prop["description"] = described[param.name]
        properties[param.name] = prop
        if param.default is param.empty:
            required.append(param.name)
    parameters = {"type": "object", "properties": properties, "required": required, "additionalProperties": False}
    on_interrupt = getattr(fn, "__tool_on_interrupt__", "cancel")
    return Tool(name or fn.__name__, description or fn.__name__, parameters, fn, on_interrupt)


def load_tool(spec: str) -> Tool:
    """A tool from `package.module:function`, or one-line `ToolError`."""
    return from_function(load_object(spec, "tool", ToolError))


def validate_arguments(schema: dict[str, Any], arguments: Any) -> dict[str, Any]:
    """`arguments` if they fit `schema`, else `ToolArgumentError` saying what is wrong."""
    if not isinstance(arguments, dict):
        raise ToolArgumentError("arguments must be a JSON object")
    props: dict[str, Any] = schema.get("properties", {})
    missing = [k for k in schema.get("required", []) if k not in arguments]
    if missing:
        raise ToolArgumentError(f"missing argument(s): {', '.join(missing)}")
    for key, value in arguments.items():
        if key not in props:
            raise ToolArgumentError(f"unknown argument '{key}' (known: {', '.join(props) or 'none'})")
        want = props[key]
        if "enum" in want and value not in want["enum"]:
            raise ToolArgumentError(f"'{key}' must be one of {want['enum']}, got {value!r}")
        if not _fits(want.get("type"), value):
            raise ToolArgumentError(f"'{key}' must be {want['type']}, got {type(value).__name__}")
    return arguments


_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


def _fits(kind: str | None, value: Any) -> bool:
    return kind is None or _TYPE_CHECKS.get(kind, lambda v: True)(value)


@dataclass
class Outcome:
    content: str
    is_error: bool = False


class Toolbox:
    """The enabled tools, and calls that went on after a barge-in."""

    def __init__(self, tools: list[Tool], timeout_s: float = 10.0) -> None:
        self.tools = {t.name: t for t in tools}
        self.timeout_s = timeout_s
        self._late: list[tuple[CallRequest, Outcome]] = []  # finished in the background

    def __bool__(self) -> bool:
        return bool(self.tools)

    def schemas(self) -> list[dict[str, Any]]:
        return [t.schema() for t in self.tools.values()]

    def on_interrupt(self, name: str) -> OnInterrupt:
        t = self.tools.get(name)
        return t.on_interrupt if t else "cancel"

    async def call(self, request: CallRequest) -> Outcome:
        """Run one call. Every failure is an error result for the LLM to read."""
        t = self.tools.get(request.name)
        if t is None:
            return Outcome(f"error: no tool named '{request.name}' (available: {', '.join(self.tools)})", True)
        try:
            arguments = validate_arguments(t.parameters, json.loads(request.arguments or "{}"))
        except json.JSONDecodeError:
            return Outcome("error: the arguments are not valid JSON", True)
        except ToolArgumentError as exc:
            return Outcome(f"error: {exc}", True)
        try:
            async with timeout(self.timeout_s):
                return Outcome(await t(arguments))
        except TimeoutError:
            return Outcome(f"error: {request.name} took longer than {self.timeout_s:g} s", True)
        except Exception as exc:  # noqa: BLE001 - the tool is user code; its failure is the LLM's to explain
            log.warning("tool %s failed: %s", request.name, exc)
            return Outcome(f"error: {request.name} failed: {type(exc).__name__}: {exc}", True)

    def finished_late(self, request: CallRequest) -> Callable[[asyncio.Task[Outcome]], None]:
        """A done-callback that keeps the result of a call the user talked over."""

        def keep(done: asyncio.Task[Outcome]) -> None:
            if not done.cancelled():
                self._late.append((request, done.result()))
                log.info("tool %s finished after the interruption", request.name)

        return keep

    def take_late(self) -> list[dict[str, Any]]:
        """The chat messages of calls that finished after a barge-in: the LLM hears them next turn."""
        late, self._late = self._late, []
        return [message for request, outcome in late for message in exchange("", [request], [outcome])]


def exchange(text: str, calls: list[CallRequest], outcomes: list[Outcome]) -> list[dict[str, Any]]:
    """The chat messages of one tool round: the assistant's calls, then each result."""
    assistant: dict[str, Any] = {
        "role": "assistant",
        "content": text or None,
        "tool_calls": [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}} for c in calls],
    }
    results = [{"role": "tool", "tool_call_id": c.id, "content": o.content} for c, o in zip(calls, outcomes)]
    return [assistant, *results]
