"""Share links through the real gateway app on a real Redis and PostgreSQL: made and revoked by the
owner only, read-only access for whoever holds one, `/ws/follow` from the start (live events as
they come, then `end`), bounded followers, and a follow of a lecture Redis no longer has."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from services.gateway.app import make_app
from services.gateway.owners import OWNER_HEADER, digest
from services.gateway.sessions import SessionStore
from shared import keys
from shared.messages import AlertEvent, AlertsDone, SessionConfig, TranscriptEvent, to_fields
from shared.settings import GatewaySettings

A, B = "owner-a-" + secrets.token_urlsafe(16), "owner-b-" + secrets.token_urlsafe(16)


@pytest.fixture
async def c(redis_url: str, fresh_database_url: str) -> AsyncIterator[TestClient]:
    settings = GatewaySettings(
        redis_url=redis_url, database_url=fresh_database_url, max_followers_per_session=2
    )
    async with TestClient(TestServer(make_app(settings))) as client:
        yield client


async def lecture(r: aioredis.Redis, owner: str) -> str:
    sid = "shr" + secrets.token_hex(8)
    await SessionStore(r, GatewaySettings()).create(sid, SessionConfig(course="Chemistry"), digest(owner))
    return sid


def event(n: int, final: bool = True) -> dict:
    return to_fields(
        TranscriptEvent(segment=n, start=2.0 * n, end=2.0 * n + 1.5, text=f"sentence {n}", final=final)
    )  # type: ignore[return-value]


async def share(c: TestClient, sid: str, owner: str = A) -> str:
    resp = await c.post(f"/api/sessions/{sid}/share", headers={OWNER_HEADER: owner})
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert body["url"] == f"/s/{body['share']}"
    return body["share"]


async def read_until_end(ws: aiohttp.ClientWebSocketResponse) -> list[dict]:
    got = []
    while True:
        msg = await ws.receive_json(timeout=20)
        got.append(msg)
        if msg["type"] == "end":
            return got


async def test_only_the_owner_shares_and_a_share_reads_only_its_session(
    c: TestClient, r: aioredis.Redis
) -> None:
    sid, other = await lecture(r, A), await lecture(r, A)
    assert (await c.post(f"/api/sessions/{sid}/share", headers={OWNER_HEADER: B})).status == 404
    assert (await c.post(f"/api/sessions/{sid}/share")).status == 404
    token = await share(c, sid)
    await r.xadd(keys.events(sid), event(0))
    assert (await c.get(f"/api/sessions/{sid}?share={token}")).status == 200
    assert (await c.get(f"/api/sessions/{sid}/transcript.txt?share={token}")).status == 200
    assert (await c.get(f"/api/sessions/{other}?share={token}")).status == 404  # not another session
    assert (await c.post(f"/api/sessions/{sid}/share?share={token}")).status == 404  # read-only
    assert (await c.delete(f"/api/sessions/{sid}?share={token}")).status == 404
    page = await c.get(f"/s/{token}")
    assert page.status == 200 and "<html" in await page.text()
    revoked = await c.delete(f"/api/sessions/{sid}/share", headers={OWNER_HEADER: A})
    assert await revoked.json() == {"revoked": 1}
    assert (await c.get(f"/api/sessions/{sid}?share={token}")).status == 404


async def test_a_follower_joining_late_gets_everything_from_the_start(
    c: TestClient, r: aioredis.Redis
) -> None:
    sid = await lecture(r, A)
    token = await share(c, sid)
    key = keys.events(sid)
    await r.xadd(key, event(0, final=False))
    await r.xadd(key, event(0))
    await r.xadd(key, event(0, final=False))  # a late partial after its final: never shown
    await r.xadd(key, event(1))
    first = await c.ws_connect(f"/ws/follow?share={token}")
    second = await c.ws_connect(f"/ws/follow?share={token}")
    assert (await first.receive_json(timeout=10)) == {"type": "session", "session": sid}
    # The lecture goes on while they follow.
    await r.xadd(key, event(2))
    alert = AlertEvent(segment=2, start=4.0, category="exam", text="sentence 2", date="2026-12-12")
    await r.xadd(key, to_fields(alert))
    await r.xadd(key, to_fields(AlertsDone(segments=3)))
    got = await read_until_end(first)
    texts = [(m["segment"], m["final"]) for m in got if m["type"] == "transcript"]
    assert texts == [(0, False), (0, True), (1, True), (2, True)]
    assert [m["category"] for m in got if m["type"] == "alert"] == ["exam"]
    got2 = await read_until_end(second)
    assert got2[0]["type"] == "session" and got2[1:] == got


async def test_followers_are_bounded_per_session(c: TestClient, r: aioredis.Redis) -> None:
    sid = await lecture(r, A)
    token = await share(c, sid)
    await r.xadd(keys.events(sid), event(0))
    held = [await c.ws_connect(f"/ws/follow?share={token}") for _ in range(2)]
    for ws in held:
        assert (await ws.receive_json(timeout=10))["type"] == "session"
    third = await c.ws_connect(f"/ws/follow?share={token}")
    msg = await third.receive(timeout=10)
    assert msg.type == aiohttp.WSMsgType.CLOSE and third.close_code == 1008
    for ws in held:
        await ws.close()


async def test_bad_and_revoked_shares_are_refused(c: TestClient, r: aioredis.Redis) -> None:
    for bad in ("nonsense-but-long-enough-token", "short", ""):
        ws = await c.ws_connect(f"/ws/follow?share={bad}")
        msg = await ws.receive_json(timeout=10)
        assert msg["type"] == "error" and msg["code"] == "unknown_share"
        await ws.close()


async def test_follow_a_lecture_only_the_archive_has(
    c: TestClient, r: aioredis.Redis, fresh_database_url: str
) -> None:
    from shared.archive import Archive
    from shared.db import connect_pool

    sid = await lecture(r, A)
    token = await share(c, sid)
    pool = await connect_pool(fresh_database_url, max_size=2)
    archive, config = Archive(pool), SessionConfig(course="Chemistry")
    await archive.open_session(sid, digest(A), config)
    for n in range(3):
        await archive.add_final(
            sid, config, TranscriptEvent(segment=n, start=n, end=n + 0.5, text=f"kept {n}", final=True)
        )
    await archive.end_session(sid, 3)
    await pool.close()
    await r.delete(keys.session(sid), keys.events(sid))  # Redis's retention is over
    ws = await c.ws_connect(f"/ws/follow?share={token}")
    got = await read_until_end(ws)
    assert [m["text"] for m in got if m["type"] == "transcript"] == ["kept 0", "kept 1", "kept 2"]


async def test_a_follower_that_does_not_read_holds_nobody_up(c: TestClient, r: aioredis.Redis) -> None:
    """One follower never reads while a long lecture's events pour out: the other follower and the
    owner's own connection get everything and the end; the stuck one is cut off (its own queue)."""
    sid = await lecture(r, A)
    token = await share(c, sid)
    key = keys.events(sid)
    long_text = "word " * 1600  # ~8 kB a final: 6.4 MB in all, far beyond the socket buffers
    stuck = await c.ws_connect(f"/ws/follow?share={token}")  # never read below
    reader = await c.ws_connect(f"/ws/follow?share={token}")
    assert (await reader.receive_json(timeout=10))["type"] == "session"
    async with r.pipeline(transaction=False) as pipe:
        for n in range(800):
            pipe.xadd(
                key, to_fields(TranscriptEvent(segment=n, start=n, end=n + 0.5, text=long_text, final=True))
            )
        pipe.xadd(key, to_fields(AlertsDone(segments=800)))
        await pipe.execute()
    got = await read_until_end(reader)
    assert sum(m["type"] == "transcript" for m in got) == 800
    await r.hset(keys.session(sid), "status", "stopping")  # its stop was received
    owner = await c.ws_connect("/ws/transcribe")  # the owner resuming: the whole lecture, then end
    await owner.send_json({"type": "start", "owner": A, "session": sid})
    owner_got = await read_until_end(owner)
    assert sum(m["type"] == "transcript" for m in owner_got) == 800
    await stuck.close()
