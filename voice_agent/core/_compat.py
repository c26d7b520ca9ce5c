"""asyncio.TaskGroup and asyncio.timeout arrived in Python 3.11; 3.10 uses the backport."""

import sys

if sys.version_info >= (3, 11):
    from asyncio import TaskGroup, timeout
else:  # pragma: no cover - exercised only on 3.10
    from taskgroup import TaskGroup, timeout

__all__ = ["TaskGroup", "timeout"]
