"""The VAD worker closes the open utterance where a `SentenceCut` in the session's audio stream says
(real Redis, real Silero, the run-on lecture): the segment ends in the pause after the sentence, the
next one starts where it ends, every sample is in exactly one segment, partials of the rest go on,
a repeated or late request changes nothing, and another replica taking the session over from its
checkpoint (before or after the cut) writes exactly the segments one worker alone writes."""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Awaitable, Callable

import numpy as np
import pytest
import redis.asyncio as aioredis

from services.vad.worker import VadWorker
from shared import keys
from shared.messages import (
    AudioChunk,
    AudioStop,
    SegmentJob,
    SentenceCut,
    SessionConfig,
    SessionOpened,
    VadDone,
    from_fields,
)
from shared.settings import VadSettings
from shared.streams import xadd
from testkit.truth import read_wav
from tests.util import DATA

SR = 16000
FRAME = 1600  # 0.1 s entries, as the gateway writes them
END_1 = 6.149  # runon1: "Proteins fold ... can do." ends; the next sentence starts at 6.275
NEXT_1 = 6.275


@pytest.fixture(scope="module")
def audio() -> np.ndarray:
    return read_wav(DATA / "runon1.wav")[: 12 * SR]


def settings(redis_url: str) -> VadSettings:
    return VadSettings(
        redis_url=redis_url,
        sessions_stream="sessions:sc",
        segments_stream="segments:sc",
        partials_stream="segments:partial:sc",
        transcripts_stream="transcripts:sc",
        audio_prefix="audio:sc:",
        keep_audio=False,
        block_ms=5,
        vad_lease_s=30,
        vad_short_pauses=[],  # the cut alone closes the paragraph's utterance (not its short pauses)
    )


async def feed(r: aioredis.Redis, s: VadSettings, sid: str, pcm: np.ndarray, seq: int) -> int:
    for i in range(0, len(pcm), FRAME):
        await xadd(r, s.audio_key(sid), AudioChunk(seq=seq, pcm=pcm[i : i + FRAME].tobytes()), 100_000)
        seq += 1
    return seq


async def run_until(w: VadWorker, done: Callable[[], bool | Awaitable[bool]]) -> None:
    """Turn the worker's loop until `done` holds (a bounded number of turns, no sleeping)."""
    for _ in range(2000):
        got = done()
        if await got if inspect.isawaitable(got) else got:
            return
        await w.run_once()
    raise AssertionError("the worker did not get there")


def heard(w: VadWorker, sid: str, samples: int) -> Callable[[], bool]:
    return lambda: sid in w.sessions and w.sessions[sid].samples >= samples


