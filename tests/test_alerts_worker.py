"""The alerts worker on a real Redis: ordered feed, out-of-order and repeated transcripts, end marker."""

from __future__ import annotations

import itertools
import time

import redis.asyncio as aioredis

from services.alerts.worker import AlertsWorker
from shared.messages import (
    AlertEvent,
    AlertsDone,
    SessionConfig,
    TranscriptEvent,
    TranscriptRecord,
    VadDone,
    from_fields,
)
from shared.settings import AlertsSettings

_ids = itertools.count()
CONFIG = SessionConfig(
    keywords=["membrane"], timezone="UTC", started_at=time.mktime((2026, 3, 2, 10, 0, 0, 0, 0, -1))
)
TEXTS = [
    "Proteins fold into shapes that determine what they can do.",
    "The cell membrane controls what enters and leaves the cell.",
    "Your final exam will be held on",
    "December ninth in this room.",
    "",
    "Problem set five has to be turned in by Sunday at noon.",
]


def record(sid: str, seg: int) -> TranscriptRecord:
    t = TranscriptEvent(segment=seg, start=seg * 5.0, end=seg * 5.0 + 4, text=TEXTS[seg], final=True)
    return TranscriptRecord(sid=sid, transcript=t, config=CONFIG)


async def events(r: aioredis.Redis, s: AlertsSettings, sid: str) -> list:
    return [from_fields(f) for _, f in await r.xrange(s.events_key(sid))]


async def run_order(redis_url: str, order: list[int | str]) -> tuple[list[AlertEvent], list]:
    s = AlertsSettings(redis_url=redis_url)
    r = aioredis.Redis.from_url(redis_url)
    sid = f"alerts-test-{next(_ids)}"
    worker = AlertsWorker(s, r)
    for item in order:
        msg = VadDone(sid=sid, segments=len(TEXTS)) if item == "end" else record(sid, int(item))
        await worker.handle(s.transcripts_stream, msg)
    evs = await events(r, s, sid)
    ttl = await r.ttl(s.events_key(sid))
    assert (0 < ttl <= s.session_retention_s) == any(isinstance(e, AlertsDone) for e in evs), (
        "kept, not forever"
    )
    await r.aclose()
    return [e for e in evs if isinstance(e, AlertEvent)], evs


async def test_in_order(redis_url: str) -> None:
    alerts, evs = await run_order(redis_url, [0, 1, 2, 3, 4, 5, "end"])
    assert [(a.category, a.segment) for a in alerts] == [("custom", 1), ("exam", 2), ("assignment", 5)]
    exam = alerts[1]
    assert exam.date == "2026-12-09" and "December ninth" in exam.text
    assert isinstance(evs[-1], AlertsDone) and evs[-1].segments == len(TEXTS)


async def test_out_of_order_and_end_first_give_the_same_alerts(redis_url: str) -> None:
    expected, _ = await run_order(redis_url, [0, 1, 2, 3, 4, 5, "end"])
    alerts, evs = await run_order(redis_url, ["end", 3, 5, 1, 0, 4, 2])
    assert [a.model_dump() for a in alerts] == [a.model_dump() for a in expected]
    assert [type(e) for e in evs].count(AlertsDone) == 1 and isinstance(evs[-1], AlertsDone)


async def test_redelivered_transcripts_do_not_repeat_alerts(redis_url: str) -> None:
    expected, _ = await run_order(redis_url, [0, 1, 2, 3, 4, 5, "end"])
    alerts, evs = await run_order(redis_url, [0, 1, 1, 2, 3, 2, 4, 5, "end", 5, 3, "end"])
    assert [a.model_dump() for a in alerts] == [a.model_dump() for a in expected]
    assert [type(e) for e in evs].count(AlertsDone) == 1


async def test_not_done_until_every_segment_is_in(redis_url: str) -> None:
    _, evs = await run_order(redis_url, ["end", 0, 1, 2, 4, 5])
    assert not any(isinstance(e, AlertsDone) for e in evs)


async def test_a_held_sentence_is_flushed_at_the_end(redis_url: str) -> None:
    s = AlertsSettings(redis_url=redis_url)
    r = aioredis.Redis.from_url(redis_url)
    w = AlertsWorker(s, r)
    t = TranscriptEvent(segment=0, start=1.0, end=3.0, text="remember the quiz on friday", final=True)
    await w.handle(s.transcripts_stream, TranscriptRecord(sid="held", transcript=t, config=CONFIG))
    await w.handle(s.transcripts_stream, VadDone(sid="held", segments=1))
    evs = await events(r, s, "held")
    assert [e.type for e in evs] == ["alert", "alerts_done"] and evs[0].category == "quiz"
    await r.aclose()


async def test_a_final_that_continues_is_read_with_the_next_one(redis_url: str) -> None:
    """Finals the VAD closed in a short pause of run-on speech carry `continues`, through the worker's
    buffer (out of order here) to the detector: "Your final exam." + "Is on December ninth." is one
    exam alert, dated; without the flag the period ends the first and neither alerts with a date."""
    s = AlertsSettings(redis_url=redis_url)
    r = aioredis.Redis.from_url(redis_url)
    got = {}
    for continues in (True, False):
        sid = f"alerts-test-{next(_ids)}"
        worker = AlertsWorker(s, r)
        for seg, text in reversed(list(enumerate(["Your final exam.", "Is on December ninth."]))):
            t = TranscriptEvent(segment=seg, start=seg * 2.0, end=seg * 2.0 + 2, text=text, final=True)
            rec = TranscriptRecord(sid=sid, transcript=t, config=CONFIG, continues=continues and seg == 0)
            await worker.handle(s.transcripts_stream, rec)
        await worker.handle(s.transcripts_stream, VadDone(sid=sid, segments=2))
        got[continues] = [
            (a.category, a.date, a.segment) for a in await events(r, s, sid) if isinstance(a, AlertEvent)
        ]
    await r.aclose()
    assert got[True] == [("exam", "2026-12-09", 0)]
    assert all(date is None for _, date, _ in got[False])
