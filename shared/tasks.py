"""Ending tasks for certain: `cancel_and_wait`, used wherever a connection's or an app's tasks stop.

On Python 3.11 `asyncio.wait_for` returns its operation's result, and drops the cancellation, when
the cancel arrives just as that operation completes (CPython gh-86296, fixed in 3.12). redis-py
sends every command under `wait_for`, so a loop around a Redis command (a relay's XREAD) can lose
one `cancel()` and run on for good: a closed socket's handler then never ended and its place under
the address cap was never given back. Cancelling again until the task has ended is the remedy.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

log = logging.getLogger(__name__)
RECANCEL_EVERY_S = 0.05


async def cancel_and_wait(tasks: Iterable[asyncio.Task], limit_s: float = 10.0) -> set[asyncio.Task]:
    """Cancels `tasks` until each has ended (re-cancelling what a lost cancellation left running),
    for at most `limit_s`; returns those still running then (logged: a task that refuses to end).
    Their results and exceptions are retrieved, never raised."""
    pending = {t for t in tasks if not t.done()}
    done: set[asyncio.Task] = {t for t in tasks if t.done()}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while pending and loop.time() < deadline:
        for t in pending:
            t.cancel()
        ended, pending = await asyncio.wait(pending, timeout=RECANCEL_EVERY_S)
        done |= ended
    for t in done:
        if not t.cancelled():
            t.exception()  # retrieved: an ending task's error was logged where it mattered
    for t in pending:
        log.warning("task %s did not end within %.0fs of its cancellation", t.get_name(), limit_s)
    return pending
