"""The built-in tools: the current date and time, and safe arithmetic.

`calculate` walks the expression's syntax tree and allows only numbers and
arithmetic operators: no names, calls or attributes, so nothing the LLM
writes can run code (no `eval`). Huge powers are refused before they are
computed.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .tools import Tool, ToolError, from_function, load_tool


def current_time(timezone: str = "") -> str:
    """The current date and time.

    timezone: an IANA time zone such as "Europe/Paris"; empty for the local time
    """
    if timezone:
        try:
            zone: Any = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            return f"error: unknown time zone '{timezone}' (use a name like Europe/Paris)"
        now = datetime.now(zone)
    else:
        now = datetime.now().astimezone()
    return now.strftime("%A %d %B %Y, %H:%M %Z (UTC%z)")


_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
MAX_EXPRESSION = 200


class CalculationError(ValueError):
    pass


def evaluate(expression: str) -> float | int:
    """The value of an arithmetic expression; `ValueError` for anything else."""
    if len(expression) > MAX_EXPRESSION:
        raise CalculationError(f"expression longer than {MAX_EXPRESSION} characters")
    text = expression.replace("×", "*").replace("÷", "/").replace("^", "**")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise CalculationError(f"not an arithmetic expression: {expression!r}") from None
    return _eval(tree.body)


def _eval(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and (abs(right) > 100 or abs(left) > 1e6):
            raise CalculationError("that power is too large to compute")
        return _BINARY[type(node.op)](left, right)
    raise CalculationError(f"only numbers and + - * / // % ** are allowed, not {type(node).__name__}")


def calculate(expression: str) -> str:
    """Evaluate an arithmetic expression exactly, e.g. "17 * 23" or "(2 + 3) ** 2 / 7".

    expression: numbers with + - * / // % ** and parentheses
    """
    try:
        value = evaluate(expression)
    except ZeroDivisionError:
        return "error: division by zero"
    except (CalculationError, OverflowError) as exc:
        return f"error: {exc}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "error: the result is not a finite number"
        value = round(value, 10)
        if value.is_integer():
            value = int(value)
    return str(value)


BUILTIN: dict[str, Callable[..., str]] = {"time": current_time, "calculate": calculate}


def enabled_tools(names: list[str]) -> list[Tool]:
    """The allowlist: built-ins by name, the user's own as package.module:function."""
    tools: list[Tool] = []
    for name in names:
        if name in BUILTIN:
            tools.append(from_function(BUILTIN[name], name=name))
        elif ":" in name:
            tools.append(load_tool(name))
        else:
            raise ToolError(f"unknown tool '{name}' (built-in: {', '.join(BUILTIN)}; or package.module:function)")
    return tools
