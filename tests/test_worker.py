"""The worker loop (shared/worker.py) on a real Redis: reads made in the order a worker declares, with
their counts and conditions; what one turn took from a stream handled as one batch; shutdown and
leaving the group however the loop ends."""

from __future__ import annotations

import asyncio
import secrets

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from shared.messages import AudioStop, Msg
from shared.settings import CommonSettings
from shared.streams import xadd
from shared.worker import Read, StreamWorker


def settings(redis_url: str) -> CommonSettings:
    tag = secrets.token_hex(4)
    return CommonSettings(
        redis_url=redis_url, segments_stream=f"w:{tag}:a", partials_stream=f"w:{tag}:b", block_ms=20
    )


class Recorder(StreamWorker[CommonSettings]):
    """Two of stream a, not waiting; then, only when those took nothing, one of each of a and b."""

    group = "recorder"
    reads = (
        Read(("segments_stream",), count=2, block=None),
        Read(("segments_stream", "partials_stream"), count=1, when=lambda w, n: n == 0),
    )

    def __init__(self, s: CommonSettings, r: aioredis.Redis) -> None:
        super().__init__(s, r, consumer="rec-1")
        self.batches: list[tuple[str, list[int]]] = []
        self.handled: list[tuple[str, int]] = []
        self.shut = 0

    async def before_handling(self, stream: str, msgs: list[Msg]) -> None:
        self.batches.append((stream, [m.seq for m in msgs if isinstance(m, AudioStop)]))

    async def handle(self, stream: str, msg: Msg) -> None:
        assert isinstance(msg, AudioStop)
        self.handled.append((stream, msg.seq))

    async def shutdown(self) -> None:
        self.shut += 1


async def test_reads_follow_the_declared_order(r: aioredis.Redis, redis_url: str) -> None:
    s = settings(redis_url)
    w = Recorder(s, r)
    assert w.streams() == [s.segments_stream, s.partials_stream]
    for i in range(3):
        await xadd(r, s.segments_stream, AudioStop(seq=i), 1000)
    await xadd(r, s.partials_stream, AudioStop(seq=10), 1000)

    assert await w.run_once() == 2  # the first read: two of a; the second is not made
    assert w.batches == [(s.segments_stream, [0, 1])]
    assert await w.run_once() == 1  # one of a left: the second read is not made
    assert await w.run_once() == 1  # the first took nothing: the second takes b's
    assert w.handled == [
        (s.segments_stream, 0),
        (s.segments_stream, 1),
        (s.segments_stream, 2),
        (s.partials_stream, 10),
    ]
    assert await w.run_once() == 0  # nothing left: the blocking read times out
    for stream in w.streams():
        assert (await r.xpending(stream, w.group))["pending"] == 0, "every entry acknowledged"


async def test_shutdown_and_leaving_run_when_the_loop_fails(r: aioredis.Redis, redis_url: str) -> None:
    s = settings(redis_url)
    w = Recorder(s, r)
    await xadd(r, s.segments_stream, AudioStop(seq=0), 1000)
    await w.run_once()
    assert [c["name"] for c in await r.xinfo_consumers(s.segments_stream, w.group)] == [b"rec-1"]

    async def broken() -> None:
        raise ResponseError("WRONGTYPE an error the loop does not ride out")

    w.after_batch = broken  # type: ignore[method-assign]
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await w.run(asyncio.Event())
    assert w.shut == 1
    assert await r.xinfo_consumers(s.segments_stream, w.group) == [], "it left the group, holding nothing"


async def test_shutdown_runs_when_stopped(r: aioredis.Redis, redis_url: str) -> None:
    w = Recorder(settings(redis_url), r)
    stop = asyncio.Event()

    async def stop_after_a_turn() -> None:
        stop.set()

    w.after_batch = stop_after_a_turn  # type: ignore[method-assign]
    await asyncio.wait_for(w.run(stop), 10)
    assert w.shut == 1
