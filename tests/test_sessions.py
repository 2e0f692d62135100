"""A session's lifecycle (services/gateway/sessions.py) on a real Redis: opened (registry entry and
`session_opened` for the VAD), stopped (`audio_stop` with the status `stopping`, one transaction),
ended; the same steps for live sessions and uploads."""

from __future__ import annotations

import redis.asyncio as aioredis

from services.gateway.sessions import ENDED, LIVE, STOPPING, SessionStore, active, config_for, new_sid
from shared import keys
from shared.messages import AudioStop, SessionOpened, StartMessage, from_fields
from shared.settings import GatewaySettings


async def test_open_stop_end(r: aioredis.Redis, redis_url: str) -> None:
    s = GatewaySettings(redis_url=redis_url, sessions_stream="sessions:lifecycle-test")
    store, sid = SessionStore(r, s), new_sid()
    start = StartMessage(keywords=[" lab report ", " "], names=["Maria Garcia "], course="BIO 101")
    config = config_for(start, "en", partials=False)
    assert (config.keywords, config.names, config.partials) == (["lab report"], ["Maria Garcia"], False)
    await store.open(sid, config, owner="ab" * 32, voiceprint=None, conn="c1")
    info = await store.get(sid)
    assert info is not None and info["status"] == LIVE and info["conn"] == "c1" and info["owner"] == "ab" * 32
    [(_, fields)] = await r.xrange(s.sessions_stream)
    opened = from_fields(fields)
    assert isinstance(opened, SessionOpened) and opened.sid == sid and opened.config == config
    assert active(await store.status(sid)) and active(LIVE.encode())

    await store.stop(sid, seq=7)
    assert await store.status(sid) == STOPPING and active(STOPPING)
    last = from_fields((await r.xrevrange(keys.audio(sid), count=1))[0][1])
    assert last == AudioStop(seq=7)

    await store.end(sid)
    assert await store.status(sid) == ENDED and not active(ENDED) and not active(None)
