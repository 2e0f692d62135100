"""Flags (bookmarks and doubts): kept with the session on a real Redis, confirmed and replayed over the
real gateway's WebSocket, and shown in the lecture view and the exports."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from services.gateway.flags import FlagStore, TooManyFlags, quote
from shared.messages import FlagEvent, FlagMessage, TranscriptEvent
from shared.settings import GatewaySettings
from shared.streams import xadd

SETTINGS = GatewaySettings()
WORDS = [(10.0, 10.4, "The"), (10.4, 10.9, "Krebs"), (10.9, 11.5, "cycle"), (11.5, 12.0, "matters.")]
FINAL = TranscriptEvent(
    segment=0, start=10.0, end=12.0, text="The Krebs cycle matters.", final=True, words=WORDS
)
LATER = TranscriptEvent(segment=1, start=20.0, end=23.0, text="Enzymes are proteins.", final=True)


def flag(start: float, end: float, note: str = "") -> FlagMessage:
    return FlagMessage(start=start, end=end, note=note)


async def test_store_keeps_each_flag_once_by_time(r: aioredis.Redis) -> None:
    store, sid = FlagStore(r, SETTINGS), secrets.token_urlsafe(12)
    second, new2 = await store.add(sid, flag(20.0, 21.0, "office hours question"))
    first, new1 = await store.add(sid, flag(10.4, 11.5))
    again, new3 = await store.add(sid, flag(20.0, 21.0, "office hours question"))
    assert (new1, new2, new3) == (True, True, False) and again == second
    assert await store.list(sid) == [first, second]
    events = await r.xrange(SETTINGS.events_key(sid))
    assert [json.loads(f[b"json"])["id"] for _, f in events] == [second.id, first.id], "one event per flag"
    assert 0 < await r.ttl(store.key(sid)) <= SETTINGS.session_retention_s


async def test_store_limit(r: aioredis.Redis) -> None:
    store, sid = FlagStore(r, GatewaySettings(max_flags_per_session=2)), secrets.token_urlsafe(12)
    await store.add(sid, flag(1, 2))
    await store.add(sid, flag(3, 4))
    with pytest.raises(TooManyFlags):
        await store.add(sid, flag(5, 6))
    assert len(await store.list(sid)) == 2


def test_bad_flags_are_refused() -> None:
    for bad in ({"start": 5, "end": 4}, {"start": -1, "end": 2}, {"start": 0, "end": 900}, {"start": 1}):
        with pytest.raises(ValueError):
            FlagMessage.model_validate({"type": "flag", **bad})
    with pytest.raises(ValueError):
        FlagMessage.model_validate({"type": "flag", "start": 1, "end": 2, "note": "x" * 501})


def test_quote_uses_word_timings_then_segments() -> None:
    ev = FlagEvent(id="a", start=10.5, end=11.0)
    assert quote(ev, [FINAL, LATER]) == "Krebs cycle"
    assert quote(FlagEvent(id="b", start=21.0, end=21.0), [FINAL, LATER]) == "Enzymes are proteins."
    assert quote(FlagEvent(id="c", start=15.0, end=15.5), [FINAL, LATER]) == "The Krebs cycle matters."


async def receive_until(ws: Any, kind: str, got: list[dict]) -> dict:
    async for msg in ws:
        got.append(json.loads(msg.data))
        if got[-1]["type"] == kind:
            return got[-1]
    raise AssertionError(f"socket closed before {kind}: {got}")


async def test_flag_confirmed_replayed_on_resume_and_exported(client: TestClient, r: aioredis.Redis) -> None:
    got: list[dict] = []
    async with client.ws_connect("/ws/transcribe") as ws:
        await ws.send_str(json.dumps({"type": "flag", "start": 1, "end": 2}))
        error = await receive_until(ws, "error", got)
        assert error["code"] == "bad_message", "a flag needs a session"
        await ws.send_str(json.dumps({"type": "start", "language": "en"}))
        sid = (await receive_until(ws, "session", got))["session"]
        for ev in (FINAL, LATER):
            await xadd(r, SETTINGS.events_key(sid), ev, 1000)
        await ws.send_str(json.dumps({"type": "flag", "start": 10.5, "end": 11.0, "note": "didn't get this"}))
        confirmed = await receive_until(ws, "flag", got)
        await ws.send_str(json.dumps({"type": "flag", "start": 10, "end": 9}))
        assert (await receive_until(ws, "error", got))["code"] == "bad_message"
    assert confirmed == {
        "type": "flag",
        "id": confirmed["id"],
        "start": 10.5,
        "end": 11.0,
        "note": "didn't get this",
    }

    resumed: list[dict] = []
    async with client.ws_connect("/ws/transcribe") as ws:
        await ws.send_str(json.dumps({"type": "start", "session": sid}))
        assert await receive_until(ws, "flag", resumed) == confirmed, "replayed on resume"
        # The same flag sent again (its client could not tell it arrived) is confirmed, not doubled.
        await ws.send_str(json.dumps({"type": "flag", "start": 10.5, "end": 11.0, "note": "didn't get this"}))
        assert await receive_until(ws, "flag", resumed) == confirmed
        await ws.send_str(json.dumps({"type": "stop"}))
    assert [m for m in resumed if m["type"] == "flag"] == [confirmed, confirmed]
    assert len(await FlagStore(r, SETTINGS).list(sid)) == 1

    detail = await (await client.get(f"/api/sessions/{sid}")).json()
    assert detail["flags"] == [{**{k: v for k, v in confirmed.items() if k != "type"}, "text": "Krebs cycle"}]
    assert detail["transcript"][0]["words"] == [list(w) for w in WORDS]

    md = await (await client.get(f"/api/sessions/{sid}/transcript.md")).text()
    flags = md.split("## Flags", 1)[1].split("## Transcript", 1)[0]
    line = next(x for x in flags.splitlines() if x.startswith("- "))
    assert line.startswith("- [00:10](http://") and f"/?review={sid}#t=10.5" in line
    assert "**didn't get this**" in line and "“Krebs cycle”" in line

    srt = await (await client.get(f"/api/sessions/{sid}/transcript.srt")).text()
    assert "00:00:10,500 --> 00:00:11,300\n⚑ didn't get this\n" in srt
    vtt = await (await client.get(f"/api/sessions/{sid}/transcript.vtt")).text()
    note = "NOTE ⚑ flag at 00:00:10.500 note: didn't get this “Krebs cycle”\n"
    assert note in vtt and vtt.index(note) < vtt.index("00:00:20.000 -->"), "the note sits at its moment"


async def test_archived_lecture_keeps_its_flags_and_words(
    r: aioredis.Redis, redis_url: str, fresh_database_url: str
) -> None:
    """An ended session read from the archive still shows the flags kept with it, and its words."""
    from aiohttp.test_utils import TestServer

    from services.gateway.app import make_app
    from shared.archive import Archive
    from shared.db import connect_pool
    from shared.messages import SessionConfig

    sid = secrets.token_urlsafe(12)
    pool = await connect_pool(fresh_database_url, max_size=2)
    try:
        archive = Archive(pool)
        await archive.open_session(sid, None, SessionConfig(started_at=1_700_000_000.0))
        await archive.add_final(sid, SessionConfig(), FINAL)
        await archive.end_session(sid, 1)
        settings = GatewaySettings(redis_url=redis_url, database_url=fresh_database_url)
        kept, _ = await FlagStore(r, settings).add(sid, flag(10.4, 11.5, "ask in office hours"))
        async with TestClient(TestServer(make_app(settings))) as c:
            detail = await (await c.get(f"/api/sessions/{sid}")).json()
            md = await (await c.get(f"/api/sessions/{sid}/transcript.md")).text()
    finally:
        await pool.close()
    assert detail["status"] == "ended"
    assert [(f["id"], f["text"]) for f in detail["flags"]] == [(kept.id, "Krebs cycle")]
    assert detail["transcript"][0]["words"] == [list(w) for w in WORDS]
    assert "**ask in office hours** — “Krebs cycle”" in md
