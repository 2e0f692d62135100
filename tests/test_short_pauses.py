"""Short pauses close run-on speech (VAD_SHORT_PAUSES), with real Redis, real Silero and the real
Whisper model. The run-on lecture (sentences 0.10-0.15 s apart) is cut near its sentence ends instead
of once a paragraph; each final closed in a short pause is marked `continues`, the VAD learns within
0.4 s whether the speaker went on (keys.joins), and the transcriber tells the alerts so with the
final. lecture1's real pauses close its long utterances just as early, and are known to be pauses."""

from __future__ import annotations

import numpy as np
import redis.asyncio as aioredis

from services.transcriber.backends import LocalBackend
from services.transcriber.worker import TranscriberWorker
from shared import keys
from shared.messages import SegmentJob, TranscriptRecord, from_fields
from shared.settings import TranscriberSettings
from tests.util import load_lecture
from tests.vad_util import stream_through_vad, vad_settings

SR = 16000


def finals_of(jobs: list[SegmentJob]) -> list[SegmentJob]:
    return [j for j in jobs if j.final and not j.early]


async def verdicts(r: aioredis.Redis, sid: str) -> dict[int, bool]:
    return {int(k): v == b"1" for k, v in (await r.hgetall(keys.joins(sid))).items()}


async def test_run_on_speech_is_cut_in_its_short_pauses_and_the_alerts_learn_it_went_on(
    redis_url: str,
) -> None:
    r = aioredis.Redis.from_url(redis_url)
    lecture = load_lecture("runon1")
    pcm = np.frombuffer(lecture.pcm, np.int16)[: 50 * SR]
    ends = [s["end"] for s in lecture.speech if s["end"] < 50]  # 9 sentences in 3 paragraphs
    finals = finals_of(await stream_through_vad(r, vad_settings(redis_url, "sp1"), "sp1", pcm))
    long_only = finals_of(
        await stream_through_vad(r, vad_settings(redis_url, "sp2", vad_short_pauses=[]), "sp2", pcm)
    )
    went_on = await verdicts(r, "sp1")

    assert [f.segment for f in finals] == list(range(len(finals)))
    assert len(long_only) <= 4 < len(finals)  # a final a paragraph, or one every sentence or two
    assert set(went_on) == {f.segment for f in finals if f.continues}  # each one told, no other
    assert sum(went_on.values()) >= 3
    by_segment = {f.segment: f for f in finals}
    for seg, on in went_on.items():  # speech went on: the next one starts where this one ends
        if on and seg + 1 in by_segment:
            assert by_segment[seg].end == by_segment[seg + 1].start
    # a sentence's final no longer waits for the end of its paragraph: half of them end within 1 s
    # of a final's end (sentence finals, which need the transcriber, would add to this in the stack)
    near = [e for e in ends if any(0 <= f.end - e < 1.0 for f in finals)]
    assert len(near) >= len(ends) / 2, (ends, [(f.start, f.end) for f in finals])

    # The transcriber passes on what the VAD learnt: `continues` only where the speaker went on.
    s = TranscriberSettings(
        redis_url=redis_url,
        block_ms=5,
        segments_stream="segments:sp1",
        partials_stream="segments:partial:sp1-none",  # the finals alone
        transcripts_stream="transcripts:sp1",
    )
    worker = TranscriberWorker(s, r, LocalBackend(s), consumer="sp1-t")
    while await worker.run_once():
        pass
    records = [
        m
        for _, f in await r.xrange(s.transcripts_stream)
        if isinstance(m := from_fields(f), TranscriptRecord)
    ]
    assert sorted(m.transcript.segment for m in records) == [f.segment for f in finals]
    assert {m.transcript.segment for m in records if m.continues} == {s for s, on in went_on.items() if on}
    await r.aclose()


async def test_a_real_pause_closes_as_early_and_is_known_to_be_a_pause(redis_url: str) -> None:
    r = aioredis.Redis.from_url(redis_url)
    pcm = np.frombuffer(load_lecture("lecture1").pcm, np.int16)[: 30 * SR]
    finals = finals_of(await stream_through_vad(r, vad_settings(redis_url, "sp3"), "sp3", pcm))
    long_only = finals_of(
        await stream_through_vad(r, vad_settings(redis_url, "sp4", vad_short_pauses=[]), "sp4", pcm)
    )
    assert [f.start for f in finals] == [f.start for f in long_only]  # the same utterances
    assert [f.speech_end for f in finals] == [f.speech_end for f in long_only]
    assert [f.decode_len for f in finals] == [f.decode_len for f in long_only]  # the same audio decoded
    closed_early = [f.segment for f in finals if f.continues]
    assert closed_early, "lecture1's sentences of 3 s and more close 0.1 s into their pause"
    assert await verdicts(r, "sp3") == dict.fromkeys(closed_early, False)
    await r.aclose()
