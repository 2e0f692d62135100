"""Reading a session's events (services/gateway/events.py) on a real Redis: what a client is sent
(the first final of a segment wins, internal entries stay inside, `alerts_done` ends it), what a
stored transcript is read from, and an upload's progress read back from the stream's end."""

from __future__ import annotations

import contextlib
import secrets

import redis.asyncio as aioredis

from services.gateway import events
from services.gateway.events import FirstFinals
from shared import keys
from shared.messages import AlertEvent, AlertsDone, ErrorEvent, Msg, TranscriptEvent, VadDone
from shared.settings import GatewaySettings
from tests.events_util import midterm, write_events

PARTIAL = TranscriptEvent(segment=0, start=0.0, end=1.0, text="Wel", final=False)
FINAL = TranscriptEvent(segment=0, start=0.0, end=2.0, text="Welcome.", final=True)
LATE = TranscriptEvent(segment=0, start=0.0, end=1.5, text="Welcome to", final=False)  # after its final
REPEAT = TranscriptEvent(segment=0, start=0.0, end=2.0, text="a redelivered repeat", final=True)
NEXT = TranscriptEvent(segment=1, start=2.5, end=4.0, text="Today: proteins.", final=True)
ALERT = midterm(1, "The midterm is on March 14th at 2 pm.")
STREAM: list[Msg] = [PARTIAL, FINAL, LATE, REPEAT, ALERT, VadDone(sid="x", segments=2), NEXT]


def test_first_finals_keeps_the_first_final_of_each_segment() -> None:
    finals = FirstFinals()
    admitted = [finals.admit(m) for m in (PARTIAL, FINAL, LATE, REPEAT, ALERT, NEXT)]
    assert admitted == [True, True, False, False, True, True]
    first = FirstFinals()
    firsts = [first.first(m) for m in (PARTIAL, FINAL, REPEAT, ALERT, NEXT, NEXT)]
    assert firsts == [False, True, False, False, True, False]


async def test_a_client_gets_each_final_once_and_the_end(r: aioredis.Redis, redis_url: str) -> None:
    s = GatewaySettings(redis_url=redis_url, block_ms=100)
    sid = secrets.token_urlsafe(18)
    await write_events(r, sid, [*STREAM, ErrorEvent(code="timeout", message="late"), AlertsDone(segments=2)])
    got: list[Msg] = []
    async with contextlib.aclosing(events.for_client(r, s, sid)) as stream:
        async for msg in stream:
            if isinstance(msg, AlertsDone):
                break
            assert msg is not None, "everything was written before the read: no wait comes up empty"
            got.append(msg)
    assert got == [PARTIAL, FINAL, ALERT, NEXT, ErrorEvent(code="timeout", message="late")]


async def test_follow_says_when_a_wait_brought_nothing(r: aioredis.Redis, redis_url: str) -> None:
    s = GatewaySettings(redis_url=redis_url, block_ms=50)
    sid = secrets.token_urlsafe(18)
    await write_events(r, sid, [FINAL])
    seen: list[Msg | None] = []
    async with contextlib.aclosing(events.follow(r, s, sid)) as stream:
        async for msg in stream:
            seen.append(msg)
            if msg is None:
                break
    assert seen == [FINAL, None]


async def test_read_gives_the_stored_kinds_in_order(r: aioredis.Redis) -> None:
    sid = secrets.token_urlsafe(18)
    await write_events(r, sid, STREAM)
    read = [msg async for _, msg in events.read(r, keys.events(sid))]
    assert read == [PARTIAL, FINAL, LATE, REPEAT, ALERT, None, NEXT]  # vad_done is not stored text
    assert isinstance(read[4], AlertEvent)


async def test_progress_is_the_newest_final_and_whether_it_ended(r: aioredis.Redis) -> None:
    sid = secrets.token_urlsafe(18)
    assert await events.progress(r, keys.events(sid)) == (0.0, False)
    await write_events(r, sid, [FINAL, NEXT, LATE])
    assert await events.progress(r, keys.events(sid)) == (4.0, False)
    await write_events(r, sid, [AlertsDone(segments=2)])
    assert await events.progress(r, keys.events(sid)) == (4.0, True)