def ended(r: aioredis.Redis, s: VadSettings, sid: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return any(isinstance(m, VadDone) for m in await written(r, s.transcripts_stream, sid))

    return check


async def written(r: aioredis.Redis, stream: str, sid: str) -> list:
    return [m for _, f in await r.xrange(stream) if getattr(m := from_fields(f), "sid", None) == sid]


async def start(r: aioredis.Redis, s: VadSettings, sid: str) -> None:
    await xadd(r, s.sessions_stream, SessionOpened(sid=sid, config=SessionConfig()), 1000)


def cut(sid: str, segment: int = 0, at: float = END_1) -> SentenceCut:
    return SentenceCut(sid=sid, segment=segment, rev=3, at=at)


async def alone(r: aioredis.Redis, s: VadSettings, sid: str, audio: np.ndarray) -> list[SegmentJob]:
    """One worker, start to end: 9 s of audio, the cut, a repeat of it, the rest, the stop."""
    w = VadWorker(s, r, consumer=f"vad-{sid}")
    await start(r, s, sid)
    seq = await feed(r, s, sid, audio[: 9 * SR], 0)
    await xadd(r, s.audio_key(sid), cut(sid), 1000)
    await xadd(r, s.audio_key(sid), cut(sid), 1000)  # a repeat: segment 0 is closed by then
    seq = await feed(r, s, sid, audio[9 * SR :], seq)
    await xadd(r, s.audio_key(sid), AudioStop(seq=seq), 1000)
    await run_until(w, ended(r, s, sid))
    return [m for m in await written(r, s.segments_stream, sid) if isinstance(m, SegmentJob)]


async def test_cut_closes_the_segment_in_the_pause_and_loses_nothing(
    redis_url: str, audio: np.ndarray
) -> None:
    s = settings(redis_url)
    r = aioredis.Redis.from_url(redis_url)
    finals = await alone(r, s, "sc-a", audio)
    assert [f.segment for f in finals] == list(range(len(finals))) and len(finals) >= 2
    first, second = finals[0], finals[1]
    assert END_1 - 0.02 <= first.end <= NEXT_1 + 0.02, "closed in the pause after the sentence"
    assert second.start == first.end
    pcm = [np.frombuffer(f.pcm, np.int16) for f in finals]
    begin, stop = round(first.start * SR), round(finals[-1].end * SR)
    contiguous = all(a.end == b.start for a, b in itertools.pairwise(finals))
    if contiguous:  # nothing lost, nothing twice between the first and the last
        assert np.array_equal(np.concatenate(pcm), audio[begin:stop])
    else:
        assert np.array_equal(np.concatenate(pcm[:2]), audio[begin : round(second.end * SR)])
    partials = [m for m in await written(r, s.partials_stream, "sc-a") if isinstance(m, SegmentJob)]
    assert any(p.segment == 1 and p.start == first.end for p in partials), "partials of the rest go on"
    done = [m for m in await written(r, s.transcripts_stream, "sc-a") if isinstance(m, VadDone)]
    assert [d.segments for d in done] == [len(finals)]
    state = await r.hget(keys.partials("sc-a"), "0")
    assert state == b"final"


async def test_a_cut_after_the_segment_closed_or_past_the_audio_is_ignored(
    redis_url: str, audio: np.ndarray
) -> None:
    s = settings(redis_url)
    r = aioredis.Redis.from_url(redis_url)
    w = VadWorker(s, r, consumer="vad-sc-b")
    await start(r, s, "sc-b")
    await feed(r, s, "sc-b", audio[: 8 * SR], 0)
    await run_until(w, heard(w, "sc-b", 8 * SR))
    await xadd(r, s.audio_key("sc-b"), cut("sc-b", at=11.0), 1000)  # audio the VAD does not have
    await xadd(r, s.audio_key("sc-b"), cut("sc-b", segment=4), 1000)  # not the open segment
    await feed(r, s, "sc-b", audio[8 * SR : 8 * SR + FRAME], 80)
    await run_until(w, heard(w, "sc-b", 8 * SR + FRAME))
    assert await written(r, s.segments_stream, "sc-b") == []
    assert w.sessions["sc-b"].segmenter.next_index == 0


@pytest.mark.parametrize("dies_after_s", [8, 10])
async def test_another_replica_resumes_from_the_checkpoint_and_writes_the_same(
    redis_url: str, audio: np.ndarray, dies_after_s: int
) -> None:
    """The first worker dies with the cut still ahead of it in the stream (8 s) or after it cut (10 s)."""
    s = settings(redis_url)
    r = aioredis.Redis.from_url(redis_url)
    reference = await alone(r, s, f"sc-ref-{dies_after_s}", audio)
    sid = f"sc-t-{dies_after_s}"
    a = VadWorker(s, r, consumer=f"vad-a-{sid}")
    await start(r, s, sid)
    entries = [("audio", 0, 8), ("audio", 8, 9), ("cut",), ("cut",), ("audio", 9, 10), ("audio", 10, 12)]
    seq, fed_s = 0, 0
    for e in entries:
        if e[0] == "cut":
            await xadd(r, s.audio_key(sid), cut(sid), 1000)
            continue
        seq = await feed(r, s, sid, audio[e[1] * SR : e[2] * SR], seq)
        fed_s = e[2]
        if fed_s == dies_after_s:
            await run_until(a, heard(a, sid, dies_after_s * SR))  # all fed so far, and no more
            await r.delete(keys.vad_lease(sid))  # a dies: its lease lapses; it never runs again
            b = VadWorker(s, r, consumer=f"vad-b-{sid}")
            await b.adopt_orphans()
            assert sid in b.sessions
    await xadd(r, s.audio_key(sid), AudioStop(seq=seq), 1000)
    await run_until(b, ended(r, s, sid))
    got = [m for m in await written(r, s.segments_stream, sid) if isinstance(m, SegmentJob)]
    assert [(f.segment, f.start, f.end, f.pcm) for f in got] == [
        (f.segment, f.start, f.end, f.pcm) for f in reference
    ]
    assert [m.segments for m in await written(r, s.transcripts_stream, sid) if isinstance(m, VadDone)] == [
        len(reference)
    ]
