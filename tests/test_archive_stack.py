"""The archive end to end on the real stack (`python -m services`, its own Redis, a real PostgreSQL):

1. a follower of a share link, joining in a real browser in the middle of a lecture, sees the
   transcript from its start, then the rest live, then the end;
2. the lecture outlives Redis: the stack stopped, Redis flushed, the stack started again, and the
   lecture, its alerts, its audio (as long as what was sent, within 0.2 s) and its search hits
   are all still there, for its owner only;
3. in Chromium, the page's search box finds a word of it (from the archive) and a hit opens the
   lecture at that final.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import redis

from shared import keys
from shared.redis_server import start_redis
from tests.audio_util import opus_seconds
from tests.browser_util import launched, missing_browser, open_page
from tests.client import FRAME_BYTES, collect, finals
from tests.util import ROOT, Lecture, free_port, wait_ready

pytestmark = pytest.mark.slow
OWNER = "stack-owner-" + secrets.token_urlsafe(16)
HEADERS = {"X-ClassRec-Owner": OWNER}
SPEED = 2.0  # the lecture streamed at twice real time


@dataclass
class ArchiveStack:
    """`python -m services` on its own Redis and database, stopped and started at will."""

    dir: Path
    database_url: str
    port: int = field(default_factory=free_port)
    redis_port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    redis_proc: subprocess.Popen | None = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.dir / "services.log"

    def start(self) -> None:
        if self.redis_proc is None:
            self.redis_proc = start_redis(self.redis_port, self.dir / "redis")
        env = {
            **os.environ,
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "DATABASE_URL": self.database_url,
            "DATA_DIR": str(self.dir / "data"),
            "PORT": str(self.port),
            "TRANSCRIBERS": "1",
        }
        with self.log.open("a") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "services"], cwd=ROOT, env=env, stdout=out, stderr=out
            )
        wait_ready(self.http, self.proc, self.log)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)
            self.proc = None

    def flush_redis(self) -> None:
        redis.Redis(port=self.redis_port).flushall()

    def close(self) -> None:
        self.stop()
        if self.redis_proc is not None:
            self.redis_proc.terminate()
            self.redis_proc.wait(10)

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        req = urllib.request.Request(self.http + path, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=20) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def json(self, path: str, headers: dict[str, str] | None = None) -> Any:
        status, body = self.get(path, headers)
        assert status == 200, (path, status, body[:300])
        return json.loads(body)


@pytest.fixture(scope="module")
def archive_stack(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArchiveStack]:
    name = asyncio.run(_create_db(database_url, "stack_" + secrets.token_hex(4)))
    s = ArchiveStack(tmp_path_factory.mktemp("archive-stack"), database_url.rsplit("/", 1)[0] + "/" + name)
    try:
        s.start()
        yield s
    finally:
        s.close()


async def _create_db(url: str, name: str) -> str:
    conn = await asyncpg.connect(url)
    await conn.execute(f"CREATE DATABASE {name}")
    await conn.close()
    return name


@dataclass
class Streamed:
    sid: str
    messages: list[dict[str, Any]]
    seconds: float


@pytest.fixture(scope="module")
def state() -> dict[str, Any]:
    return {}


async def stream_with_follower(s: ArchiveStack, pcm: bytes) -> tuple[Streamed, list[dict[str, Any]], str]:
    """Streams the lecture as its owner; once a few finals are out, shares it and opens the link
    in Chromium; returns what the owner got, what the page shows at the end, and its final state."""
    got: list[dict[str, Any]] = []
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(s.http.replace("http", "ws") + "/ws/transcribe") as ws,
    ):
        await ws.send_str(json.dumps({"type": "start", "owner": OWNER, "course": "Biology 101"}))
        reader = asyncio.create_task(collect(ws, got))
        async with launched() as browser:
            page = None
            t0 = time.monotonic()
            for i in range(0, len(pcm), FRAME_BYTES):
                await asyncio.sleep(max(0.0, t0 + i / 32000 / SPEED - time.monotonic()))  # pacing
                await ws.send_bytes(pcm[i : i + FRAME_BYTES])
                if page is None and len(finals(got)) >= 3:  # mid-lecture: a follower joins
                    sid = next(m["session"] for m in got if m["type"] == "session")
                    async with http.post(f"{s.http}/api/sessions/{sid}/share", headers=HEADERS) as resp:
                        assert resp.status == 201, await resp.text()
                        link = (await resp.json())["url"]
                    joined_at = len(finals(got))
                    page = await browser.new_page()
                    await page.goto(s.http + link)
                    # What it shows first is the lecture from its start, not from when it joined.
                    await page.wait_for_function(
                        f"() => window.classrec.transcript.toJSON().filter(t => t.final).length >= {joined_at}",
                        timeout=30_000,
                    )
                    first = await page.evaluate(
                        "() => window.classrec.transcript.toJSON().filter(t => t.final).map(t => t.segment)"
                    )
                    assert sorted(first)[:joined_at] == list(range(joined_at)), first
            await ws.send_str(json.dumps({"type": "stop"}))
            await asyncio.wait_for(reader, 300)
            assert page is not None, "the lecture ended before 3 finals"
            await page.wait_for_function("() => window.classrec.follow.state === 'ended'", timeout=60_000)
            shown = await page.evaluate("() => window.classrec.transcript.toJSON().filter(t => t.final)")
            status = await page.inner_text("#status")
    sid = next(m["session"] for m in got if m["type"] == "session")
    return Streamed(sid, got, len(pcm) / 32000), shown, status


@pytest.mark.skipif(missing_browser() is not None, reason=str(missing_browser()))
async def test_a_follower_joining_mid_lecture_sees_it_from_the_start(
    archive_stack: ArchiveStack, lecture1: Lecture, state: dict[str, Any]
) -> None:
    pcm = lecture1.pcm[: 70 * 32000]
    streamed, shown, status = await stream_with_follower(archive_stack, pcm)
    state["streamed"] = streamed
    owner_finals = [(f["segment"], f["text"]) for f in finals(streamed.messages)]
    assert streamed.messages[-1]["type"] == "end" and len(owner_finals) >= 6
    page_finals = sorted((t["segment"], t["text"]) for t in shown)
    assert page_finals == owner_finals  # the whole transcript, each final once, word for word
    assert status == "ended"


async def test_the_lecture_outlives_redis(
    archive_stack: ArchiveStack, lecture1: Lecture, state: dict[str, Any]
) -> None:
    s = archive_stack
    streamed = await lecture_streamed(s, lecture1, state)
    sid = streamed.sid
    alerts = sorted((m["segment"], m["category"]) for m in streamed.messages if m["type"] == "alert")
    assert alerts, "lecture1's first 70 s have announcements"
    word = (
        next(w for f in finals(streamed.messages) for w in f["text"].split() if len(w) > 6)
        .strip(".,!?")
        .lower()
    )
    audio = wait_audio(s, sid)
    before = {
        "detail": s.json(f"/api/sessions/{sid}", HEADERS),
        "search": s.json(f"/api/search?q={word}", HEADERS)["results"],
    }
    assert before["search"] and all(h["session"] == sid for h in before["search"])
    assert abs(opus_seconds(audio) - streamed.seconds) < 0.2

    s.stop()
    s.flush_redis()
    s.start()
    assert not redis.Redis(port=s.redis_port).exists(keys.events(sid), keys.session(sid))

    listed = s.json("/api/sessions", HEADERS)["sessions"]
    assert [x["id"] for x in listed] == [sid] and listed[0]["alerts"] == len(set(alerts))
    detail = s.json(f"/api/sessions/{sid}", HEADERS)
    assert detail["transcript"] == before["detail"]["transcript"]
    assert [(t["segment"], t["start"], t["end"], t["text"]) for t in detail["transcript"]] == [
        (f["segment"], f["start"], f["end"], f["text"])
        for f in finals(streamed.messages)
        if f["text"].strip()
    ]
    assert sorted((a["segment"], a["category"]) for a in detail["alerts"]) == sorted(set(alerts))
    status, kept = s.get(f"/api/sessions/{sid}/audio", HEADERS)
    assert status == 200 and abs(opus_seconds(kept) - streamed.seconds) < 0.2
    assert s.json(f"/api/search?q={word}", HEADERS)["results"] == before["search"]
    # And still nobody else's.
    other = {"X-ClassRec-Owner": "someone-else-" + secrets.token_urlsafe(16)}
    assert s.json("/api/sessions", other)["sessions"] == []
    assert s.get(f"/api/sessions/{sid}", other)[0] == 404
    assert s.get(f"/api/sessions/{sid}/audio", other)[0] == 404
    assert s.json(f"/api/search?q={word}", other)["results"] == []


async def lecture_streamed(s: ArchiveStack, lecture1: Lecture, state: dict[str, Any]) -> Streamed:
    """The lecture the first test streamed; streamed here when that test did not run (no browser)."""
    if "streamed" not in state:
        from tests.client import stream

        pcm = lecture1.pcm[: 70 * 32000]
        ws = s.http.replace("http", "ws") + "/ws/transcribe"
        msgs = await stream(ws, pcm, {"type": "start", "owner": OWNER}, SPEED)
        sid = next(m["session"] for m in msgs if m["type"] == "session")
        state["streamed"] = Streamed(sid, msgs, len(pcm) / 32000)
    return state["streamed"]


def wait_audio(s: ArchiveStack, sid: str, timeout: float = 60) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        status, body = s.get(f"/api/sessions/{sid}/audio", HEADERS)
        if status == 200:
            return body
        assert status == 409 and time.monotonic() < deadline, (status, body[:200])
        time.sleep(0.2)  # polling for the encoded file, with a deadline


@pytest.mark.skipif(missing_browser() is not None, reason=str(missing_browser()))
async def test_the_page_searches_past_lectures_and_opens_the_moment(
    archive_stack: ArchiveStack, lecture1: Lecture, state: dict[str, Any]
) -> None:
    """In Chromium, with the owner's key in localStorage: the search box finds a word of the
    lecture (after the Redis flush: from the archive) and a hit opens the lecture at that final."""
    from playwright.async_api import expect

    streamed = await lecture_streamed(archive_stack, lecture1, state)
    target = next(f for f in finals(streamed.messages)[2:] if len(f["text"].split()) >= 4)
    word = max(target["text"].split(), key=len).strip(".,!?;:").lower()
    owner_key = f"localStorage.setItem('classrec.owner', {json.dumps(OWNER)})"
    async with open_page(
        archive_stack.http, permissions=(), before_load=lambda p: p.add_init_script(owner_key)
    ) as opened:
        page, errors = opened.page, opened.errors
        await page.click("#history summary")
        await page.fill("#search-q", word)
        await page.press("#search-q", "Enter")
        hit = page.locator(f'.search-hit[data-segment="{target["segment"]}"]')
        await expect(hit).to_be_visible(timeout=20_000)
        await expect(hit.locator("mark").first).to_be_visible()
        await hit.click()
        seg = page.locator(f'#history-view .history-seg[data-segment="{target["segment"]}"]')
        await expect(seg).to_have_class(re.compile(r"\bhighlight\b"), timeout=10_000)
        assert (await seg.locator(".text").inner_text()).split() == target["text"].split()
        assert not errors, errors
