"""Early finals' results, kept for their finals (README "Early finals").

An early final is the open utterance as a pause of EARLY_FINAL_S would close it
(services/vad/partials.py). The transcriber that decodes it stores the result in Redis
(`keys.early(sid)`, a hash of segment -> `EarlyResult`, gone after KEEP_S), so that whichever
transcriber of the group reads the final finds it: with several idle transcribers, Redis hands the
final to the one that has waited longest, which is seldom the one that just decoded the early final.

The final takes the result when it decodes the same audio: it starts at the same sample, its speech
ends where the early one's did (speech did not resume in the pause) and it decodes as many samples
(`decode_len`). Then the final is written as soon as it is read. Otherwise it is decoded as usual.
"""

from __future__ import annotations

from dataclasses import asdict

import redis.asyncio as aioredis

from services.transcriber.types import Piece, Result
from shared import keys
from shared.messages import DecodedPiece, EarlyResult, SegmentJob

KEEP_S = 30.0  # a final comes 0.25 s after its early one; far longer means it never will


def audio_of(job: SegmentJob | EarlyResult) -> tuple:
    """What a final and its early final agree on when both decode the same audio."""
    return job.start, job.speech_start, job.speech_end, job.decode_len


class EarlyFinals:
    def __init__(self, r: aioredis.Redis) -> None:
        self.r = r

    async def keep(self, job: SegmentJob, result: Result, took: float) -> None:
        start, speech_start, speech_end, decode_len = audio_of(job)
        pieces = [DecodedPiece(**asdict(p)) for p in result.pieces]
        early = EarlyResult(
            start=start,
            speech_start=speech_start,
            speech_end=speech_end,
            decode_len=decode_len,
            took=took,
            pieces=pieces,
        )
        key = keys.early(job.sid)
        async with self.r.pipeline(transaction=False) as pipe:
            pipe.hset(key, str(job.segment), early.model_dump_json())
            pipe.pexpire(key, int(KEEP_S * 1000))
            await pipe.execute()

    async def take(self, job: SegmentJob) -> tuple[Result, float] | None:
        """The early result for this final, if there is one and it holds (see the module's doc)."""
        if job.decode_len is None:  # early finals are off at the VAD
            return None
        key, field = keys.early(job.sid), str(job.segment)
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.hget(key, field)
            pipe.hdel(key, field)
            raw, _ = await pipe.execute()
        if raw is None:
            return None
        early = EarlyResult.model_validate_json(raw)
        if audio_of(early) != audio_of(job):
            return None
        return Result([Piece(**p.model_dump()) for p in early.pieces]), early.took
