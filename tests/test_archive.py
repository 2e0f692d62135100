"""The archive worker on a real Redis and a real PostgreSQL: what it writes, that a redelivery writes
nothing twice (also when the worker dies between the write and the ack), and the history routes
reading a session back from the archive once Redis no longer has it."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from services.archive.worker import ArchiveWorker
from shared import keys
from shared.archive import Archive
from shared.db import connect_pool
from shared.messages import (
    AlertEvent,
    AlertRecord,
    FlagEvent,
    SessionConfig,
    SessionEnded,
    SessionOpened,
    TranscriptEvent,
    TranscriptRecord,
    VadDone,
    to_fields,
)
from shared.settings import ArchiveSettings, GatewaySettings
from tests.util import ROOT


def prefixed(tag: str) -> ArchiveSettings:
    """Settings whose streams are this test's own (the Redis server is shared by the whole run)."""
    return ArchiveSettings(
        sessions_stream=f"{tag}:sessions",
        transcripts_stream=f"{tag}:transcripts",
        alerts_stream=f"{tag}:alerts",
        events_prefix=f"{tag}:events:",
        block_ms=50,
        claim_idle_ms=200,
    )


def lecture(sid: str, owner: str | None = None) -> list[tuple[str, object]]:
    """(stream kind, message) of a small lecture: 3 finals (one empty), 2 alerts (one undated)."""
    config = SessionConfig(course="Algorithms", started_at=1_700_000_000.0, keywords=["exam"])
    finals = [
        TranscriptEvent(segment=0, start=0.5, end=3.0, text="Welcome to the course.", final=True),
        TranscriptEvent(segment=1, start=4.0, end=7.5, text="The exam is on March 3rd.", final=True),
        TranscriptEvent(segment=2, start=8.0, end=9.0, text="", final=True),
    ]
    alerts = [
        AlertEvent(
            segment=1, start=4.0, category="exam", text="The exam is on March 3rd.", date="2024-03-03"
        ),
        AlertEvent(segment=1, start=4.0, category="custom", text="The exam is on March 3rd."),
    ]
    out: list[tuple[str, object]] = [("sessions", SessionOpened(sid=sid, config=config, owner=owner))]
    out += [("transcripts", TranscriptRecord(sid=sid, transcript=t, config=config)) for t in finals]
    out += [("transcripts", VadDone(sid=sid, segments=3))]
    out += [("alerts", AlertRecord(sid=sid, alert=a)) for a in alerts]
    out += [("alerts", SessionEnded(sid=sid, segments=3))]
    return out


async def publish(r: aioredis.Redis, s: ArchiveSettings, msgs: list[tuple[str, object]]) -> None:
    streams = {"sessions": s.sessions_stream, "transcripts": s.transcripts_stream, "alerts": s.alerts_stream}
    for kind, msg in msgs:
        await r.xadd(streams[kind], to_fields(msg))  # type: ignore[arg-type]


async def drain(worker: ArchiveWorker, r: aioredis.Redis, s: ArchiveSettings) -> None:
    """Run the worker until every entry of its streams is delivered and acknowledged."""
    deadline = time.monotonic() + 30
    while True:
        await worker.run_once()
        lag = 0
        for stream in worker.streams():
            for g in await r.xinfo_groups(stream):
                if g["name"] == b"archive":
                    lag += (g.get("lag") or 0) + g["pending"]
        if lag == 0:
            return
        assert time.monotonic() < deadline, "archive worker did not catch up"


async def counts(pool: asyncpg.Pool, sid: str) -> dict[str, int]:
    return {
        t: await pool.fetchval(f"SELECT count(*) FROM {t} WHERE session_id = $1", sid)
        for t in ("finals", "alerts")
    }


