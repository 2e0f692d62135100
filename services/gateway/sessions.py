"""The gateway's session registry in Redis (`session:{sid}` hashes): which sessions exist, whether
they still take audio, and which are detached from their client (connection dropped without stop).

A dropped client may come back within `resume_grace_s` with `{"type":"start","session":sid}` and go
on streaming; if it does not, the session is stopped as if it had said stop, so its transcript is
completed. The check-and-stop is one optimistic transaction, so a resume racing the grace timer on
another gateway either wins or loses cleanly. Each connection attaches with an id of its own
(`conn`), and only the connection attached last may mark the session detached: the old connection
of a client that has already resumed elsewhere (its dead socket noticed late) leaves it alone.
"""

from __future__ import annotations

import re
import secrets
import time

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from shared import keys
from shared.messages import AudioStop, SessionConfig
from shared.settings import GatewaySettings
from shared.streams import stage

DETACH_LUA = """
if (redis.call('HGET', KEYS[1], 'conn') or '') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'detached', ARGV[2])
return 1
"""
SID_RE = re.compile(r"^[A-Za-z0-9_-]{8,100}$")
LIVE, STOPPING, ENDED = "live", "stopping", "ended"


class SessionStore:
    def __init__(self, r: aioredis.Redis, settings: GatewaySettings) -> None:
        self.r, self.s = r, settings

    def key(self, sid: str) -> str:
        return keys.session(sid)

    async def create(self, sid: str, config: SessionConfig, owner: str | None = None) -> None:
        """Registers a new session; `owner` is the digest of its owner key (owners.py)."""
        key = self.key(sid)
        fields = {"status": LIVE, "config": config.model_dump_json(), "created": time.time()}
        if owner:
            fields["owner"] = owner
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=fields)
            pipe.expire(key, self.s.session_retention_s)
            await pipe.execute()

    async def get(self, sid: str) -> dict[str, str] | None:
        if not SID_RE.fullmatch(sid):
            return None
        raw = await self.r.hgetall(self.key(sid))
        return {k.decode(): v.decode() for k, v in raw.items()} or None

    async def set_status(self, sid: str, status: str) -> None:
        await self.r.hset(self.key(sid), "status", status)

    async def attach(self, sid: str, conn: str = "") -> None:
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.hdel(self.key(sid), "detached")
            pipe.hset(self.key(sid), "conn", conn)
            await pipe.execute()

    async def detach(self, sid: str, conn: str = "") -> str | None:
        """Marks the session detached (a token for `stop_if_still_detached`), unless a connection
        other than `conn` attached since: then None, and nothing changes."""
        token = secrets.token_hex(8)
        marked = await self.r.eval(DETACH_LUA, 1, self.key(sid), conn, token)
        return token if marked else None

    async def stop_if_still_detached(self, sid: str, token: str, seq: int) -> bool:
        """Stop the session's audio unless a client has resumed it since `detach` gave `token`."""
        key = self.key(sid)
        async with self.r.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(key)
                if await pipe.hget(key, "detached") != token.encode():
                    return False
                pipe.multi()
                pipe.hset(key, "status", STOPPING)
                pipe.hdel(key, "detached")
                stage(pipe, self.s.audio_key(sid), AudioStop(seq=seq), self.s.stream_maxlen)
                await pipe.execute()
                return True
            except WatchError:
                return False
