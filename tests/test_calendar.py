"""`GET /api/sessions/{sid}/alerts.ics`: the real gateway app on aiohttp's test server, a real Redis."""

from __future__ import annotations

import secrets
from datetime import date, datetime, timedelta

import icalendar
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from shared.messages import AlertEvent, AlertsDone, TranscriptEvent
from tests.events_util import midterm, write_events

MIDTERM = midterm(3, "The midterm is on Friday March 14th at 2 pm.")
ESSAY = AlertEvent(
    segment=7,
    start=3725.0,
    category="assignment",
    text="Your essay is due on March 20th.",
    date="2025-03-20",
    title=None,
)
UNDATED = AlertEvent(segment=9, start=400.0, category="quiz", text="There will be a quiz soon.", title="Quiz")


async def new_session(r: aioredis.Redis, *events: object) -> str:
    sid = secrets.token_urlsafe(18)
    await write_events(r, sid, events)  # type: ignore[arg-type]
    return sid


def parse(body: bytes) -> list[icalendar.Event]:
    cal = icalendar.Calendar.from_ical(body)
    assert cal["VERSION"] == "2.0" and "PRODID" in cal
    return list(cal.walk("VEVENT"))


async def test_dated_alerts_become_events(client: TestClient, r: aioredis.Redis) -> None:
    transcript = TranscriptEvent(segment=3, start=75.4, end=79.0, text=MIDTERM.text, final=True)
    sid = await new_session(r, transcript, MIDTERM, ESSAY, UNDATED, AlertsDone(segments=10))

    resp = await client.get(f"/api/sessions/{sid}/alerts.ics")
    assert resp.status == 200
    assert resp.content_type == "text/calendar"
    assert resp.headers["Content-Disposition"] == f'attachment; filename="classrec-{sid}.ics"'
    events = parse(await resp.read())
    assert len(events) == 2, "the undated quiz has no event"
    midterm, essay = events

    # Timed: a one-hour event at the floating local time that was said.
    start = midterm.decoded("dtstart")
    assert start == datetime(2025, 3, 14, 14, 0) and start.tzinfo is None
    assert midterm.decoded("dtend") == datetime(2025, 3, 14, 15, 0)
    assert str(midterm["summary"]) == "Midterm exam — Fri 14 Mar, 14:00"
    assert str(midterm["uid"]) == f"{sid}-3-exam@classrec"
    desc = str(midterm["description"])
    assert "“The midterm is on Friday March 14th at 2 pm.”" in desc
    assert "said at 01:15 of the lecture" in desc.lower()
    alarms = list(midterm.walk("VALARM"))
    assert len(alarms) == 1 and alarms[0].decoded("trigger") == timedelta(days=-1)

    # All day: a DATE start, the next day as end; no title -> category and sentence; no alarm.
    assert essay.decoded("dtstart") == date(2025, 3, 20) and not isinstance(
        essay.decoded("dtstart"), datetime
    )
    assert essay.decoded("dtend") == date(2025, 3, 21)
    assert str(essay["summary"]) == "Assignment: Your essay is due on March 20th."
    assert str(essay["uid"]) == f"{sid}-7-assignment@classrec"
    assert "said at 1:02:05 of the lecture" in str(essay["description"]).lower()
    assert not list(essay.walk("VALARM"))

    # The UIDs are stable: fetching again gives the same events.
    again = parse(await (await client.get(f"/api/sessions/{sid}/alerts.ics")).read())
    assert [str(e["uid"]) for e in again] == [str(e["uid"]) for e in events]


async def test_segment_filter(client: TestClient, r: aioredis.Redis) -> None:
    sid = await new_session(r, MIDTERM, ESSAY)
    resp = await client.get(f"/api/sessions/{sid}/alerts.ics", params={"segment": "7"})
    assert resp.status == 200
    events = parse(await resp.read())
    assert [str(e["uid"]) for e in events] == [f"{sid}-7-assignment@classrec"]

    missing = await client.get(f"/api/sessions/{sid}/alerts.ics", params={"segment": "9"})
    assert missing.status == 404 and "error" in await missing.json()
    bad = await client.get(f"/api/sessions/{sid}/alerts.ics", params={"segment": "x"})
    assert bad.status == 400 and "error" in await bad.json()


async def test_same_category_twice_in_a_segment_gets_distinct_uids(
    client: TestClient, r: aioredis.Redis
) -> None:
    second = MIDTERM.model_copy(
        update={"text": "And the final is on April 30th.", "date": "2025-04-30", "time": None}
    )
    sid = await new_session(r, MIDTERM, MIDTERM, second)  # the first one written twice
    events = parse(await (await client.get(f"/api/sessions/{sid}/alerts.ics")).read())
    assert [str(e["uid"]) for e in events] == [f"{sid}-3-exam@classrec", f"{sid}-3-exam-2@classrec"]


async def test_session_without_dated_alerts_gets_an_empty_calendar(
    client: TestClient, r: aioredis.Redis
) -> None:
    sid = await new_session(r, UNDATED, TranscriptEvent(segment=0, start=0, end=1, text="Hello.", final=True))
    resp = await client.get(f"/api/sessions/{sid}/alerts.ics")
    assert resp.status == 200
    assert parse(await resp.read()) == []


async def test_unknown_session_is_404(client: TestClient) -> None:
    resp = await client.get(f"/api/sessions/{secrets.token_urlsafe(18)}/alerts.ics")
    assert resp.status == 404
    assert resp.content_type == "application/json"
    assert (await resp.json())["error"]


@pytest.mark.parametrize("sid", ["a" * 101, "bad.sid", "sp%20ace", "star*", "%2A"])
async def test_malformed_session_id_is_400(client: TestClient, sid: str) -> None:
    resp = await client.get(f"/api/sessions/{sid}/alerts.ics")
    assert resp.status == 400
    assert (await resp.json())["error"]
