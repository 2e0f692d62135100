"""Owner isolation through the real gateway app on a real Redis (and a real PostgreSQL for the
archive): two owners see nothing of each other, an id alone opens nothing, ownerless sessions keep
the behaviour of before."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.gateway.app import make_app
from services.gateway.owners import OWNER_HEADER, digest
from shared import keys
from shared.archive import Archive
from shared.db import connect_pool
from shared.messages import SessionConfig, TranscriptEvent
from shared.settings import GatewaySettings

A, B = "owner-a-" + secrets.token_urlsafe(16), "owner-b-" + secrets.token_urlsafe(16)


def as_owner(key: str | None) -> dict[str, str]:
    return {OWNER_HEADER: key} if key else {}


async def start(c: TestClient, owner: str | None, resume: str | None = None) -> tuple[str, list[dict]]:
    """Opens a session over the WebSocket (optionally resuming one); returns its id and the frames
    before it."""
    ws = await c.ws_connect("/ws/transcribe")
    msg: dict = {"type": "start"}
    if owner:
        msg["owner"] = owner
    if resume:
        msg["session"] = resume
    await ws.send_json(msg)
    frames = []
    while True:
        frame = await ws.receive_json(timeout=10)
        frames.append(frame)
        if frame["type"] == "session":
            await ws.close()
            return frame["session"], frames


async def listed(c: TestClient, owner: str | None) -> set[str]:
    resp = await c.get("/api/sessions?limit=500", headers=as_owner(owner))
    assert resp.status == 200
    return {s["id"] for s in (await resp.json())["sessions"]}


async def test_two_owners_see_nothing_of_each_other(client: TestClient) -> None:
    sid_a, _ = await start(client, A)
    sid_b, _ = await start(client, B)
    sid_none, _ = await start(client, None)
    mine_a, mine_b, ownerless = await listed(client, A), await listed(client, B), await listed(client, None)
    assert sid_a in mine_a and sid_b not in mine_a and sid_none not in mine_a
    assert sid_b in mine_b and sid_a not in mine_b
    assert sid_none in ownerless and sid_a not in ownerless and sid_b not in ownerless
    for path in ("", "/transcript.txt", "/transcript.md", "/alerts.ics"):
        assert (await client.get(f"/api/sessions/{sid_a}{path}", headers=as_owner(A))).status in (200, 404)
        for other in (B, None):  # the other owner, and no owner at all: it does not exist
            resp = await client.get(f"/api/sessions/{sid_a}{path}", headers=as_owner(other))
            assert resp.status == 404, (path, other)
            assert (await resp.json())["error"] == "unknown session"
    assert (await client.get(f"/api/sessions/{sid_a}", headers=as_owner(A))).status == 200
    # What a browser opens by itself (a download link) names the key in the query instead.
    assert (await client.get(f"/api/sessions/{sid_a}/transcript.txt?owner={A}")).status == 200
    assert (await client.get(f"/api/sessions/{sid_a}/transcript.txt?owner={B}")).status == 404
    assert (await client.get(f"/api/sessions/{sid_none}")).status == 200  # as before: the id is enough


async def test_resuming_needs_the_owner_key(client: TestClient) -> None:
    sid_a, _ = await start(client, A)
    for other in (B, None):
        sid, frames = await start(client, other, resume=sid_a)
        assert sid != sid_a
        assert [f["code"] for f in frames if f["type"] == "error"] == ["unknown_session"]
    sid, frames = await start(client, A, resume=sid_a)
    assert sid == sid_a and not [f for f in frames if f["type"] == "error"]


async def test_malformed_owner_keys_are_refused(client: TestClient) -> None:
    resp = await client.get("/api/sessions", headers={OWNER_HEADER: "short"})
    assert resp.status == 400 and OWNER_HEADER in (await resp.json())["error"]
    ws = await client.ws_connect("/ws/transcribe")
    await ws.send_json({"type": "start", "owner": "not a key!"})
    frame = await ws.receive_json(timeout=10)
    assert frame["type"] == "error" and frame["code"] == "bad_message"
    await ws.close()


@pytest.fixture
async def archive_client(redis_url: str, fresh_database_url: str) -> AsyncIterator[TestClient]:
    settings = GatewaySettings(redis_url=redis_url, database_url=fresh_database_url)
    async with TestClient(TestServer(make_app(settings))) as c:
        yield c


async def test_archived_sessions_stay_their_owners(
    archive_client: TestClient, fresh_database_url: str
) -> None:
    """Sessions only the archive has (Redis expired them): listed and opened for their owner only."""
    pool: asyncpg.Pool = await connect_pool(fresh_database_url, max_size=2)
    archive = Archive(pool)
    sids = {}
    for name, key in (("a", A), ("b", B), ("none", None)):
        sid = f"archived-{name}-{secrets.token_hex(4)}"
        config = SessionConfig(course=f"course {name}", started_at=1_700_000_000.0)
        await archive.open_session(sid, digest(key) if key else None, config)
        await archive.add_final(
            sid, config, TranscriptEvent(segment=0, start=0, end=1, text=f"{name} said", final=True)
        )
        await archive.end_session(sid, 1)
        sids[name] = sid
    await pool.close()
    c = archive_client
    assert sids["a"] in await listed(c, A) and sids["b"] not in await listed(c, A)
    assert sids["b"] in await listed(c, B) and sids["a"] not in await listed(c, B)
    assert sids["none"] in await listed(c, None) and sids["a"] not in await listed(c, None)
    detail = await (await c.get(f"/api/sessions/{sids['a']}", headers=as_owner(A))).json()
    assert [t["text"] for t in detail["transcript"]] == ["a said"]
    for other in (B, None):
        assert (await c.get(f"/api/sessions/{sids['a']}", headers=as_owner(other))).status == 404
        assert (
            await c.get(f"/api/sessions/{sids['a']}/transcript.txt", headers=as_owner(other))
        ).status == 404


async def test_upload_progress_is_its_owners(client: TestClient, r) -> None:  # type: ignore[no-untyped-def]
    from services.gateway.sessions import SessionStore
    from shared.messages import SessionConfig as Config

    sid = "upl" + secrets.token_hex(8)
    await SessionStore(r, GatewaySettings()).create(sid, Config(), digest(A))
    await r.hset(
        keys.upload(sid), mapping={"status": "feeding", "fed_s": 1, "updated": 0, "filename": "a.mp3"}
    )
    assert (await client.get(f"/api/uploads/{sid}", headers=as_owner(A))).status == 200
    for other in (B, None):
        assert (await client.get(f"/api/uploads/{sid}", headers=as_owner(other))).status == 404
