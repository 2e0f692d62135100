"""`DELETE /api/sessions/{sid}` on a real Redis and PostgreSQL: the lecture is gone everywhere
(archive rows, Redis keys, audio), a late archive message does not bring it back, and only its
owner may do it."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import numpy as np
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from services.gateway.app import make_app
from services.gateway.owners import OWNER_HEADER, digest
from services.gateway.sessions import SessionStore
from services.vad.recording import Recording, encode
from shared import keys
from shared.archive import Archive
from shared.db import connect_pool
from shared.messages import AlertEvent, SessionConfig, TranscriptEvent, to_fields
from shared.recordings import opus_path
from shared.settings import GatewaySettings


@pytest.fixture
async def setup(redis_url: str, fresh_database_url: str) -> AsyncIterator[tuple[TestClient, Archive]]:
    pool = await connect_pool(fresh_database_url, max_size=3)
    settings = GatewaySettings(redis_url=redis_url, database_url=fresh_database_url)
    async with TestClient(TestServer(make_app(settings))) as c:
        yield c, Archive(pool)
    await pool.close()


async def lecture(r: aioredis.Redis, archive: Archive, owner: str, status: str) -> str:
    s = GatewaySettings()
    sid = "del" + secrets.token_hex(8)
    config = SessionConfig(course="Biology", started_at=1_700_000_000.0)
    await SessionStore(r, s).create(sid, config, digest(owner))
    await r.hset(keys.session(sid), "status", status)
    final = TranscriptEvent(segment=0, start=0.0, end=2.0, text="The quiz is on Friday.", final=True)
    await r.xadd(s.events_key(sid), to_fields(final))
    await r.hset(keys.alerts_state(sid), "next", 1)
    await r.hset(keys.flags(sid), "f1", "{}")
    await r.set(keys.language(sid), "en")
    await archive.open_session(sid, digest(owner), config)
    await archive.add_final(sid, config, final)
    await archive.add_alert(
        sid, AlertEvent(segment=0, start=0.0, category="quiz", text="The quiz is on Friday.")
    )
    await archive.end_session(sid, 1)
    rec = Recording(opus_path(s, sid).parent, sid)
    rec.open_at(0)
    rec.append(np.zeros(16000, np.int16))
    rec.close()
    encode(rec.spool, rec.opus, sid)
    return sid


async def test_the_owner_deletes_a_lecture_everywhere(
    setup: tuple[TestClient, Archive], r: aioredis.Redis
) -> None:
    c, archive = setup
    a, b = "owner-a-" + secrets.token_urlsafe(16), "owner-b-" + secrets.token_urlsafe(16)
    sid = await lecture(r, archive, a, "ended")
    await archive.add_share(sid, digest("share-" + secrets.token_urlsafe(16)), digest(a), {})
    assert (await c.delete(f"/api/sessions/{sid}", headers={OWNER_HEADER: b})).status == 404
    assert (await c.delete(f"/api/sessions/{sid}")).status == 404
    assert await archive.session(sid) is not None  # nothing happened
    resp = await c.delete(f"/api/sessions/{sid}", headers={OWNER_HEADER: a})
    assert resp.status == 200 and await resp.json() == {"deleted": sid}
    assert not await r.exists(*keys.session_keys(sid), keys.events(sid), keys.audio(sid))
    assert not opus_path(GatewaySettings(), sid).exists()
    assert await archive.session(sid) is None
    for table in ("finals", "alerts", "shares"):
        assert await archive.pool.fetchval(f"SELECT count(*) FROM {table} WHERE session_id = $1", sid) == 0
    assert (await c.get(f"/api/sessions/{sid}", headers={OWNER_HEADER: a})).status == 404
    assert (await c.get(f"/api/sessions/{sid}/audio", headers={OWNER_HEADER: a})).status == 404
    # A message of the archive worker still queued for it does not bring it back.
    config = SessionConfig()
    late = TranscriptEvent(segment=1, start=3.0, end=4.0, text="late", final=True)
    assert not await archive.add_final(sid, config, late)
    assert not await archive.add_alert(sid, AlertEvent(segment=1, start=3.0, category="exam", text="late"))
    await archive.end_session(sid, 2)
    await archive.open_session(sid, None, config)
    assert await archive.session(sid) is None
    assert (await c.delete(f"/api/sessions/{sid}", headers={OWNER_HEADER: a})).status == 404


async def test_a_lecture_still_recording_is_not_deleted(
    setup: tuple[TestClient, Archive], r: aioredis.Redis
) -> None:
    c, archive = setup
    a = "owner-a-" + secrets.token_urlsafe(16)
    sid = await lecture(r, archive, a, "live")
    resp = await c.delete(f"/api/sessions/{sid}", headers={OWNER_HEADER: a})
    assert resp.status == 409 and "stop it first" in (await resp.json())["error"]
    assert await r.exists(keys.session(sid)) and await archive.session(sid) is not None