@pytest.fixture
async def pool(fresh_database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await connect_pool(fresh_database_url, max_size=4)
    yield p
    await p.close()


async def test_worker_writes_a_lecture_once_even_when_delivered_twice(
    r: aioredis.Redis, pool: asyncpg.Pool
) -> None:
    s = prefixed("arch1")
    worker = ArchiveWorker(s, r, Archive(pool), consumer="a1")
    msgs = lecture("sid-arch-one", owner="f" * 64)
    flag = FlagEvent(id="flag-1", start=4.5, end=6.0, note="didn't get this")
    await r.hset(keys.flags("sid-arch-one"), flag.id, flag.model_dump_json())  # as the gateway keeps them
    await publish(r, s, msgs[1:] + msgs[:1])  # the session's opening last: finals come first
    await publish(r, s, msgs)  # and everything again, as a redelivery would
    await drain(worker, r, s)
    row = await Archive(pool).session("sid-arch-one")
    assert row is not None and row.ended and row.segments == 3
    assert row.owner == "f" * 64 and row.config["course"] == "Algorithms"
    assert row.created == 1_700_000_000.0 and row.duration == 9.0
    assert await counts(pool, "sid-arch-one") == {"finals": 3, "alerts": 2}
    finals = await Archive(pool).finals("sid-arch-one")
    assert [f.text for f in finals] == ["Welcome to the course.", "The exam is on March 3rd.", ""]
    alerts = await Archive(pool).alerts("sid-arch-one")
    assert sorted((a.category, a.date) for a in alerts) == [("custom", None), ("exam", "2024-03-03")]
    assert await Archive(pool).flags("sid-arch-one") == [flag]  # copied at the end, once


async def test_killed_between_write_and_ack_writes_no_duplicate(
    redis_url: str, fresh_database_url: str, pool: asyncpg.Pool
) -> None:
    """A real worker process exits abruptly right after its 5th write (the undated alert: one entry
    per stream and read, so session, final 0, exam alert, then final 1, custom alert), before
    acknowledging it; the next worker reclaims that entry and writes it again: no duplicate row."""
    s = prefixed("arch2")
    r = aioredis.Redis.from_url(redis_url)
    await publish(r, s, lecture("sid-arch-two"))
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "DATABASE_URL": fresh_database_url,
        "SESSIONS_STREAM": s.sessions_stream,
        "TRANSCRIPTS_STREAM": s.transcripts_stream,
        "ALERTS_STREAM": s.alerts_stream,
        "CLAIM_IDLE_MS": "300",
        "BLOCK_MS": "100",
        "READ_COUNT": "1",
    }
    cmd = [sys.executable, "-m", "services.archive"]
    crashed = await asyncio.create_subprocess_exec(
        *cmd, cwd=ROOT, env={**env, "ARCHIVE_FAULT_EXIT_AFTER": "5"}
    )
    assert await asyncio.wait_for(crashed.wait(), 60) == 70
    pending = await r.xpending(s.alerts_stream, "archive")
    assert pending["pending"] == 1  # the undated alert: written, not acknowledged
    assert await counts(pool, "sid-arch-two") == {"finals": 2, "alerts": 2}
    proc = await asyncio.create_subprocess_exec(*cmd, cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 60
        while (await r.xpending(s.alerts_stream, "archive"))["pending"] or (
            await pool.fetchval("SELECT ended FROM sessions WHERE id = 'sid-arch-two'")
        ) is not True:
            assert time.monotonic() < deadline, "the restarted worker did not reclaim the entry"
            await asyncio.sleep(0.1)  # polling the database and Redis, with a deadline
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 15)
        await r.aclose()
    assert await counts(pool, "sid-arch-two") == {"finals": 3, "alerts": 2}
    assert (await Archive(pool).session("sid-arch-two")).segments == 3  # type: ignore[union-attr]


async def test_history_served_from_the_archive_once_redis_lost_it(
    r: aioredis.Redis, redis_url: str, pool: asyncpg.Pool, fresh_database_url: str
) -> None:
    s = prefixed("arch3")
    sid = "sid-arch-three"
    worker = ArchiveWorker(s, r, Archive(pool), consumer="a3")
    await publish(r, s, lecture(sid))
    flag = FlagEvent(id="flag-3", start=4.5, end=6.0, note="ask about this")
    await r.hset(keys.flags(sid), flag.id, flag.model_dump_json())
    await drain(worker, r, s)
    await r.delete(keys.flags(sid))
    # Redis never had (or no longer has) this session's registry entry or events.
    await r.delete(keys.session(sid), s.events_key(sid))
    settings = GatewaySettings(
        redis_url=redis_url, database_url=fresh_database_url, events_prefix=s.events_prefix
    )
    from services.gateway.app import make_app

    async with TestClient(TestServer(make_app(settings))) as c:
        detail = await (await c.get(f"/api/sessions/{sid}")).json()
        assert detail["status"] == "ended" and detail["duration"] == 9.0
        assert [t["text"] for t in detail["transcript"]] == [
            "Welcome to the course.",
            "The exam is on March 3rd.",
        ]
        assert {a["category"] for a in detail["alerts"]} == {"exam", "custom"}
        assert [(f["id"], f["note"]) for f in detail["flags"]] == [("flag-3", "ask about this")]
        txt = await (await c.get(f"/api/sessions/{sid}/transcript.txt")).text()
        assert "[00:04] The exam is on March 3rd." in txt
        ics = await (await c.get(f"/api/sessions/{sid}/alerts.ics")).text()
        assert "DTSTART;VALUE=DATE:20240303" in ics
        listed = await (await c.get("/api/sessions")).json()
        mine = [x for x in listed["sessions"] if x["id"] == sid]
        assert mine and mine[0]["segments"] == 2 and mine[0]["alerts"] == 2
        assert (await c.get("/api/sessions/sid-arch-unknown")).status == 404


async def test_an_incomplete_archive_copy_yields_to_redis(
    r: aioredis.Redis, redis_url: str, pool: asyncpg.Pool, fresh_database_url: str
) -> None:
    """The end was archived before the last final (the worker lags on one stream): while Redis has
    the session it is served from there, whole; once Redis lost it, the archive's copy is served."""
    sid = "sid-arch-four"
    archive = Archive(pool)
    config = SessionConfig(started_at=1_700_000_000.0)
    finals = [
        TranscriptEvent(segment=i, start=i, end=i + 0.5, text=f"line {i}", final=True) for i in range(3)
    ]
    for t in finals[:2]:
        await archive.add_final(sid, config, t)
    await archive.end_session(sid, 3)
    row = await archive.session(sid)
    assert row is not None and row.ended and not row.complete
    for t in finals:
        await r.xadd(keys.events(sid), to_fields(t))
    settings = GatewaySettings(redis_url=redis_url, database_url=fresh_database_url)
    from services.gateway.app import make_app

    async with TestClient(TestServer(make_app(settings))) as c:
        detail = await (await c.get(f"/api/sessions/{sid}")).json()
        assert [t["text"] for t in detail["transcript"]] == ["line 0", "line 1", "line 2"]
        await r.delete(keys.events(sid))
        detail = await (await c.get(f"/api/sessions/{sid}")).json()
        assert [t["text"] for t in detail["transcript"]] == ["line 0", "line 1"]
    await archive.add_final(sid, config, finals[2])
    assert (await archive.session(sid)).complete  # type: ignore[union-attr]
