"""Fair batching on a real Redis with the real model: a transcriber takes at most its share of the
finals waiting, so that a second one gets the other half of a burst; finals that waited too long
shed partials, which are acknowledged without being decoded."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import numpy as np
import pytest
import redis.asyncio as aioredis

from services.transcriber.backends import LocalBackend
from services.transcriber.fairshare import Queue, queue
from services.transcriber.worker import TranscriberWorker
from shared import keys
from shared.messages import SegmentJob, SessionConfig, TranscriptEvent, from_fields, to_fields
from shared.settings import TranscriberSettings
from shared.streams import ensure_group, xadd
from testkit.truth import KNOWN_TEXT, read_wav
from testkit.wer import word_errors
from tests.util import DATA

CLIP = DATA / "real" / "LJ001-0009.wav"  # one LJSpeech reader's sentence


def test_share_is_what_waits_divided_among_the_free() -> None:
    assert Queue(lag=16, free=1, now_s=0).share(8) == 8  # never more than a batch
    assert Queue(lag=16, free=2, now_s=0).share(8) == 8
    assert Queue(lag=8, free=2, now_s=0).share(8) == 4
    assert Queue(lag=3, free=2, now_s=0).share(8) == 2
    assert Queue(lag=1, free=4, now_s=0).share(8) == 1
    assert Queue(lag=0, free=1, now_s=0).share(8) == 1
    assert Queue(lag=None, free=2, now_s=0).share(8) == 4  # Redis cannot tell the lag: a batch, shared
    assert Queue(lag=None, free=1, now_s=0).share(8) == 8
    assert Queue(lag=5, free=1, now_s=100.0).waited_s(b"98500-0") == pytest.approx(1.5)


def settings(redis_url: str, **kw: object) -> TranscriberSettings:
    tag = uuid.uuid4().hex[:8]
    return TranscriberSettings(
        redis_url=redis_url,
        block_ms=50,
        transcribe_batch=8,
        segments_stream=f"segments:fair:{tag}",
        partials_stream=f"segments:partial:fair:{tag}",
        transcripts_stream=f"transcripts:fair:{tag}",
        **kw,
    )


@pytest.fixture(scope="module")
def backend() -> LocalBackend:
    return LocalBackend(TranscriberSettings())


@pytest.fixture
async def redis_conn(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    conn = aioredis.Redis.from_url(redis_url)
    yield conn
    await conn.aclose()


def clip_job(sid: str, segment: int, final: bool = True, rev: int = 0) -> SegmentJob:
    pad = np.zeros(4800, np.int16)
    clip = np.concatenate([pad, read_wav(CLIP), pad])
    return SegmentJob(
        sid=sid,
        segment=segment,
        start=0.0,
        end=len(clip) / 16000,
        config=SessionConfig(),
        pcm=clip.tobytes(),
        final=final,
        rev=rev,
    )


async def two_workers(
    s: TranscriberSettings, r: aioredis.Redis, backend: LocalBackend
) -> tuple[TranscriberWorker, TranscriberWorker]:
    a, b = TranscriberWorker(s, r, backend, "fair-a"), TranscriberWorker(s, r, backend, "fair-b")
    await ensure_group(r, s.segments_stream, keys.TRANSCRIBER_GROUP)
    for w in (a, b):  # both have asked: two live transcribers
        await queue(r, s.segments_stream, keys.TRANSCRIBER_GROUP, w.consumer)
    return a, b


@pytest.mark.parametrize("fair", [True, False])
async def test_a_second_transcriber_gets_half_of_a_burst(
    redis_url: str, redis_conn: aioredis.Redis, backend: LocalBackend, fair: bool
) -> None:
    s = settings(redis_url, fair_share=fair)
    a, b = await two_workers(s, redis_conn, backend)
    for i in range(8):
        await xadd(redis_conn, s.segments_stream, clip_job(f"f{i}", 0), 1000)
    q = await queue(redis_conn, s.segments_stream, keys.TRANSCRIBER_GROUP, a.consumer)
    assert q.free == 2 and q.lag in (8, None)  # None: Redis 6 has no lag
    await asyncio.gather(a.run_once(), b.run_once())
    if not fair:  # what fair sharing mends: the first worker took the whole burst, the other idled
        assert (a.done["final"], b.done["final"]) in {(8, 0), (0, 8)}
        return
    assert a.done["final"] == b.done["final"] == 4
    truth = KNOWN_TEXT["LJ001-0009"]
    for i in range(8):
        (final,) = [
            e
            for _, f in await redis_conn.xrange(s.events_key(f"f{i}"))
            if isinstance(e := from_fields(f), TranscriptEvent) and e.final
        ]
        assert word_errors(truth, final.text).wer <= 0.1
    assert (await redis_conn.xpending(s.segments_stream, keys.TRANSCRIBER_GROUP))["pending"] == 0
    assert len(await redis_conn.xrange(s.transcripts_stream)) == 8


async def test_a_busy_transcriber_leaves_the_rest_to_a_free_one(
    redis_url: str, redis_conn: aioredis.Redis, backend: LocalBackend
) -> None:
    """A transcriber holding finals is decoding them: what waits is shared among the others."""
    s = settings(redis_url)
    a, b = await two_workers(s, redis_conn, backend)
    for i in range(6):
        await xadd(redis_conn, s.segments_stream, clip_job(f"g{i}", 0), 1000)
    held = await a.fetch([s.segments_stream], 2, None)  # a holds 2 (as if decoding them)
    q = await queue(redis_conn, s.segments_stream, keys.TRANSCRIBER_GROUP, b.consumer)
    assert q.free == 1 and q.share(8) == (4 if q.lag is not None else 8)
    await b.run_once()
    assert b.done["final"] == 4
    await a.process(s.segments_stream, held[0][1])
    assert a.done["final"] == 2


async def test_finals_behind_shed_partials(
    redis_url: str, redis_conn: aioredis.Redis, backend: LocalBackend
) -> None:
    s = settings(redis_url, partial_shed_wait_s=1.0, partial_shed_for_s=30.0)
    w = TranscriberWorker(s, redis_conn, backend, "shed")
    await ensure_group(redis_conn, s.segments_stream, keys.TRANSCRIBER_GROUP)
    await ensure_group(redis_conn, s.partials_stream, keys.TRANSCRIBER_GROUP)
    # A final that has waited 5 s in the stream (its id is Redis's clock when it was added).
    secs, _ = await redis_conn.time()
    old_id = f"{(int(secs) - 5) * 1000}-0"
    await redis_conn.xadd(s.segments_stream, to_fields(clip_job("s1", 0)), id=old_id)
    partial = clip_job("s2", 0, final=False, rev=1)
    await redis_conn.hset(s.partials_key("s2"), "0", "1")  # the newest partial: not stale
    await xadd(redis_conn, s.partials_stream, partial, 1000)
    await w.run_once()  # the late final
    assert w.done["final"] == 1 and w.shed_until > time.monotonic()
    await w.run_once()  # the partial: shed, acknowledged, not decoded
    assert w.done["shed"] == 1 and w.done["partial"] == 0
    assert (await redis_conn.xpending(s.partials_stream, keys.TRANSCRIBER_GROUP))["pending"] == 0
    assert not await redis_conn.xrange(s.events_key("s2"))
    # Once finals are on time again (the window has passed), partials are decoded.
    w.shed_until = 0.0
    await xadd(redis_conn, s.segments_stream, clip_job("s1", 1), 1000)
    await w.run_once()
    assert w.done["final"] == 2 and w.shed_until == 0.0  # that final did not wait: nothing shed
    await redis_conn.hset(s.partials_key("s2"), "0", "2")
    await xadd(redis_conn, s.partials_stream, clip_job("s2", 0, final=False, rev=2), 1000)
    await w.run_once()
    assert w.done["partial"] == 1
    (event,) = [from_fields(f) for _, f in await redis_conn.xrange(s.events_key("s2"))]
    assert isinstance(event, TranscriptEvent) and not event.final and event.text
