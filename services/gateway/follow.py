"""`GET /ws/follow?share=<token>`: a read-only follower of a shared session, live or finished.

The follower gets `session`, then every event of the session from its start (transcripts, alerts,
flags, errors; a partial once its final is out is dropped, a final sent once), live as they come,
then `end` once the session has ended. It reads `events:{sid}` by itself (`events.for_client`, as
the owner's socket does, from `0-0`): the owner's connection and the workers never wait for a
follower. A follower that does not read fills its own bounded queue (`outbox.py`), which holds up its own relay only, and is closed (`slow_client`)
once it has read nothing for SEND_TIMEOUT_S; the owner and the other followers are unaffected.
A session Redis no longer holds is replayed from the archive, then `end`. At most
`MAX_FOLLOWERS_PER_SESSION` followers per session on each gateway (close 1008 beyond).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import redis.asyncio as aioredis
from aiohttp import WSCloseCode, WSMsgType, web

from services.gateway import archived, events, owners, security, state
from services.gateway.errors import ApiError
from services.gateway.outbox import Outbox
from services.gateway.sessions import SessionStore, active
from shared.messages import (
    AlertsDone,
    EndEvent,
    ErrorEvent,
    Msg,
    SessionEvent,
    to_client_json,
)
from shared.streams import REDIS_DOWN
from shared.tasks import cancel_and_wait

log = logging.getLogger(__name__)
QUEUE = 2000  # frames waiting for one follower


def add_routes(app: web.Application) -> None:
    app[state.FOLLOWERS] = {}
    app.router.add_get("/ws/follow", follow_ws)


async def follow_ws(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=20.0)
    await ws.prepare(request)
    try:
        digest = owners.request_share(request)
    except ApiError:  # a malformed token
        digest = None
    sid = await owners.session_of(request.app, digest) if digest else None
    if sid is None:
        await ws.send_str(
            to_client_json(ErrorEvent(code="unknown_share", message="this share link is not valid"))
        )
        await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"unknown share")
        return ws
    counts = request.app[state.FOLLOWERS]
    limit = request.app[state.SETTINGS].max_followers_per_session
    if counts.get(sid, 0) >= limit:
        await security.refuse(ws, f"this lecture has {limit} followers already")
        return ws
    counts[sid] = counts.get(sid, 0) + 1
    log.info("sid=%s follower joined followers=%d", sid, counts[sid])
    try:
        await Follower(ws, request.app, sid).serve()
    finally:
        counts[sid] -= 1
        if not counts[sid]:
            del counts[sid]
    return ws


class Follower:
    def __init__(self, ws: web.WebSocketResponse, app: web.Application, sid: str) -> None:
        self.ws, self.app, self.sid = ws, app, sid
        self.r: aioredis.Redis = app[state.REDIS]
        self.s = app[state.SETTINGS]
        self.outbox = Outbox(ws, QUEUE)

    async def send(self, msg: Msg) -> None:
        """Queue a frame; a full queue holds this follower's relay (and only it) up to
        SEND_TIMEOUT_S, then the follower, which does not read, is cut off."""
        if await self.outbox.put(msg) or self.outbox.cut_off:
            return
        log.warning("sid=%s follower too slow; closing it", self.sid)  # nobody else waits for it
        self.outbox.cut("the follower did not read its messages; reconnect")

    async def serve(self) -> None:
        sender = self.outbox.run(b"follower too slow")
        tasks = [asyncio.create_task(sender), asyncio.create_task(self.relay())]
        try:
            async for frame in self.ws:  # a follower only listens; anything it sends is ignored
                if frame.type == WSMsgType.ERROR:
                    break
        finally:
            await cancel_and_wait(tasks)

    async def relay(self) -> None:
        await self.send(SessionEvent(session=self.sid))
        key = self.s.events_key(self.sid)
        try:
            if await self.r.exists(key) or await self.live():  # a live one may have no event yet
                await self.follow_stream(key)
            else:
                await self.replay_archive()
        except REDIS_DOWN as e:
            log.warning("sid=%s follower lost redis: %r", self.sid, e)
            await self.send(
                ErrorEvent(code="unavailable", message="the server's storage is unreachable; reconnect")
            )
        self.outbox.end()  # after the last message the sender closes the socket

    async def follow_stream(self, key: str) -> None:
        async with contextlib.aclosing(events.for_client(self.r, self.s, self.sid, count=200)) as stream:
            async for msg in stream:
                if self.outbox.cut_off or isinstance(msg, AlertsDone):
                    break
                if msg is not None:
                    await self.send(msg)
                elif not await self.r.exists(key) and not await self.live():
                    break  # deleted (or expired) meanwhile
        await self.send(EndEvent())

    async def live(self) -> bool:
        """The registry says the session still takes audio (or is finishing)."""
        return active(await SessionStore(self.r, self.s).status(self.sid))

    async def replay_archive(self) -> None:
        row = await archived.session(self.app, self.sid)
        if row is not None:
            _, record = await archived.record(self.app, row)
            for final in record.lines:
                await self.send(final)
            for alert in sorted(record.alerts, key=lambda a: a.segment):
                await self.send(alert)
        await self.send(EndEvent())
