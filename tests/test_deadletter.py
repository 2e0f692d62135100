"""An entry that keeps failing goes to the dead-letter stream, the session is told, and it can end."""

from __future__ import annotations

import redis.asyncio as aioredis

from services.alerts.worker import AlertsWorker
from services.transcriber.backends import OpenAIBackend
from services.transcriber.worker import TranscriberWorker
from shared.messages import (
    AlertsDone,
    ErrorEvent,
    SegmentJob,
    SessionConfig,
    TranscriptEvent,
    TranscriptRecord,
    VadDone,
    from_fields,
)
from shared.settings import AlertsSettings, TranscriberSettings
from shared.streams import xadd

STREAMS = {
    "segments_stream": "segments:dl",
    "partials_stream": "segments:partial:dl",
    "transcripts_stream": "transcripts:dl",
    "deadletter_stream": "deadletter:dl",
}


async def test_a_segment_that_keeps_failing_is_dead_lettered(redis_url: str) -> None:
    s = TranscriberSettings(
        redis_url=redis_url,
        claim_idle_ms=1,
        max_deliveries=2,
        block_ms=50,
        transcribe_backend="openai",
        openai_base_url="http://127.0.0.1:9/v1",
        **STREAMS,
    )
    r = aioredis.Redis.from_url(redis_url)
    # 3 bytes of PCM16 cannot be decoded: the handler fails on every delivery.
    job = SegmentJob(sid="dl1", segment=4, start=1.0, end=2.0, config=SessionConfig(), pcm=b"\x01\x02\x03")
    await xadd(r, s.segments_stream, job, 1000)
    worker = TranscriberWorker(s, r, OpenAIBackend(s))  # the backend is never reached
    for _ in range(20):
        if await r.xlen(s.deadletter_stream):
            break
        await worker.run_once(reclaim=True)  # reclaim on every turn
    [(_, dead)] = await r.xrange(s.deadletter_stream)
    assert dead[b"origin"] == s.segments_stream.encode() and b"failed 2 times" in dead[b"reason"]
    assert dead[b"pcm"] == b"\x01\x02\x03", "the entry is kept whole"
    assert (await r.xpending(s.segments_stream, "transcriber"))["pending"] == 0
    events = [from_fields(f) for _, f in await r.xrange(s.events_key("dl1"))]
    assert (
        isinstance(events[0], ErrorEvent) and events[0].code == "segment_failed" and "4" in events[0].message
    )
    assert events[1] == TranscriptEvent(segment=4, start=1.0, end=2.0, text="", final=True)

    # The alerts worker scans that empty final, so the session still ends.
    a = AlertsWorker(AlertsSettings(redis_url=redis_url, **STREAMS), r)
    for i in range(4):
        t = TranscriptEvent(segment=i, start=i, end=i + 0.5, text=f"sentence {i}", final=True)
        await xadd(
            r, s.transcripts_stream, TranscriptRecord(sid="dl1", transcript=t, config=SessionConfig()), 1000
        )
    await xadd(r, s.transcripts_stream, VadDone(sid="dl1", segments=5), 1000)
    for _ in range(5):
        await a.run_once()
    events = [from_fields(f) for _, f in await r.xrange(s.events_key("dl1"))]
    assert isinstance(events[-1], AlertsDone) and events[-1].segments == 5
    await r.aclose()
