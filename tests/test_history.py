"""Past sessions (`/api/sessions`, a transcript and its downloads): the real gateway app, a real Redis."""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from services.gateway.app import make_app
from services.gateway.sessions import SessionStore
from shared.messages import AlertsDone, Msg, SessionConfig, TranscriptEvent
from shared.settings import GatewaySettings
from shared.streams import xadd
from tests.events_util import midterm, write_events
from tests.util import free_port

SETTINGS = GatewaySettings()
LONG = (
    "So that was the introduction to eigenvalues and eigenvectors, which we will use all term long. "
    "The midterm exam is on March 14th at 2 pm. Please bring a calculator and your student card."
)
MIDTERM = midterm(1, "The midterm exam is on March 14th at 2 pm.")
EVENTS: list[Msg] = [
    TranscriptEvent(segment=0, start=0.5, end=2.0, text="Welcome", final=False, stable=""),
    TranscriptEvent(segment=0, start=0.5, end=3.25, text="Welcome to   linear algebra.", final=True),
    TranscriptEvent(segment=1, start=75.4, end=90.4, text="So that was", final=False),
    TranscriptEvent(segment=1, start=75.4, end=90.4, text=LONG, final=True),
    MIDTERM,
    TranscriptEvent(segment=1, start=75.4, end=90.4, text="a redelivered repeat", final=True),
    MIDTERM,  # written twice
    TranscriptEvent(segment=2, start=91.0, end=92.0, text="", final=True),  # noise: empty final
    TranscriptEvent(segment=3, start=3725.0, end=3727.5, text="See you <next> week & bye.", final=True),
    TranscriptEvent(segment=4, start=3728.0, end=3729.0, text="a partial without its final", final=False),
    AlertsDone(segments=4),
]
STARTED = datetime(2025, 3, 10, 9, 0, tzinfo=UTC).timestamp()  # 10:00 in Paris


async def new_session(
    r: aioredis.Redis, events: list[Msg], created: float, config: SessionConfig | None = None
) -> str:
    sid = secrets.token_urlsafe(18)
    store = SessionStore(r, SETTINGS)
    await store.create(sid, config or SessionConfig())
    await r.hset(store.key(sid), mapping={"created": created, "status": "ended"})
    await write_events(r, sid, events)
    return sid


async def lecture(r: aioredis.Redis, created: float | None = None) -> str:
    config = SessionConfig(keywords=["lab"], timezone="Europe/Paris", started_at=STARTED)
    return await new_session(r, EVENTS, created or time.time(), config)


# --- a strict SRT / VTT reader ------------------------------------------------------------------

TIMING = r"(\d{2}):([0-5]\d):([0-5]\d)SEP(\d{3}) --> (\d{2}):([0-5]\d):([0-5]\d)SEP(\d{3})"


@dataclass
class Cue:
    start: float
    end: float
    lines: list[str]


def seconds(parts: tuple[str, ...]) -> float:
    hh, mm, ss, ms = (int(p) for p in parts)
    return hh * 3600 + mm * 60 + ss + ms / 1000


def parse_cues(body: str, sep: str) -> list[Cue]:
    """Numbered cues, consecutive from 1; one timing line; 1-2 non-blank text lines; time ordered."""
    assert body.endswith("\n") and "\r" not in body and "\n\n\n" not in body
    timing = re.compile(TIMING.replace("SEP", re.escape(sep)))
    cues: list[Cue] = []
    for n, block in enumerate(body.strip("\n").split("\n\n"), 1):
        lines = block.split("\n")
        assert lines[0] == str(n), block
        m = timing.fullmatch(lines[1])
        assert m, lines[1]
        cue = Cue(seconds(m.groups()[:4]), seconds(m.groups()[4:]), lines[2:])
        assert cue.start < cue.end and 1 <= len(cue.lines) <= 2, block
        assert all(line.strip() and len(line) <= 42 for line in cue.lines), block
        assert not cues or cues[-1].end <= cue.start, "cues overlap or go back in time"
        cues.append(cue)
    return cues


def parse_srt(body: str) -> list[Cue]:
    return parse_cues(body, ",")


def parse_vtt(body: str) -> list[Cue]:
    header, _, rest = body.partition("\n\n")
    assert header == "WEBVTT"
    blocks = rest.split("\n\n")
    while blocks and blocks[0].startswith("NOTE"):
        blocks.pop(0)
    return parse_cues("\n\n".join(blocks), ".")


# --- the list -----------------------------------------------------------------------------------


