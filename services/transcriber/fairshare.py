"""How many finals one transcriber may take now: its share of what waits, so that a second one helps.

A transcriber that reads a whole batch while another idles makes a burst slower with two than with
one. So before each read of finals a transcriber asks Redis, in one round trip, how many entries of
`segments` wait undelivered to the group (XINFO GROUPS lag, Redis 7+) and how many transcribers
are free to take them (live: in `live:segments` within LIVE_MS, where each one writes itself
as it asks; free: holding no final in XINFO CONSUMERS, one that holds some is decoding them), and takes at most ceil(waiting / free), never more than one batch. Where
Redis cannot tell the lag (Redis 6, or entries deleted) it takes ceil(batch / free). The same round trip reads Redis's clock, against which the ids of the finals
then read say how long they waited: how the worker knows it is behind, and sheds partials.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from shared import keys

LIVE_MS = 15_000  # a transcriber seen within this long is live (a batch can take seconds)


@dataclass(frozen=True)
class Queue:
    """What waits on the group: undelivered entries (None: Redis cannot tell), the transcribers free to
    take them (this one included), Redis's clock."""

    lag: int | None
    free: int
    now_s: float

    def share(self, cap: int) -> int:
        """Entries one reader may take now: its share of what waits, at least 1, at most `cap`."""
        cap = max(1, cap)
        waiting = cap if self.lag is None else self.lag
        return max(1, min(cap, math.ceil(waiting / max(1, self.free))))

    def waited_s(self, entry_id: bytes | str) -> float:
        """How long an entry has waited since it was added (its id is Redis's clock then)."""
        return max(0.0, self.now_s - int(_name(entry_id).split("-")[0]) / 1000)


async def queue(r: aioredis.Redis, stream: str, group: str, me: str) -> Queue:
    """The group's lag, its free transcribers (this one included) and Redis's clock; also says that
    this one is alive (a group lists its consumers only once they got something, and Redis 6.2–7.0
    do not refresh a consumer's idle time on an empty read, so liveness is kept apart)."""
    now, live_key = time.time(), keys.live(stream)
    async with r.pipeline(transaction=False) as pipe:
        pipe.zadd(live_key, {me: now})
        pipe.zremrangebyscore(live_key, "-inf", now - LIVE_MS / 1000)
        pipe.zrange(live_key, 0, -1)
        pipe.xinfo_groups(stream)
        pipe.xinfo_consumers(stream, group)
        pipe.time()
        _, _, live, groups, consumers, clock = await pipe.execute(raise_on_error=False)
    if isinstance(clock, Exception) or isinstance(live, Exception):
        raise clock if isinstance(clock, Exception) else live
    redis_now = int(clock[0]) + int(clock[1]) / 1e6
    if isinstance(groups, ResponseError) or isinstance(consumers, ResponseError):
        return Queue(0, 1, redis_now)  # no stream or no group yet: nothing waits
    info = next((g for g in groups if _name(g["name"]) == group), None)
    if info is None:
        return Queue(0, 1, redis_now)
    lag = info.get("lag")
    busy = {_name(c["name"]) for c in consumers if int(c["pending"]) > 0}
    free = {_name(m) for m in live} - busy
    return Queue(None if lag is None else int(lag), len(free | {me}), redis_now)


async def leave(r: aioredis.Redis, stream: str, me: str) -> None:
    """A stopping transcriber is no longer counted on."""
    await r.zrem(keys.live(stream), me)


def _name(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v
