"""What keeps Redis holding what is in flight, not history: acknowledged entries leave the work
streams, and consumers that are gone leave their groups.

- `trim_acknowledged`: an entry goes once every consumer group of its stream is done with it: older
  than each group's oldest pending entry, or, for a group with nothing pending, not after its last
  delivered one. `XTRIM MINID` with the smallest of those bounds (exact: entries of the work streams
  carry audio, ~100 KB each). A stream nobody reads yet keeps everything.
- `forget_gone_consumers`: a consumer that holds nothing and has not read for a while (a restarted or
  scaled-down worker) is deleted from its group; a live one that merely idles is re-created by its
  next read, so nothing depends on the guess.
"""

from __future__ import annotations

import logging

import redis.asyncio as aioredis

log = logging.getLogger(__name__)


def _s(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v


def _after(entry_id: str) -> str:
    ms, seq = entry_id.split("-")
    return f"{ms}-{int(seq) + 1}"


def _older(a: str, b: str) -> bool:
    return tuple(map(int, a.split("-"))) < tuple(map(int, b.split("-")))


async def done_before(r: aioredis.Redis, stream: str) -> str | None:
    """The id below which every group of `stream` has acknowledged everything; None: keep all."""
    groups = await r.xinfo_groups(stream)
    if not groups:
        return None
    bound: str | None = None
    for g in groups:
        if int(g["pending"]):
            summary = await r.xpending(stream, _s(g["name"]))
            first = _s(summary["min"])
        else:
            first = _after(_s(g["last-delivered-id"]))
        if bound is None or _older(first, bound):
            bound = first
    return bound


async def trim_acknowledged(r: aioredis.Redis, stream: str) -> int:
    """Remove the entries every group has acknowledged; how many went."""
    bound = await done_before(r, stream)
    if bound is None or bound == "0-1":
        return 0
    removed = int(await r.xtrim(stream, minid=bound, approximate=False))
    if removed:
        log.debug("trimmed stream=%s entries=%d below=%s", stream, removed, bound)
    return removed


async def forget_gone_consumers(
    r: aioredis.Redis, stream: str, group: str, idle_ms: int, keep: str | None = None
) -> list[str]:
    """Delete the group's consumers that hold nothing and have been idle past `idle_ms`."""
    gone = []
    for c in await r.xinfo_consumers(stream, group):
        name = _s(c["name"])
        if name != keep and int(c["pending"]) == 0 and int(c["idle"]) > idle_ms:
            # DELCONSUMER returns the pending count it dropped: 0 unless the consumer read meanwhile.
            await r.xgroup_delconsumer(stream, group, name)
            gone.append(name)
    if gone:
        log.info("forgot consumers stream=%s group=%s consumers=%s", stream, group, ",".join(gone))
    return gone


async def leave_group(r: aioredis.Redis, stream: str, group: str, consumer: str) -> bool:
    """At shutdown: leave the group if this consumer holds nothing (else the entries stay, to be
    reclaimed by another consumer)."""
    for c in await r.xinfo_consumers(stream, group):
        if _s(c["name"]) == consumer:
            if int(c["pending"]):
                return False
            await r.xgroup_delconsumer(stream, group, consumer)
            return True
    return False