async def test_list_newest_first_with_counts(client: TestClient, r: aioredis.Redis) -> None:
    now = time.time()
    older = await lecture(r, created=now - 60)
    newer = await new_session(r, [], now)  # started, nothing said yet

    resp = await client.get("/api/sessions")
    assert resp.status == 200
    body = await resp.json()
    assert body["limit"] == 50 and body["total"] >= 2
    ids = [s["id"] for s in body["sessions"]]
    assert ids.index(newer) < ids.index(older)
    created = [s["created"] for s in body["sessions"]]
    assert created == sorted(created, reverse=True)

    item = body["sessions"][ids.index(older)]
    assert item == {
        "id": older,
        "status": "ended",
        "created": datetime.fromtimestamp(now - 60, UTC).isoformat(timespec="seconds"),
        "course": None,
        "language": "en",
        "keywords": ["lab"],
        "segments": 3,  # 0, 1 and 3: the repeat, the empty final and the partial do not count
        "alerts": 1,
        "duration": 3727.5,
    }
    empty = body["sessions"][ids.index(newer)]
    assert (empty["segments"], empty["alerts"], empty["duration"], empty["status"]) == (0, 0, 0, "ended")


async def test_list_counts_follow_new_events(client: TestClient, r: aioredis.Redis) -> None:
    sid = await new_session(r, EVENTS[:2], time.time() + 3600)  # the newest of all

    async def first() -> dict:
        resp = await client.get("/api/sessions", params={"limit": "1"})
        assert resp.status == 200
        sessions = (await resp.json())["sessions"]
        assert len(sessions) == 1 and sessions[0]["id"] == sid
        return sessions[0]

    assert (await first())["segments"] == 1
    for ev in EVENTS[2:5]:
        await xadd(r, SETTINGS.events_key(sid), ev, 1000)
    again = await first()  # only the new entries are read: the counts still come out right
    assert (again["segments"], again["alerts"], again["duration"]) == (2, 1, 90.4)
    await r.hset(SessionStore(r, SETTINGS).key(sid), "created", time.time() - 86400)  # out of the way


async def test_list_limit(client: TestClient, r: aioredis.Redis) -> None:
    await lecture(r)
    await lecture(r)
    resp = await client.get("/api/sessions", params={"limit": "1"})
    body = await resp.json()
    assert len(body["sessions"]) == 1 and body["total"] >= 2
    big = await client.get("/api/sessions", params={"limit": "100000"})
    assert (await big.json())["limit"] == 500
    for bad in ("0", "-3", "x", ""):
        resp = await client.get("/api/sessions", params={"limit": bad})
        assert resp.status == 400 and "error" in await resp.json()


# --- one session --------------------------------------------------------------------------------


async def test_detail_has_finals_only_first_of_each_segment(client: TestClient, r: aioredis.Redis) -> None:
    sid = await lecture(r)
    resp = await client.get(f"/api/sessions/{sid}")
    assert resp.status == 200
    body = await resp.json()
    assert body["id"] == sid and body["status"] == "ended"
    assert body["config"]["keywords"] == ["lab"] and body["config"]["timezone"] == "Europe/Paris"
    assert body["transcript"] == [
        {"segment": 0, "start": 0.5, "end": 3.25, "text": "Welcome to   linear algebra."},
        {"segment": 1, "start": 75.4, "end": 90.4, "text": LONG},
        {"segment": 3, "start": 3725.0, "end": 3727.5, "text": "See you <next> week & bye."},
    ]
    assert body["alerts"] == [MIDTERM.model_dump(exclude={"type"})]
    assert body["duration"] == 3727.5


async def test_events_without_registry_entry(client: TestClient, r: aioredis.Redis) -> None:
    sid = secrets.token_urlsafe(18)
    await xadd(r, SETTINGS.events_key(sid), EVENTS[1], 1000)
    body = await (await client.get(f"/api/sessions/{sid}")).json()
    assert body["status"] is None and body["created"] is not None and len(body["transcript"]) == 1


async def test_txt(client: TestClient, r: aioredis.Redis) -> None:
    sid = await lecture(r)
    resp = await client.get(f"/api/sessions/{sid}/transcript.txt")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert resp.headers["Content-Disposition"] == f'attachment; filename="classrec-{sid}.txt"'
    assert await resp.text() == (
        f"[00:00] Welcome to linear algebra.\n[01:15] {LONG}\n[1:02:05] See you <next> week & bye.\n"
    )


async def test_srt(client: TestClient, r: aioredis.Redis) -> None:
    sid = await lecture(r)
    resp = await client.get(f"/api/sessions/{sid}/transcript.srt")
    assert resp.status == 200 and resp.content_type == "application/x-subrip" and resp.charset == "utf-8"
    assert resp.headers["Content-Disposition"] == f'attachment; filename="classrec-{sid}.srt"'
    cues = parse_srt(await resp.text())

    assert (cues[0].start, cues[0].end, cues[0].lines) == (0.5, 3.25, ["Welcome to linear algebra."])
    long = [c for c in cues if 75.4 <= c.start < 90.4]
    assert len(long) >= 3, "a long segment is split into several cues"
    assert long[0].start == 75.4 and long[-1].end == 90.4
    assert all(a.end == b.start for a, b in zip(long, long[1:], strict=False)), "contiguous"
    assert " ".join(line for c in long for line in c.lines) == LONG
    for c in long:  # time in proportion to the characters shown
        share = sum(len(line) for line in c.lines) / sum(len(line) for k in long for line in k.lines)
        assert abs((c.end - c.start) - 15.0 * share) < 0.01
    assert (cues[-1].start, cues[-1].end) == (3725.0, 3727.5)
    assert cues[-1].lines == ["See you <next> week & bye."]
    assert len(cues) == len(long) + 2


