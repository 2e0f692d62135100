"""A VAD session's ownership and checkpoint in Redis, so that another VAD replica can take it over.

- `vadlease:{sid}`: the consumer that owns the session, with a short TTL it keeps renewing; when the
  owner dies the lease lapses and any replica may take the session (SET NX).
- `vadstate:{sid}`: hash with the state after the last checkpointed audio entry: `last_id` (that
  entry's stream id), `meta` (JSON: config, counters, segmenter fields) and the byte fields of the
  Silero LSTM state and the segmenter's buffered audio.
- `vad:sessions`: the set of sessions whose audio has not ended, scanned for lapsed leases.

A checkpoint is written in the same transaction as the utterances it emitted, so after a takeover
the audio after `last_id` is processed again from exactly that state: nothing skipped, nothing
emitted twice (the VAD is deterministic for the same state and audio).
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from shared import keys

# Renew only a lease we still hold; give it up only if we hold it.
_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


class Leases:
    def __init__(self, r: aioredis.Redis, owner: str, ttl_ms: int) -> None:
        self.r, self.owner, self.ttl_ms = r, owner, ttl_ms
        self._renew = r.register_script(_RENEW)
        self._release = r.register_script(_RELEASE)

    async def take(self, sid: str) -> bool:
        return bool(await self.r.set(keys.vad_lease(sid), self.owner, nx=True, px=self.ttl_ms))

    async def renew(self, sid: str) -> bool:
        return bool(await self._renew(keys=[keys.vad_lease(sid)], args=[self.owner, self.ttl_ms]))

    async def release(self, sid: str) -> None:
        await self._release(keys=[keys.vad_lease(sid)], args=[self.owner])

    async def orphans(self) -> list[str]:
        """Live sessions that nobody holds a lease on."""
        sids = [s.decode() for s in await self.r.smembers(keys.VAD_SESSIONS)]
        if not sids:
            return []
        held = await self.r.mget([keys.vad_lease(s) for s in sids])
        return [s for s, owner in zip(sids, held, strict=True) if owner is None]


async def load(r: aioredis.Redis, sid: str) -> dict[str, Any] | None:
    raw = await r.hgetall(keys.vad_state(sid))
    return {k.decode(): v for k, v in raw.items()} or None
