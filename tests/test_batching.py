"""The transcriber decodes finals that wait together as one batch, each still written on its own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from services.transcriber.backends import LocalBackend
from services.transcriber.worker import TranscriberWorker
from shared import keys
from shared.messages import SegmentJob, SessionConfig, TranscriptEvent, from_fields
from shared.settings import TranscriberSettings
from shared.streams import xadd
from testkit.truth import KNOWN_TEXT, read_wav
from testkit.wer import word_errors

CLIP = Path(__file__).parent / "data" / "real" / "LJ001-0009.wav"
STREAMS = {
    "segments_stream": "segments:batch",
    "partials_stream": "segments:partial:batch",
    "transcripts_stream": "transcripts:batch",
}


def batches() -> tuple[float, float]:
    count = REGISTRY.get_sample_value("classrec_transcribe_batch_size_count") or 0.0
    return count, REGISTRY.get_sample_value("classrec_transcribe_batch_size_sum") or 0.0


async def test_queued_finals_are_decoded_as_one_batch(redis_url: str) -> None:
    s = TranscriberSettings(redis_url=redis_url, block_ms=50, transcribe_batch=8, **STREAMS)
    r = aioredis.Redis.from_url(redis_url)
    pad = np.zeros(4800, np.int16)
    clip = np.concatenate([pad, read_wav(CLIP), pad])
    jobs = [
        SegmentJob(
            sid="b1", segment=0, start=0.0, end=len(clip) / 16000, config=SessionConfig(), pcm=clip.tobytes()
        ),
        SegmentJob(
            sid="b2",
            segment=0,
            start=2.0,
            end=2 + len(clip) / 16000,
            config=SessionConfig(),
            pcm=clip.tobytes(),
        ),
        SegmentJob(
            sid="b1", segment=1, start=9.0, end=13.0, config=SessionConfig(), pcm=clip[-4 * 16000 :].tobytes()
        ),
        SegmentJob(sid="b2", segment=1, start=12.0, end=13.0, config=SessionConfig(), pcm=b"\x01\x02\x03"),
    ]
    for job in jobs:
        await xadd(r, s.segments_stream, job, 1000)
    worker = TranscriberWorker(s, r, LocalBackend(s))
    before = batches()
    await worker.run_once()
    assert batches() == (before[0] + 1, before[1] + 3)  # one batch of the three decodable finals

    def finals(sid: str) -> list[TranscriptEvent]:
        return [e for e in map(from_fields, events[sid]) if isinstance(e, TranscriptEvent) and e.final]

    events = {sid: [f for _, f in await r.xrange(s.events_key(sid))] for sid in ("b1", "b2")}
    truth = KNOWN_TEXT["LJ001-0009"]
    (b1_0, b1_1), (b2_0,) = finals("b1"), finals("b2")
    assert word_errors(truth, b1_0.text).wer <= 0.1 and b1_0.text == b2_0.text
    assert 0.0 <= b1_0.start < 0.6 and 2.0 <= b2_0.start < 2.6  # word times, in each session's own time
    assert b1_1.segment == 1 and "types" in b1_1.text.lower() and 9.0 <= b1_1.start < b1_1.end <= 13.0
    # the undecodable entry is left pending for a retry (then the dead-letter stream), not lost
    assert (await r.xpending(s.segments_stream, keys.TRANSCRIBER_GROUP))["pending"] == 1
    assert len(await r.xrange(s.transcripts_stream)) == 3


def in_context() -> tuple[float, float]:
    def v(outcome: str) -> float:
        return REGISTRY.get_sample_value("classrec_final_context_total", {"outcome": outcome}) or 0.0

    return v("used"), v("behind")


async def test_context_is_spent_only_while_no_other_final_waits(redis_url: str) -> None:
    """FINAL_CONTEXT_S on: finals waiting together go in one batch without context; a final alone
    gets the earlier utterances as context."""
    s = TranscriberSettings(
        redis_url=redis_url,
        block_ms=50,
        transcribe_batch=8,
        final_context_s=20,
        **{k: v.replace("batch", "ctx") for k, v in STREAMS.items()},
    )
    r = aioredis.Redis.from_url(redis_url)
    clip = read_wav(CLIP)
    n = len(clip) / 16000

    def job(sid: str, segment: int) -> SegmentJob:
        return SegmentJob(
            sid=sid,
            segment=segment,
            start=segment * 10.0,
            end=segment * 10.0 + n,
            config=SessionConfig(),
            pcm=clip.tobytes(),
        )

    worker = TranscriberWorker(s, r, LocalBackend(s))
    start = in_context()
    for first in (job("c1", 0), job("c2", 0)):  # the first finals: nothing earlier to give
        await xadd(r, s.segments_stream, first, 1000)
        await worker.run_once()
    assert in_context() == start  # each alone, but with nothing earlier to give
    before, batched = in_context(), batches()
    for waiting in (job("c1", 1), job("c2", 1), job("c1", 2)):
        await xadd(r, s.segments_stream, waiting, 1000)
    await worker.run_once()
    after = in_context()
    assert after[0] == before[0] and after[1] == before[1] + 3  # behind: none in context
    assert batches() == (batched[0] + 1, batched[1] + 3)  # and they went as one batch
    await xadd(r, s.segments_stream, job("c2", 2), 1000)  # alone: with c2's two finals before it
    await worker.run_once()
    assert in_context() == (after[0] + 1, after[1])
    finals = [
        e for _, f in await r.xrange(s.events_key("c2")) if isinstance(e := from_fields(f), TranscriptEvent)
    ]
    texts = [e.text for e in finals if e.final and e.segment == 2]
    assert len(texts) == 1 and word_errors(KNOWN_TEXT["LJ001-0009"], texts[0]).wer <= 0.15, texts
    await r.aclose()
