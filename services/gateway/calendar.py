"""`GET /api/sessions/{sid}/alerts.ics`: a session's dated alerts as an iCalendar file.

The alerts are read back from the session's `events:{sid}` stream (the `alert` entries the alerts
worker wrote there), so the file is right at any moment of a lecture and after it. Each alert that
has a date becomes one VEVENT:

- a date and no time: an all-day event (DTSTART;VALUE=DATE, DTEND the next day);
- a date and a time: a one-hour event;
- SUMMARY the alert's title ("Midterm exam — Sat 14 Mar"), else "<Category>: <sentence>";
- DESCRIPTION the quoted sentence and "said at mm:ss of the lecture";
- UID `{sid}-{segment}-{category}@classrec`, stable, so importing the file again updates the
  events instead of duplicating them (a second alert of the same category in the same segment
  gets `-2`, `-3` ... before the `@`);
- a VALARM one day before the start for exams and deadlines.

Times are *floating* local times (no TZID, no `Z`): the alert carries the wall-clock time the
lecturer said, in the session's time zone, and a calendar shows a floating time as that wall-clock
time in the user's own zone, which is the lecture's zone for a student who attends it.

`?segment=N` returns only the alert(s) of segment N (404 when it has no dated alert). An unknown
session (no events stream) is a 404 and a malformed session id a 400, both with a JSON body
`{"error": ...}`; a session without dated alerts gets 200 and an empty calendar.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime

import icalendar
from aiohttp import web

from services.gateway.errors import ApiError
from services.gateway.events import alert_ident
from services.gateway.flag_formats import clock
from services.gateway.history.formats import CATEGORY_NAMES
from services.gateway.history.routes import load
from services.gateway.sessions import SID_RE
from shared.messages import AlertEvent

log = logging.getLogger(__name__)

ALARM_CATEGORIES = frozenset({"exam", "deadline"})
EVENT_DURATION = timedelta(hours=1)
PRODID = "-//ClassRec//lecture alerts//EN"


def add_routes(app: web.Application) -> None:
    """Registers `GET /api/sessions/{sid}/alerts.ics` on the gateway's application."""
    app.router.add_get("/api/sessions/{sid}/alerts.ics", alerts_ics)


@dataclass(frozen=True)
class DatedAlert:
    """An alert with a valid date; `at` is None for an all-day event."""

    alert: AlertEvent
    day: date
    at: dtime | None


def dated(alert: AlertEvent) -> DatedAlert | None:
    """The alert with its date and time parsed, or None when it has no (valid) date."""
    if not alert.date:
        return None
    try:
        day = date.fromisoformat(alert.date)
    except ValueError:
        return None
    at = None
    if alert.time and re.fullmatch(r"\d{1,2}:\d{2}", alert.time):
        hh, mm = (int(x) for x in alert.time.split(":"))
        if hh < 24 and mm < 60:
            at = dtime(hh, mm)
    return DatedAlert(alert, day, at)


def summary(alert: AlertEvent) -> str:
    """The alert's title, else "<Category>: <sentence>" (shortened)."""
    if alert.title and alert.title.strip():
        return alert.title.strip()
    text = " ".join(alert.text.split())
    if len(text) > 80:
        text = text[:79].rstrip() + "…"
    name = CATEGORY_NAMES.get(alert.category, alert.category.capitalize())
    return f"{name}: {text}" if text else name


def description(alert: AlertEvent) -> str:
    text = " ".join(alert.text.split())
    said = f"Said at {clock(alert.start)} of the lecture."
    return f"“{text}”\n\n{said}" if text else said


def make_event(item: DatedAlert, uid: str, stamp: datetime) -> icalendar.Event:
    """One VEVENT for a dated alert (floating local time when it has a time)."""
    alert = item.alert
    ev = icalendar.Event()
    ev.add("uid", uid)
    ev.add("dtstamp", stamp)
    if item.at is None:
        ev.add("dtstart", item.day)
        ev.add("dtend", item.day + timedelta(days=1))
        ev.add("transp", "TRANSPARENT")  # an all-day reminder does not block the day
    else:
        start = datetime.combine(item.day, item.at)  # naive: a floating time
        ev.add("dtstart", start)
        ev.add("dtend", start + EVENT_DURATION)
    ev.add("summary", summary(alert))
    ev.add("description", description(alert))
    ev.add("categories", [CATEGORY_NAMES.get(alert.category, alert.category)])
    if alert.category in ALARM_CATEGORIES:
        alarm = icalendar.Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", f"Tomorrow: {summary(alert)}")
        alarm.add("trigger", timedelta(days=-1))
        ev.add_component(alarm)
    return ev


def build_calendar(sid: str, alerts: list[AlertEvent], stamp: datetime | None = None) -> icalendar.Calendar:
    """The calendar of the dated alerts, in stream order; exact repeats are dropped."""
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", "ClassRec alerts")
    stamp = stamp or datetime.now(UTC).replace(microsecond=0)
    seen: set[tuple] = set()
    per_key: dict[tuple[int, str], int] = {}
    for alert in alerts:
        item = dated(alert)
        if item is None:
            continue
        ident = alert_ident(alert)
        if ident in seen:  # the same alert written twice
            continue
        seen.add(ident)
        n = per_key[(alert.segment, alert.category)] = per_key.get((alert.segment, alert.category), 0) + 1
        suffix = f"-{n}" if n > 1 else ""
        uid = f"{sid}-{alert.segment}-{alert.category}{suffix}@classrec"
        cal.add_component(make_event(item, uid, stamp))
    return cal


async def alerts_ics(request: web.Request) -> web.Response:
    sid = request.match_info["sid"]
    if not SID_RE.fullmatch(sid):
        raise ApiError(400, "malformed session id")
    segment: int | None = None
    if "segment" in request.query:
        try:
            segment = int(request.query["segment"])
        except ValueError:
            raise ApiError(400, "segment must be an integer") from None
    # The session as the history routes read it: its owner's or a share's, from Redis or the archive.
    _, record = await load(request)
    alerts = record.alerts
    filename = f"classrec-{sid}.ics"
    if segment is not None:
        alerts = [a for a in alerts if a.segment == segment]
        if not any(dated(a) for a in alerts):
            raise ApiError(404, f"no dated alert at segment {segment}")
        filename = f"classrec-{sid}-{segment}.ics"
    cal = build_calendar(sid, alerts)
    return web.Response(
        body=cal.to_ical(),
        content_type="text/calendar",
        charset="utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-cache",
        },
    )
