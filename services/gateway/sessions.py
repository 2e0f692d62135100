"""A session's lifecycle, in one place: opened, stopped, ended; its registry in Redis (`session:{sid}`
hashes): which sessions exist, whether they still take audio, and which are detached from their
client (connection dropped without stop).

Live sessions (`live.py`) and uploads (`uploads/feeder.py`) go through the same steps: `new_sid` and
`config_for`, then `SessionStore.open` (the registry entry, and `SessionOpened` on `sessions` for a
VAD worker); `stage_stop` (`AudioStop` on `audio:{sid}` in one transaction with the status
`stopping`, so no audio can follow it; callers add their own writes to that transaction);
`stage_end` (`ended`, once `alerts_done` is in the session's events). `active` says whether a
status still takes audio or is finishing.

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
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from shared import keys
from shared.messages import AudioStop, SessionConfig, SessionOpened, StartMessage
from shared.settings import GatewaySettings
from shared.streams import stage, xadd

DETACH_LUA = """
if (redis.call('HGET', KEYS[1], 'conn') or '') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'detached', ARGV[2])
return 1
"""
SID_RE = re.compile(r"^[A-Za-z0-9_-]{8,100}$")
LIVE, STOPPING, ENDED = "live", "stopping", "ended"


def active(status: str | bytes | None) -> bool:
    """The session still takes audio, or is finishing what it took (not ended, not unknown)."""
    if isinstance(status, bytes):
        status = status.decode()
    return status in (LIVE, STOPPING)


def new_sid() -> str:
    return secrets.token_urlsafe(18)


def config_for(start: StartMessage, language: str | None, partials: bool = True) -> SessionConfig:
    """The session's settings from its `start` (a live client's, or an upload's form), from now."""
    return SessionConfig(
        language=language,
        task=start.task,
        prompt=start.prompt,
        keywords=[k.strip() for k in start.keywords if k.strip()],
        timezone=start.timezone,
        course=start.course,
        started_at=time.time(),
        names=[n.strip() for n in start.names if n.strip()],
        partials=partials,
    )


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

    async def open(
        self,
        sid: str,
        config: SessionConfig,
        owner: str | None = None,
        voiceprint: str | None = None,
        conn: str | None = None,
    ) -> None:
        """Registers the session (attached to connection `conn`, if any) and hands it to the VAD."""
        await self.create(sid, config, owner)
        if conn is not None:
            await self.attach(sid, conn)
        opened = SessionOpened(sid=sid, config=config, voiceprint=voiceprint, owner=owner)
        await xadd(self.r, self.s.sessions_stream, opened, self.s.stream_maxlen)

    def stage_stop(self, pipe: Pipeline, sid: str, seq: int) -> None:
        """Stages the end of the session's audio (`seq`: its entries so far) and the status `stopping`."""
        stage(pipe, self.s.audio_key(sid), AudioStop(seq=seq), self.s.stream_maxlen)
        pipe.hset(self.key(sid), "status", STOPPING)

    async def stop(self, sid: str, seq: int) -> None:
        async with self.r.pipeline(transaction=True) as pipe:
            self.stage_stop(pipe, sid, seq)
            await pipe.execute()

    def stage_end(self, pipe: Pipeline, sid: str) -> None:
        """Stages the status `ended`: every transcript and alert of the session is in its events."""
        pipe.hset(self.key(sid), "status", ENDED)

    async def end(self, sid: str) -> None:
        async with self.r.pipeline(transaction=True) as pipe:
            self.stage_end(pipe, sid)
            await pipe.execute()

    async def status(self, sid: str) -> str | None:
        raw = await self.r.hget(self.key(sid), "status")
        return raw.decode() if raw else None

    async def get(self, sid: str) -> dict[str, str] | None:
        if not SID_RE.fullmatch(sid):
            return None
        raw = await self.r.hgetall(self.key(sid))
        return {k.decode(): v.decode() for k, v in raw.items()} or None

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
                pipe.hdel(key, "detached")
                self.stage_stop(pipe, sid, seq)
                await pipe.execute()
                return True
            except WatchError:
                return False
