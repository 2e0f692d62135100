"""What a soak asks the Redis server: its memory by key prefix, and whether the work streams hold
only entries some consumer group has not yet acknowledged.

`memory_by_prefix`: `MEMORY USAGE` of every key (SCAN; a soak's stack holds a few hundred), summed by
the key's name up to its first `:` (`events:{sid}` -> `events`, the work streams by their own name),
with the count of keys per prefix and of those without a TTL: which kind of key grows, and whether
it would go by itself.

`settled`: per work stream, entries held and entries not yet acknowledged by every group (those at or
after `shared.housekeeping.done_before`'s bound); the streams are settled when they are equal.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from shared.housekeeping import done_before
from shared.keys import WORK_STREAMS


def prefix(key: str) -> str:
    return key if key in WORK_STREAMS else key.split(":", 1)[0]


async def memory_by_prefix(r: aioredis.Redis) -> dict[str, tuple[int, float, int]]:
    """prefix -> (keys, MB, keys without a TTL), largest first."""
    out: dict[str, list[float]] = {}
    async for raw in r.scan_iter(count=500):
        key = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
        used = await r.memory_usage(raw, samples=0) or 0
        row = out.setdefault(prefix(key), [0, 0.0, 0])
        row[0] += 1
        row[1] += used / 2**20
        row[2] += int(await r.ttl(raw) == -1)
    return {p: (int(n), mb, int(k)) for p, (n, mb, k) in sorted(out.items(), key=lambda kv: -kv[1][1])}


@dataclass
class StreamState:
    held: int
    unacked: int  # entries some group has not acknowledged yet (delivered and pending, or undelivered)


async def stream_states(r: aioredis.Redis) -> dict[str, StreamState]:
    out = {}
    for s in WORK_STREAMS:
        held = int(await r.xlen(s))
        try:
            bound = await done_before(r, s)
        except aioredis.ResponseError:  # no such stream yet
            bound = None
        if bound is None:  # no group reads it: nothing is acknowledged
            unacked = held
        else:
            unacked = len(await r.xrange(s, min=bound, count=held + 1)) if held else 0
        out[s] = StreamState(held, unacked)
    return out


def settled(states: dict[str, StreamState]) -> bool:
    return all(st.held == st.unacked for st in states.values())


def format_prefixes(rows: dict[str, tuple[int, float, int]], top: int = 10) -> str:
    """`events 1.2 MB/40 keys (3 no TTL), ...`, the largest `top` prefixes."""
    return ", ".join(
        f"{p} {mb:.2f} MB/{n} keys" + (f" ({k} no TTL)" if k else "")
        for p, (n, mb, k) in list(rows.items())[:top]
    )
