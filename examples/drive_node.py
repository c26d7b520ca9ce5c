"""A node that calls a tool and talks while it runs: "go forward ten meters" drives a (simulated) robot.

    voice-agent demo --node examples.drive_node:driver --input tests/speech/ps_goforward.wav

It says what it is about to do, runs the tool, and reports the result. The
`ToolCall` that `turn.run_tool` yields makes the words before it play at once,
and a slow call gets the filler ("One moment.") as the LLM's calls do. The
tool runs only once your turn has really ended (a reply prepared during a
pause waits), and talking over the agent cancels the drive: a tool with side
effects never acts on words you had not finished, nor goes on after "stop".
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator

from voice_agent import AgentResponse, ToolResult, Turn

NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10}
COMMAND = re.compile(r"\b(forward|back(?:ward)?)\s+(\d+|\w+)\s+met(?:er|re)s?\b")
SECONDS_PER_METER = 0.15  # the simulated robot's speed


class Robot:
    def __init__(self) -> None:
        self.position = 0

    async def drive(self, meters: int) -> str:
        """Drive the robot forward (negative: backward) and return where it stands.

        meters: how far to go
        """
        await asyncio.sleep(abs(meters) * SECONDS_PER_METER)  # the robot moving, not a wait for a race
        self.position += meters
        return f"{self.position} meters from the start"


robot = Robot()


def parse(text: str) -> int | None:
    """Meters to drive for "go forward ten meters" / "back 3 meters", else None."""
    match = COMMAND.search(text.lower())
    if not match:
        return None
    direction, amount = match.groups()
    meters = int(amount) if amount.isdigit() else NUMBERS.get(amount)
    if meters is None:
        return None
    return meters if direction == "forward" else -meters


async def driver(turn: Turn) -> AsyncIterator[str | AgentResponse]:
    meters = parse(turn.user_text)
    if meters is None:
        yield "Tell me how far to go, like: go forward ten meters."
        return
    yield f"Driving {'forward' if meters > 0 else 'back'} {abs(meters)} meters. "
    async for event in turn.run_tool(robot.drive, meters=meters):
        yield event  # the call (what was said so far plays now), a filler if it is slow, the result
        if isinstance(event, ToolResult):
            yield f"Arrived. I am {event.content}." if not event.is_error else "Sorry, the robot did not move."


if __name__ == "__main__":
    from voice_agent.app.cli import main

    sys.exit(main(["demo", "--node", "__main__:driver", *sys.argv[1:]]))
