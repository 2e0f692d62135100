"""Redis holds what is in flight, not history: acknowledged entries leave the work streams, and
consumers that are gone leave their groups (real Redis; the whole stack for the end-to-end cases)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from shared import keys
from shared.housekeeping import done_before, forget_gone_consumers, leave_group, trim_acknowledged
from tests.client import stream
from tests.faults_util import Client, Cluster, start_cluster, wait_for
from tests.util import Lecture

S = "housekeeping:test"


@pytest.fixture
async def ids(r: aioredis.Redis) -> list[bytes]:
    await r.delete(S)
    return [await r.xadd(S, {"n": str(n)}) for n in range(6)]


async def ids_left(r: aioredis.Redis) -> list[bytes]:
    return [e[0] for e in await r.xrange(S)]


async def test_a_stream_nobody_reads_keeps_everything(r: aioredis.Redis, ids: list[bytes]) -> None:
    assert await done_before(r, S) is None
    assert await trim_acknowledged(r, S) == 0 and await ids_left(r) == ids


async def test_entries_go_once_every_group_is_done(r: aioredis.Redis, ids: list[bytes]) -> None:
    await r.xgroup_create(S, "a", id="0")
    await r.xgroup_create(S, "b", id="0")
    got = await r.xreadgroup("a", "a1", {S: ">"}, count=4)  # a: 0..3 delivered
    await r.xack(S, "a", *[e[0] for e in got[0][1][:2]])  # a: 0, 1 acknowledged; 2, 3 pending
    await r.xreadgroup("b", "b1", {S: ">"}, count=2)
    await r.xack(S, "b", ids[0], ids[1])  # b: done with 0 and 1, has read nothing more
    assert await trim_acknowledged(r, S) == 2 and await ids_left(r) == ids[2:]
    # b reads on and acknowledges everything; a's pending 2 still holds the stream there
    await r.xreadgroup("b", "b1", {S: ">"}, count=10)
    await r.xack(S, "b", *ids[2:])
    assert await trim_acknowledged(r, S) == 0 and await ids_left(r) == ids[2:]
    await r.xack(S, "a", ids[2])
    assert await trim_acknowledged(r, S) == 1 and await ids_left(r) == ids[3:]
    # an entry delivered to nobody yet is never trimmed
    rest = await r.xreadgroup("a", "a1", {S: ">"}, count=10)
    await r.xack(S, "a", ids[3], *[e[0] for e in rest[0][1]])
    assert await trim_acknowledged(r, S) == 3 and await ids_left(r) == []
    new = await r.xadd(S, {"n": "6"})
    assert await trim_acknowledged(r, S) == 0 and await ids_left(r) == [new]


async def test_consumers_that_hold_nothing_leave(r: aioredis.Redis, ids: list[bytes]) -> None:
    await r.xgroup_create(S, "g", id="0")
    await r.xreadgroup("g", "busy", {S: ">"}, count=1)  # holds one entry
    await r.xreadgroup("g", "done", {S: ">"}, count=1)
    await r.xack(S, "g", ids[1])
    await r.xgroup_createconsumer(S, "g", "me")
    assert await forget_gone_consumers(r, S, "g", idle_ms=-1, keep="me") == ["done"]
    names = sorted(c["name"] for c in await r.xinfo_consumers(S, "g"))
    assert names == [b"busy", b"me"]
    assert not await leave_group(r, S, "g", "busy")  # its entry stays, to be reclaimed
    assert await leave_group(r, S, "g", "me")
    assert [c["name"] for c in await r.xinfo_consumers(S, "g")] == [b"busy"]


@pytest.mark.slow
async def test_after_a_lecture_the_work_streams_are_empty_and_restarts_leave_no_consumer(
    tmp_path: Path, lecture1: Lecture
) -> None:
    c = start_cluster(tmp_path)
    try:
        got = await stream(c.ws, lecture1.pcm[: 20 * 32000], start={"type": "start", "language": "en"})
        assert got[-1] == {"type": "end"} and any(m["type"] == "transcript" and m["final"] for m in got)
        work = keys.WORK_STREAMS

        def lengths() -> dict[str, int]:
            return {s: c.r.xlen(s) for s in work}

        wait_for(lambda: not any(lengths().values()), 15, f"empty work streams, have {lengths()}")
        for name in ("transcriber-1", "alerts"):
            old = c.consumer(name)
            c.stop(name)
            c.start(name)
            c.wait_ready(name)
            group = keys.TRANSCRIBER_GROUP if name.startswith("transcriber") else keys.ALERTS_GROUP
            stream_name = keys.SEGMENTS if group == keys.TRANSCRIBER_GROUP else keys.TRANSCRIPTS
            consumers = [x["name"].decode() for x in c.r.xinfo_consumers(stream_name, group)]
            assert old not in consumers and c.consumer(name) in consumers, consumers
    finally:
        c.close()


@pytest.mark.slow
async def test_partials_waiting_for_a_transcriber_are_bounded(tmp_path: Path, lecture1: Lecture) -> None:
    """No transcriber runs: the VAD's partials (each the whole utterance so far) keep only the newest."""
    c = Cluster(tmp_path, PARTIALS_MAXLEN="5")
    client = Client(c.ws)
    try:
        c.start_redis()
        c.start("gateway", "vad")
        c.wait_ready("gateway", "vad")
        await client.connect({"type": "start", "language": "en"})
        await client.send_audio(lecture1.pcm[: 40 * 32000], speed=2)  # paced: the VAD sees utterances grow

        def added() -> int:
            return int(c.r.xinfo_stream(keys.PARTIALS)["entries-added"]) if c.r.exists(keys.PARTIALS) else 0

        await asyncio.to_thread(wait_for, lambda: added() >= 12, 60, "a dozen partials from the VAD")
        assert c.r.xlen(keys.PARTIALS) <= 5
    finally:
        await client.disconnect()
        c.close()
