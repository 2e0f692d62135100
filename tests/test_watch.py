"""`python -m services.watch` against a real Redis: figures of streams and groups, the table, --follow."""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
import redis
import redis.asyncio as aioredis

from services.watch.figures import snapshot
from services.watch.follow import describe, follow_line
from services.watch.render import Rates, redact, render
from shared.messages import (
    AlertEvent,
    AudioChunk,
    Msg,
    SegmentJob,
    SessionConfig,
    TranscriptEvent,
    TranscriptRecord,
    to_fields,
)
from shared.settings import CommonSettings
from shared.streams import ensure_group, xadd
from tests.util import ROOT

DB = 9  # a database of its own: the other tests' streams do not show up here
PCM = b"\x01\x7f" * 1600  # 3200 bytes = 1600 samples = 100 ms at 16 kHz


@pytest.fixture
def url(redis_url: str) -> Iterator[str]:
    u = redis_url.rsplit("/", 1)[0] + f"/{DB}"
    r = redis.Redis.from_url(u)
    r.flushdb()
    yield u
    r.flushdb()
    r.close()


@pytest.fixture
async def ar(url: str) -> AsyncIterator[aioredis.Redis]:
    r = aioredis.Redis.from_url(url)
    yield r
    await r.aclose()


def job(sid: str, n: int) -> SegmentJob:
    return SegmentJob(sid=sid, segment=n, start=n, end=n + 0.1, config=SessionConfig(), pcm=PCM)


async def fill(r: aioredis.Redis, s: CommonSettings) -> None:
    """segments: 5 jobs, group transcriber read 3 (1 acked), group idle read none; audio of two sessions."""
    for n in range(5):
        await xadd(r, s.segments_stream, job("s1", n), s.stream_maxlen)
    await ensure_group(r, s.segments_stream, "transcriber")
    await ensure_group(r, s.segments_stream, "idle")
    got = await r.xreadgroup("transcriber", "t1", {s.segments_stream: ">"}, count=3)
    await r.xack(s.segments_stream, "transcriber", got[0][1][0][0])
    for sid, chunks in (("s1", 4), ("s2", 2)):
        for seq in range(chunks):
            await xadd(r, s.audio_key(sid), AudioChunk(seq=seq, pcm=PCM), s.stream_maxlen)
        await ensure_group(r, s.audio_key(sid), "vad")
    await r.xreadgroup("vad", "v1", {s.audio_key("s1"): ">"}, count=1)
    event = TranscriptEvent(segment=0, start=0, end=1, text="hello", final=True)
    await xadd(r, s.events_key("s1"), event, s.stream_maxlen)


async def test_snapshot_figures(url: str, ar: aioredis.Redis) -> None:
    s = CommonSettings(redis_url=url)
    await fill(ar, s)
    with redis.Redis.from_url(url) as r:
        snap = snapshot(r, s)
    assert [x.key for x in snap.streams] == ["segments"]
    seg = snap.streams[0]
    assert seg.length == 5 and seg.entries_added == 5
    groups = {g.name: g for g in seg.groups}
    assert (groups["transcriber"].lag, groups["transcriber"].pending, groups["transcriber"].entries_read) == (
        2,
        2,
        3,
    )
    assert [(c.name, c.pending) for c in groups["transcriber"].consumers] == [("t1", 2)]
    assert groups["transcriber"].consumers[0].idle_ms >= 0
    assert (groups["idle"].lag, groups["idle"].pending, groups["idle"].consumers) == (5, 0, [])
    audio, events = snap.prefixes
    assert audio.prefix == "audio:" and [(x.key, x.length) for x in audio.streams] == [
        ("audio:s1", 4),
        ("audio:s2", 2),
    ]
    vad = audio.streams[0].groups[0]
    assert (vad.name, vad.lag, vad.pending, vad.consumers[0].name) == ("vad", 3, 1, "v1")
    assert audio.length == 6 and sorted(audio.groups()) == ["vad"]
    assert [x.key for x in events.streams] == ["events:s1"] and events.streams[0].entries_added == 1


async def test_render_and_rates(url: str, ar: aioredis.Redis) -> None:
    s = CommonSettings(redis_url=url)
    await fill(ar, s)
    with redis.Redis.from_url(url) as r:
        first = snapshot(r, s)
        await ar.xreadgroup("transcriber", "t2", {s.segments_stream: ">"}, count=2)
        for n in range(5, 8):
            await xadd(ar, s.segments_stream, job("s1", n), s.stream_maxlen)
        second = snapshot(r, s)
    rates = Rates.between(second, first)
    assert rates is not None
    seg = second.streams[0]
    assert rates.stream(seg) == pytest.approx(3 / rates.dt)
    assert rates.group(seg, seg.groups[1]) == pytest.approx(2 / rates.dt)
    assert seg.groups[1].name == "transcriber"
    text = render(second, first, url)
    for name in (
        "segments",
        "group transcriber",
        "t1",
        "t2",
        "group idle",
        "audio:*  (2 streams)",
        "audio:s1",
    ):
        assert name in text
    assert "events:*  (1 stream)" in text
    assert "MSG/S" in render(first)