async def test_vtt(client: TestClient, r: aioredis.Redis) -> None:
    sid = await lecture(r)
    resp = await client.get(f"/api/sessions/{sid}/transcript.vtt")
    assert resp.status == 200 and resp.content_type == "text/vtt" and resp.charset == "utf-8"
    body = await resp.text()
    assert body.startswith("WEBVTT\n\n")
    assert "\n00:00:00.500 --> 00:00:03.250\n" in body and "\n01:02:05.000 --> 01:02:07.500\n" in body
    cues = parse_vtt(body)
    srt = parse_srt(await (await client.get(f"/api/sessions/{sid}/transcript.srt")).text())
    assert [(c.start, c.end) for c in cues] == [(c.start, c.end) for c in srt]
    assert cues[-1].lines == ["See you &lt;next&gt; week &amp; bye."]  # VTT text is escaped


async def test_markdown(client: TestClient, r: aioredis.Redis) -> None:
    sid = await lecture(r)
    resp = await client.get(f"/api/sessions/{sid}/transcript.md")
    assert resp.status == 200 and resp.content_type == "text/markdown" and resp.charset == "utf-8"
    assert resp.headers["Content-Disposition"] == f'attachment; filename="classrec-{sid}.md"'
    md = await resp.text()
    lines = md.splitlines()
    assert lines[0] == "# Lecture — Monday 10 March 2025"
    assert "Started 10:00 (CET)" in lines[2]
    alerts = md.index("## Alerts")
    transcript = md.index("## Transcript")
    assert alerts < transcript
    alert_lines = [line for line in md[alerts:transcript].splitlines() if line.startswith("- ")]
    assert len(alert_lines) == 1
    for part in (
        "**Exam**",
        "Midterm exam — Fri 14 Mar, 14:00",
        "2025-03-14 14:00",
        MIDTERM.text,
        f"[01:15](http://{client.host}:{client.port}/?review={sid}#t=75.4)",  # into the playback
    ):
        assert part in alert_lines[0]
    body = md[transcript:]
    assert f"**{MIDTERM.text}**" in body
    assert body.count("**") == 2, "only the alert sentence is bold"
    # paragraphs open with their time, a link into the playback; every segment keeps its anchor
    assert (
        f'\\[[01:15](http://{client.host}:{client.port}/?review={sid}#t=75.4)\\] <a id="seg-1"></a>So that was'
        in body
    )
    assert "See you \\<next\\> week & bye." in body
    assert "redelivered" not in md and "partial" not in md


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["", "/transcript.txt", "/transcript.srt", "/transcript.vtt", "/transcript.md"]
)
async def test_unknown_and_malformed(client: TestClient, path: str) -> None:
    unknown = await client.get(f"/api/sessions/{secrets.token_urlsafe(18)}{path}")
    assert unknown.status == 404 and (await unknown.json())["error"] == "unknown session"
    for bad in ("short", "bad!id!123", "x" * 101):
        resp = await client.get(f"/api/sessions/{bad}{path}")
        assert resp.status == 400 and (await resp.json())["error"] == "malformed session id"


async def test_unknown_format(client: TestClient, r: aioredis.Redis) -> None:
    sid = await lecture(r)
    resp = await client.get(f"/api/sessions/{sid}/transcript.doc")
    assert resp.status == 404 and "error" in await resp.json()


async def test_redis_down_is_503() -> None:
    app = make_app(GatewaySettings(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    async with TestClient(TestServer(app)) as c:
        for path in ("/api/sessions", f"/api/sessions/{secrets.token_urlsafe(18)}/transcript.md"):
            resp = await c.get(path)
            assert resp.status == 503 and "error" in await resp.json()


def test_listing_needs_a_token_from_another_machine() -> None:
    from aiohttp.test_utils import make_mocked_request

    from services.gateway.history.routes import may_list

    def req(peer: str) -> web.Request:
        transport = type("T", (), {"get_extra_info": lambda self, name, default=None: (peer, 1234)})()
        return make_mocked_request("GET", "/api/sessions", transport=transport)

    assert may_list(req("127.0.0.1"), None) and may_list(req("::1"), None)
    assert not may_list(req("192.0.2.7"), None)
    assert may_list(req("192.0.2.7"), "s3cret")
