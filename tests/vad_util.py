"""Helpers for tests that run the VAD worker on real audio through a real Redis: settings on
streams of a test's own, and live-paced streaming of a recording through one worker."""

from __future__ import annotations

from typing import Any

import numpy as np
import redis.asyncio as aioredis

from services.vad.worker import VadWorker
from shared.messages import AudioChunk, AudioStop, SegmentJob, SessionConfig, SessionOpened, from_fields
from shared.settings import VadSettings
from shared.streams import xadd

FRAME = 1600  # 0.1 s, as the gateway writes them


def vad_settings(redis_url: str, tag: str, **kw: Any) -> VadSettings:
    """VadSettings whose streams are the test's own (`tag`); `kw` overrides any field."""
    return VadSettings(
        redis_url=redis_url,
        sessions_stream=f"sessions:{tag}",
        segments_stream=f"segments:{tag}",
        partials_stream=f"segments:partial:{tag}",
        transcripts_stream=f"transcripts:{tag}",
        audio_prefix=f"audio:{tag}:",
        keep_audio=False,
        block_ms=5,
        **kw,
    )


async def stream_through_vad(
    r: aioredis.Redis, s: VadSettings, sid: str, pcm: np.ndarray
) -> list[SegmentJob]:
    """Live pacing: one 0.1 s frame, then the VAD's turns until it has heard it. Every job written
    to the finals and partials streams, in the order written."""
    w = VadWorker(s, r, consumer=f"vad-{sid}")
    await xadd(r, s.sessions_stream, SessionOpened(sid=sid, config=SessionConfig()), 1000)
    seq = 0
    for i in range(0, len(pcm), FRAME):
        await xadd(r, s.audio_key(sid), AudioChunk(seq=seq, pcm=pcm[i : i + FRAME].tobytes()), 100_000)
        seq += 1
        for _ in range(20):
            await w.run_once()
            if sid in w.sessions and w.sessions[sid].samples >= min(i + FRAME, len(pcm)):
                break
        else:
            raise AssertionError("the VAD did not hear the frame")
    await xadd(r, s.audio_key(sid), AudioStop(seq=seq), 1000)
    for _ in range(20):
        await w.run_once()
        if sid not in w.sessions:
            break
    jobs = []
    for stream in (s.segments_stream, s.partials_stream):
        jobs += [(i, m) for i, f in await r.xrange(stream) if isinstance(m := from_fields(f), SegmentJob)]
    return [m for _, m in sorted(jobs, key=lambda j: tuple(map(int, j[0].split(b"-"))))]
