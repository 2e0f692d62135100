"""The counts of the history list (segments, alerts, duration per session).

They need a pass over each session's events (partials are in there too, so XLEN does not tell). Only
the sessions of the returned page are read, and each gateway keeps a tally per session with the
stream id it has read up to: a later request reads only the entries added since, so an ended
session costs one XREVRANGE. Tallies are idempotent, so concurrent requests are safe.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass, field

import redis.asyncio as aioredis

from services.gateway import events
from services.gateway.events import FirstFinals, alert_ident
from shared.messages import AlertEvent, Msg, TranscriptEvent

log = logging.getLogger(__name__)

TALLY_CACHE_SIZE = 2000  # sessions whose counts a gateway remembers
TALLY_CONCURRENCY = 8  # event streams read at once for one list


# --- the list's counts ------------------------------------------------------------------------


def parse_id(entry_id: bytes) -> tuple[int, int]:
    ms, _, seq = entry_id.partition(b"-")
    return int(ms), int(seq or 0)


@dataclass
class Tally:
    """Counts of a session's events up to `last_id`; adding an entry twice changes nothing."""

    last_id: bytes | None = None
    first_id: bytes | None = None
    finals: FirstFinals = field(default_factory=FirstFinals)
    segments: int = 0
    alerts: set[tuple] = field(default_factory=set)
    duration: float = 0.0

    def add(self, entry_id: bytes, msg: Msg | None) -> None:
        self.first_id = self.first_id or entry_id
        if self.last_id is None or parse_id(entry_id) > parse_id(self.last_id):
            self.last_id = entry_id
        if self.finals.first(msg):
            assert isinstance(msg, TranscriptEvent)
            self.segments += bool(msg.text.strip())
            self.duration = max(self.duration, msg.end)
        elif isinstance(msg, AlertEvent):
            self.alerts.add(alert_ident(msg))


class TallyCache:
    """The tallies of the sessions listed lately (LRU), brought up to date by reading only new entries."""

    def __init__(self, size: int = TALLY_CACHE_SIZE) -> None:
        self.size = size
        self.items: OrderedDict[str, Tally] = OrderedDict()

    async def tallies(self, r: aioredis.Redis, keys: list[str]) -> list[Tally]:
        newest = await events.newest_ids(r, keys)
        limit = asyncio.Semaphore(TALLY_CONCURRENCY)

        async def one(key: str, top: bytes | None) -> Tally:
            async with limit:
                return await self.update(r, key, top)

        return list(await asyncio.gather(*(one(k, top) for k, top in zip(keys, newest, strict=True))))

    async def update(self, r: aioredis.Redis, key: str, newest: bytes | None) -> Tally:
        tally = self.items.get(key)
        if newest is None:  # no events (yet, or expired)
            self.items.pop(key, None)
            return Tally()
        if tally is None or tally.last_id is None or parse_id(newest) < parse_id(tally.last_id):
            tally = Tally()  # unseen, or the stream was recreated
        if tally.last_id != newest:
            async for entry_id, msg in events.read(r, key, tally.last_id):
                tally.add(entry_id, msg)
        self.items[key] = tally
        self.items.move_to_end(key)
        while len(self.items) > self.size:
            self.items.popitem(last=False)
        return tally
