"""What the VAD sends of an open utterance before it closes it: partials of it as it grows (for the
page and for sentence finals), and an early final once a pause has lasted EARLY_FINAL_S.

An early final is the utterance as it would close in that pause. It goes to the partials stream, as
the open segment's newest partial (its `rev`), so it is skipped like one: when the final came first,
when speech resumed and a newer partial followed, or while finals are behind. The transcriber
decodes it as the final it would be (the finals' model, in context) and keeps the result; the final
that the pause then closes reuses it if it starts and its speech ends where the early one did
(services/transcriber/early.py). Either way a final decodes only the audio its early final has
(`decode_len`: EARLY_FINAL_S of the pause, not all its padding), so the same audio gives the same
final whether or not the early decode came in time (a burst of resent audio closes a pause in one
step). So a final's decode overlaps the rest of the VAD's pause (0.4 s
less EARLY_FINAL_S) instead of starting after it. No partial is sent in a pause that had its early
final: the audio since holds no speech. Sessions with the voice lock get none: a final there may be
cut into speakers' pieces.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import redis.asyncio as aioredis

from services.vad import sentences
from services.vad.segmenter import Utterance
from shared.messages import SAMPLE_RATE, SegmentJob
from shared.settings import VadSettings
from shared.streams import stage

if TYPE_CHECKING:
    from services.vad.worker import SessionState

STATE_TTL_S = 6 * 3600


def segment_job(
    state: SessionState, index: int, start: int, audio: np.ndarray, final: bool, rev: int = 0
) -> SegmentJob:
    return SegmentJob(
        sid=state.sid,
        segment=index,
        start=round(start / SAMPLE_RATE, 3),
        end=round((start + len(audio)) / SAMPLE_RATE, 3),
        final=final,
        rev=rev,
        config=state.config,
        pcm=audio.tobytes(),
    )


async def send(r: aioredis.Redis, s: VadSettings, state: SessionState, job: SegmentJob) -> None:
    """The open segment's newest partial (or early final), which makes the ones before it stale."""
    async with r.pipeline(transaction=True) as pipe:
        pipe.hset(s.partials_key(state.sid), str(job.segment), job.rev)
        pipe.expire(s.partials_key(state.sid), STATE_TTL_S)
        # Exact: each partial is ~100 KB and the bound small (200; 5 in test_housekeeping), which
        # `~` would overshoot by up to a node of 100 entries, or not apply below one node.
        stage(pipe, s.partials_stream, job, s.partials_maxlen, exact=True)
        await pipe.execute()


async def maybe_partial(r: aioredis.Redis, s: VadSettings, state: SessionState) -> None:
    """Send the open utterance for a partial result once it has grown by `partial_interval_s`
    (or sooner when a pause begins: sentences.pause_partial)."""
    opened = state.segmenter.open_audio()
    if opened is None or in_early_pause(state):
        return
    start, audio = opened
    end = start + len(audio)
    grown = end - max(state.partial_end, start)
    if (
        grown < s.partial_interval_s * SAMPLE_RATE
        and not sentences.pause_partial(state, grown, s.sentence_finals)
    ) or len(audio) < s.partial_min_speech_s * SAMPLE_RATE:
        return
    if state.lock is not None and not state.lock.partial_ok(start, audio):
        return  # another speaker in the open utterance: no partial of it (others: drop)
    state.partial_rev += 1
    state.partial_end = end
    seg = state.index(state.segmenter.next_index)
    await send(r, s, state, segment_job(state, seg, start, audio, final=False, rev=state.partial_rev))


def decode_len(s: VadSettings, state: SessionState, utt: Utterance) -> int | None:
    """A final's samples to decode: the audio its early final has (or would have had)."""
    if s.early_final_s <= 0 or state.lock is not None or utt.speech_end is None:
        return None
    return min(len(utt.audio), state.segmenter.early_end(utt.speech_end, s.early_final_s) - utt.start)


def in_early_pause(state: SessionState) -> bool:
    seg = state.segmenter
    return seg.silence_since is not None and state.early_pause == seg.silence_since


async def maybe_early(r: aioredis.Redis, s: VadSettings, state: SessionState) -> None:
    """Send the open utterance as an early final once its pause has lasted EARLY_FINAL_S (once a
    pause)."""
    if s.early_final_s <= 0 or state.lock is not None or in_early_pause(state):
        return
    paused = state.segmenter.paused(s.early_final_s)
    if paused is None:
        return
    start, pause, audio = paused
    state.early_pause = pause
    state.partial_rev += 1
    job = segment_job(state, state.index(state.segmenter.next_index), start, audio, True, state.partial_rev)
    job.early = True
    onset = state.segmenter.onset
    job.speech_start = None if onset is None else round(onset / SAMPLE_RATE, 3)
    job.speech_end = round(pause / SAMPLE_RATE, 3)
    job.decode_len = len(audio)
    await send(r, s, state, job)
