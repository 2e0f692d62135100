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
