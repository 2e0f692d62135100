"""Early finals (services/vad/partials.py, services/transcriber/early.py), with real Redis, real
Silero and the real Whisper model: the VAD sends each pause's utterance once, EARLY_FINAL_S into it, as the
final will be; the transcriber decodes it while the pause goes on, and the final that follows is
written from that result, while a final whose speech went on after the early one is decoded anew."""

from __future__ import annotations

import numpy as np
import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from services.transcriber.backends import LocalBackend
from services.transcriber.worker import TranscriberWorker
from shared import keys
from shared.messages import (
    TranscriptEvent,
    from_fields,
)
from shared.settings import TranscriberSettings
from shared.streams import xadd
from testkit.truth import read_wav
from testkit.wer import word_errors
from tests.util import DATA, load_lecture
from tests.vad_util import stream_through_vad, vad_settings

SR = 16000
# Every pause closes at VAD_MIN_SILENCE_S here (no short pauses): each closing pause of lecture1 is
# then one that can have its early final (a short pause closes a final as early as one is sent).
LONG_PAUSES: dict = {"vad_short_pauses": []}


@pytest.fixture(scope="module")
def lecture_start() -> np.ndarray:
    return read_wav(DATA / "lecture1.wav")[: 30 * SR]


async def test_each_pause_sends_its_utterance_once_as_the_final_will_be(
    redis_url: str, lecture_start: np.ndarray
) -> None:
    r = aioredis.Redis.from_url(redis_url)
    jobs = await stream_through_vad(r, vad_settings(redis_url, "ef1", **LONG_PAUSES), "ef1", lecture_start)
    finals = [j for j in jobs if j.final and not j.early]
    assert len(finals) >= 4
    matched = 0
    for f in finals:
        mine = [j for j in jobs if j.segment == f.segment and (j.early or not j.final)]  # VAD's partials
        early = [j for j in mine if j.early and (j.start, j.speech_end) == (f.start, f.speech_end)]
        if f is finals[-1] and not early:
            continue  # the stop may close the last one
        assert len(early) == 1, f"segment {f.segment}: {len(early)} early finals of its pause"
        e = early[0]
        assert f.pcm.startswith(e.pcm) and len(e.pcm) < len(f.pcm)
        assert f.decode_len == len(e.pcm) // 2  # the final decodes what its early final had
        assert e.speech_start == f.speech_start and e.rev == max(j.rev for j in mine)  # nothing after it
        matched += 1
        # any other early final of the segment was of a pause in which speech resumed: a newer partial
        for other in (j for j in mine if j.early and j is not e):
            assert any(j.rev > other.rev and not j.early for j in mine)
    assert matched >= len(finals) - 1
    off = await stream_through_vad(
        r, vad_settings(redis_url, "ef2", early_final_s=0, **LONG_PAUSES), "ef2", lecture_start
    )
    assert not any(j.early for j in off)
    assert [(j.start, j.end, j.pcm) for j in off if j.final] == [(f.start, f.end, f.pcm) for f in finals]


def early_count(outcome: str) -> float:
    return REGISTRY.get_sample_value("classrec_early_finals_total", {"outcome": outcome}) or 0.0


async def test_a_final_is_written_from_its_early_decode_and_only_when_it_holds(
    redis_url: str, lecture_start: np.ndarray
) -> None:
    r = aioredis.Redis.from_url(redis_url)
    jobs = await stream_through_vad(r, vad_settings(redis_url, "ef3", **LONG_PAUSES), "ef3", lecture_start)
    # The transcriber reads what the VAD wrote, in the order it came
    s = TranscriberSettings(
        redis_url=redis_url,
        block_ms=5,
        segments_stream="segments:ef3t",
        partials_stream="segments:partial:ef3t",
        transcripts_stream="transcripts:ef3t",
    )
    # Two transcribers of the group: one reads the early finals, the other the finals, which it
    # writes from the results the first stored (as with idle transcribers, see early.py).
    backend = LocalBackend(s)
    early_worker = TranscriberWorker(s, r, backend, consumer="ef3-early")
    worker = TranscriberWorker(s, r, backend, consumer="ef3-final")
    used0, decoded0 = early_count("used"), early_count("decoded")
    spoiled = next(j for j in jobs if j.final and not j.early)  # its final's speech "went on"
    for job in (j for j in jobs if j.final):  # finals and early finals (partials would only cost time)
        if not job.early:
            if job is spoiled:
                job.speech_end = round(job.speech_end + 0.1, 3)  # type: ignore[operator]
            await r.hset(s.partials_key(job.sid), str(job.segment), "final")
            await xadd(r, s.segments_stream, job, 1000)
        else:
            await r.hset(s.partials_key(job.sid), str(job.segment), job.rev)
            await xadd(r, s.partials_stream, job, 1000)
        while await (worker if not job.early else early_worker).run_once():
            pass
    finals = await written_finals(r, s, "ef3")
    assert [e.segment for e in finals] == sorted({j.segment for j in jobs if j.final and not j.early})
    used, decoded = early_count("used") - used0, early_count("decoded") - decoded0
    assert decoded >= used >= len(finals) - 2  # all but the spoiled one (and the stop's)
    assert worker.done["early_used"] == used and worker.done["final"] == len(finals)
    assert early_worker.done["early"] == decoded and worker.done["early"] == 0
    assert not await r.exists(keys.early("ef3"))  # each result went with its segment's final
    truth = " ".join(u["text"] for u in load_lecture("lecture1").speech if u["end"] <= 29.0)
    text = " ".join(e.text for e in finals)
    assert word_errors(truth, text).wer < 0.35, text
    # The same finals with no early final decoded in time (a burst closed each pause in one step):
    # they decode the same audio, so they are the same, to the word and its time.
    for job in (j for j in jobs if j.final and not j.early):  # one at a time, as above (not a batch)
        await xadd(r, s.segments_stream, job.model_copy(update={"sid": "ef3b"}), 1000)
        while await worker.run_once():
            pass
    alone = await written_finals(r, s, "ef3b")
    assert [(e.segment, e.text, e.start, e.end, e.words) for e in alone] == [
        (e.segment, e.text, e.start, e.end, e.words) for e in finals
    ]
    assert worker.done["early_used"] == used


async def written_finals(r: aioredis.Redis, s: TranscriberSettings, sid: str) -> list[TranscriptEvent]:
    events = (from_fields(f) for _, f in await r.xrange(s.events_key(sid)))
    return [e for e in events if isinstance(e, TranscriptEvent) and e.final]