def watch_once(redis_url: str) -> subprocess.CompletedProcess[str]:
    """`python -m services.watch --once` on `redis_url`, its output captured."""
    env = {**os.environ, "REDIS_URL": redis_url}
    cmd = [sys.executable, "-m", "services.watch", "--once"]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)


def test_once_prints_streams_and_groups(url: str) -> None:
    asyncio.run(with_redis(url, fill))
    out = watch_once(url)
    assert out.returncode == 0, out.stderr
    for name in (
        "segments",
        "group transcriber",
        "t1",
        "group idle",
        "audio:*  (2 streams)",
        "group vad",
        "events:*",
    ):
        assert name in out.stdout
    assert "\x1b[" not in out.stdout, "no ANSI codes when stdout is not a terminal"


async def with_redis(url: str, write: Callable[[aioredis.Redis, CommonSettings], Awaitable[None]]) -> None:
    """Run `write` on a client of its own (for the synchronous tests that drive a subprocess)."""
    r = aioredis.Redis.from_url(url)
    try:
        await write(r, CommonSettings(redis_url=url))
    finally:
        await r.aclose()


def test_once_without_redis_fails_cleanly() -> None:
    out = watch_once("redis://127.0.0.1:1/0")
    assert out.returncode == 1 and "redis unreachable" in out.stderr and "Traceback" not in out.stderr


def as_read(msg: Msg) -> dict[bytes, bytes]:
    """The fields of an entry as redis-py returns them: bytes."""
    return {k.encode(): v.encode() if isinstance(v, str) else v for k, v in to_fields(msg).items()}


def test_describe_audio_shows_size_and_duration_not_bytes() -> None:
    line = describe(AudioChunk(seq=7, pcm=PCM))
    assert "3200 B" in line and "100 ms" in line and "seq=7" in line
    assert "\\x" not in line and "b'" not in line and "\x7f" not in line
    entry = follow_line("audio:s1", b"1700000000000-0", as_read(AudioChunk(seq=7, pcm=PCM)), None)
    assert entry is not None and "3200 B" in entry and "\\x" not in entry


def test_describe_key_fields() -> None:
    t = describe(
        TranscriptEvent(segment=3, start=1.0, end=2.5, text="exam on friday", final=False, stable="exam")
    )
    assert t.startswith("transcript") and "seg=3" in t and "partial" in t and '"exam on friday"' in t
    a = describe(AlertEvent(segment=3, start=1.0, category="exam", text="exam on friday", date="2025-05-02"))
    assert "alert" in a and "exam" in a and "date=2025-05-02" in a
    j = describe(job("s1", 2))
    assert "seg=2 final" in j and "3200 B 100 ms" in j and "\\x" not in j
    rec = TranscriptRecord(
        sid="s1",
        transcript=TranscriptEvent(segment=1, start=0, end=1, text="hi", final=True),
        config=SessionConfig(),
    )
    assert follow_line("transcripts", b"1-0", as_read(rec), "other") is None
    assert '"hi"' in (follow_line("transcripts", b"1-0", as_read(rec), "s1") or "")
    assert redact("redis://:secret@host:6379/0") == "redis://:***@host:6379/0"


def read_lines(proc: subprocess.Popen) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def wait_line(lines: queue.Queue[str], needle: str, deadline: float, seen: list[str]) -> str:
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no line with {needle!r} in time; got {seen}")
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            continue
        seen.append(line)
        if needle in line:
            return line


FINAL = TranscriptEvent(segment=4, start=2.0, end=3.5, text="the exam is on friday", final=True)


async def before_follow(r: aioredis.Redis, s: CommonSettings) -> None:
    await xadd(
        r, s.events_key("s1"), TranscriptEvent(segment=0, start=0, end=1, text="before", final=True), 1000
    )


async def during_follow(r: aioredis.Redis, s: CommonSettings) -> None:
    """A final and audio of s1, and a transcript record of s2 then one of s1 on the shared stream."""
    await xadd(r, s.events_key("s1"), FINAL, 1000)
    await xadd(r, s.audio_key("s1"), AudioChunk(seq=1, pcm=PCM), 1000)
    other = FINAL.model_copy(update={"text": "not mine"})
    await xadd(
        r, s.transcripts_stream, TranscriptRecord(sid="s2", transcript=other, config=SessionConfig()), 1000
    )
    await xadd(
        r, s.transcripts_stream, TranscriptRecord(sid="s1", transcript=FINAL, config=SessionConfig()), 1000
    )


def test_follow_shows_a_session_as_it_passes(url: str) -> None:
    asyncio.run(with_redis(url, before_follow))
    env = {**os.environ, "REDIS_URL": url, "BLOCK_MS": "200"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.watch", "--follow", "s1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        lines, seen, deadline = read_lines(proc), [], time.monotonic() + 30
        wait_line(lines, "following sid=s1", deadline, seen)
        asyncio.run(with_redis(url, during_follow))
        line = wait_line(lines, " events ", deadline, seen)
        assert "transcript seg=4 final" in line and '"the exam is on friday"' in line
        audio = wait_line(lines, " audio ", deadline, seen)
        assert "audio seq=1 3200 B 100 ms" in audio and "\\x" not in audio
        record = wait_line(lines, "transcript_record", deadline, seen)
        assert '"the exam is on friday"' in record
        assert not any("before" in x or "not mine" in x for x in seen), "only new entries, only this session"
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
