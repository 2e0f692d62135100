"""Sessions written straight into Redis for the tests of what the gateway reads back (the history,
the calendar): a session's events as the workers would have written them, and a dated exam alert."""

from __future__ import annotations

from collections.abc import Iterable

import redis.asyncio as aioredis

from shared import keys
from shared.messages import AlertEvent, Msg
from shared.streams import xadd


def midterm(segment: int, text: str) -> AlertEvent:
    """An exam alert dated Friday 14 March 2025 at 14:00, said 75.4 s into the session."""
    return AlertEvent(
        segment=segment,
        start=75.4,
        category="exam",
        text=text,
        date="2025-03-14",
        time="14:00",
        title="Midterm exam — Fri 14 Mar, 14:00",
    )


async def write_events(r: aioredis.Redis, sid: str, events: Iterable[Msg]) -> None:
    """Appends `events` to the session's `events:{sid}`, in order."""
    for ev in events:
        await xadd(r, keys.events(sid), ev, 1000)
