"""Helpers for tests of asynchronous code: assert that nothing was left running."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class LeakedTasks(AssertionError):
    pass


@asynccontextmanager
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Fail if a task started inside the block is still alive when it ends.

    Structured code (TaskGroup, awaited children) leaves nothing behind, so no
    grace period is given: a task still pending at exit is a leak.
    """
    before = asyncio.all_tasks()
    yield
    leaked = [t for t in asyncio.all_tasks() - before if not t.done()]
    if leaked:
        names = ", ".join(sorted(t.get_name() for t in leaked))
        raise LeakedTasks(f"{len(leaked)} task(s) outlived their scope: {names}")
