"""The transcriber loop: reads utterances (consumer group "transcriber"), transcribes them with the
configured backend, and writes each transcript to the session's event stream and, when final, to
`transcripts` for the alerts worker, in one transaction.

Finals come from `segments`, partials (growing open utterances) from `segments:partial`. Finals are
always served first: a partial is read only when no final waits, one at a time, and it is skipped
when it is stale (a newer partial or the final of its utterance exists) or while finals are behind
(they waited past PARTIAL_SHED_WAIT_S). A transcriber takes at most its share of the finals waiting
(fairshare.py), so that every transcriber of the group gets work in a burst. Partials are stabilised with
LocalAgreement-2; the committed words are passed to the model as a prefix, so they stay put. Early
finals come with the partials: decoded as finals while the VAD waits out a pause, their results are
kept for the finals that follow (early.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

import numpy as np
import redis.asyncio as aioredis

from services.transcriber import context
from services.transcriber.agreement import Agreement
from services.transcriber.backends import Backend
from services.transcriber.early import EarlyFinals
from services.transcriber.fairshare import Queue, leave, queue
from services.transcriber.guards import drop_doubled, keep_pieces
from services.transcriber.languages import LanguageUnsupported, session_language, tell_unsupported
from services.transcriber.sentences import SentenceCuts
from services.transcriber.types import Piece, Request, Result
from shared import keys, metrics
from shared.malloc import HeapTrim
from shared.messages import SAMPLE_RATE, ErrorEvent, Msg, SegmentJob, TranscriptEvent, TranscriptRecord
from shared.service import heartbeat
from shared.settings import TranscriberSettings
from shared.streams import stage
from shared.worker import Read, StreamWorker

log = logging.getLogger(__name__)
STATE_TTL_S = 6 * 3600


def decoded_pcm(job: SegmentJob) -> bytes:
    """The int16 audio a final decodes: all of it, or the audio its early final had (`decode_len`)."""
    return job.pcm if job.decode_len is None else job.pcm[: 2 * job.decode_len]


def build_prompt(lecture_prompt: str, session_prompt: str, keywords: list[str], recent: str = "") -> str:
    """Lecture prompt, the session's own prompt and keywords, then the end of its recent text."""
    parts = [lecture_prompt.strip(), session_prompt.strip()]
    if keywords:
        parts.append("Keywords: " + ", ".join(k.strip() for k in keywords if k.strip()) + ".")
    if recent:
        parts.append(recent.strip())
    return " ".join(p for p in parts if p)


def word_times(job: SegmentJob, pieces: list[Piece]) -> list[tuple[float, float, str]]:
    """The words of a final in session seconds, within the utterance. Whisper's alignment puts the
    first word's start early (into the padding before the speech) and the last word's end short of
    the speech's end, by 0.1-0.3 s; where the VAD heard those edges, they are taken from it."""
    out = []
    for s, e, word in (w for p in pieces for w in p.words if w[2].strip()):
        start = min(job.end, job.start + max(0.0, s))
        out.append([start, max(start, min(job.end, job.start + e)), word.strip()])
    if out and job.speech_start is not None:
        out[0][0] = min(out[0][1], max(out[0][0], job.speech_start))
    if out and job.speech_end is not None:
        out[-1][1] = max(out[-1][1], min(job.end, job.speech_end))
    return [(a, b, w) for a, b, w in out]


def session_words(job: SegmentJob, pieces: list[Piece]) -> list[tuple[float, float, str]] | None:
    """The words of a final as sent (times to 10 ms), or None without word timings."""
    return [(round(a, 2), round(b, 2), w) for a, b, w in word_times(job, pieces)] or None


def timed_span(job: SegmentJob, pieces: list[Piece]) -> tuple[float, float]:
    """Session times of the first word's start and the last word's end, when the backend gave word
    timings; else the utterance's."""
    words = word_times(job, pieces)
    if not words:
        return job.start, job.end
    return round(words[0][0], 3), round(max(words[0][0], words[-1][1]), 3)


FINALS, PARTIALS = ("segments_stream",), ("partials_stream",)


class TranscriberWorker(StreamWorker[TranscriberSettings]):
    """Finals first: a non-blocking read of at most this worker's share of the waiting finals (none
    when the group's lag says none wait), topped up for at most batch_wait_ms when fewer came; only
    when no final came, a blocking read of one entry of each stream (a partial, or a final that came
    meanwhile). Finals that waited past partial_shed_wait_s shed partials for a while."""

    group = keys.TRANSCRIBER_GROUP
    reads = (
        Read(FINALS, count=lambda w, n: w.first, block=None, when=lambda w, n: w.q is None or w.q.lag != 0),
        Read(
            FINALS,
            count=lambda w, n: w.want - n,
            block=lambda w, n: w.settings.batch_wait_ms,
            when=lambda w, n: 0 < n < w.want and w.settings.batch_wait_ms > 0,
        ),
        Read(FINALS + PARTIALS, count=1, when=lambda w, n: n == 0),
    )

    def __init__(
        self, settings: TranscriberSettings, r: aioredis.Redis, backend: Backend, consumer: str | None = None
    ) -> None:
        super().__init__(settings, r, consumer)
        self.backend = backend
        self.done = {"final": 0, "partial": 0, "stale": 0, "shed": 0, "early": 0, "early_used": 0}
        self.decoded: dict[tuple[str, int], tuple[Result, float]] = {}  # finals decoded as a batch
        self.early_finals = EarlyFinals(r)  # results of early finals, for their finals (early.py)
        self.sentences = SentenceCuts(settings, r, backend)  # sentence finals (sentences.py)
        self.shed_until = 0.0  # monotonic time until which partials are shed (finals are behind)
        self.q: Queue | None = None  # this turn's view of the finals waiting (fair sharing)
        self.first = self.want = 1  # this turn: finals read at first, and wanted in all
        self.context_now = True  # this turn's finals may be decoded in context (none other waits)
        # glibc's threshold is left to grow here (shared/malloc.py): a backlog's free heap is trimmed.
        trim_mb, every_s = settings.heap_trim_mb, settings.heap_trim_every_s
        self.trim = HeapTrim(trim_mb, every_s) if trim_mb > 0 else None

    async def before_reads(self) -> None:
        """This turn's share of the waiting finals (fair sharing), or a batch each."""
        s = self.settings
        if s.fair_share:
            self.q = await queue(self.r, s.segments_stream, self.group, self.consumer)
            self.first = self.want = self.q.share(min(s.transcribe_batch, s.read_count))
        else:  # one batch each, as before fair sharing (for comparison in bench.load)
            self.q = None
            self.first, self.want = s.read_count, min(s.transcribe_batch, s.read_count)

    async def on_taken(self, stream: str, entries: list) -> None:
        """Finals taken: how long the oldest waited (a final of the last read came after the turn's
        view of the queue, so it waited nothing)."""
        if stream == self.settings.segments_stream and self.q is not None:
            self.note_wait(self.q.waited_s(entries[0][0]), len(entries), self.q)

    def note_wait(self, waited_s: float, taken: int, q: Queue) -> None:
        """The oldest final just taken waited this long: past the limit, partials are shed a while."""
        limit = self.settings.partial_shed_wait_s
        if limit <= 0 or waited_s < limit:
            return
        if time.monotonic() >= self.shed_until:
            log.info(
                "finals behind: waited_s=%.2f taken=%d lag=%s free_transcribers=%d; shedding partials for %.0fs",
                waited_s,
                taken,
                q.lag,
                q.free,
                self.settings.partial_shed_for_s,
            )
        self.shed_until = time.monotonic() + self.settings.partial_shed_for_s

    async def before_handling(self, stream: str, msgs: list[Msg]) -> None:
        """Several finals read at once: decode them in batches; `final` then finds its result."""
        self.decoded.clear()
        jobs = [m for m in msgs if isinstance(m, SegmentJob) and m.final and not m.early]
        self.context_now = self.keeping_up(len(jobs))
        if len(jobs) < 2 or self.settings.transcribe_batch < 2:
            return
        reqs = []
        for job in list(jobs):
            try:
                reqs.append(await self.request(job))
            except (ValueError, LanguageUnsupported):  # `final` deals with it alone
                jobs.remove(job)
        t0 = time.perf_counter()
        try:
            results = await self.backend.transcribe_many(reqs)
        except Exception:
            log.exception("batch of %d finals failed; decoding them one by one", len(jobs))
            return
        took = (time.perf_counter() - t0) / len(jobs)
        metrics.BATCH_SIZE.observe(len(jobs))
        for job, result in zip(jobs, results, strict=True):
            self.decoded[(job.sid, job.segment)] = (result, took)

    async def handle(self, stream: str, msg: Msg) -> None:
        if not isinstance(msg, SegmentJob):
            log.warning("unexpected message type=%s on %s", msg.type, stream)
            return
        if msg.early:
            await self.early(msg)
        elif msg.final:
            await self.final(msg)
        elif time.monotonic() < self.shed_until:
            self.done["shed"] += 1
            metrics.DROPPED_PARTIALS.inc()
        elif await self.is_current(msg):
            await self.partial(msg)
        else:
            self.done["stale"] += 1
            metrics.DROPPED_PARTIALS.inc()

    async def is_current(self, job: SegmentJob) -> bool:
        latest = await self.r.hget(self.settings.partials_key(job.sid), str(job.segment))
        return latest is not None and latest.decode() == str(job.rev)

    async def early(self, job: SegmentJob) -> None:
        """An early final (early.py): decoded as the final it may become, unless it is stale or
        finals wait (then the final is decoded when it comes, as without early finals)."""
        if not self.keeping_up(1) or not await self.is_current(job):  # keeping up: partials not shed
            metrics.EARLY_FINALS.labels("skipped").inc()
            return
        t0 = time.perf_counter()
        try:
            result = await self.backend.transcribe(await self.request(job))
        except LanguageUnsupported:  # the final tells the session
            return
        took = time.perf_counter() - t0
        await self.early_finals.keep(job, result, took)
        self.done["early"] += 1
        log.info("sid=%s seg=%d early final rev=%d took_s=%.2f", job.sid, job.segment, job.rev, took)
        metrics.EARLY_FINALS.labels("decoded").inc()

    async def request(self, job: SegmentJob, prefix: str = "") -> Request:
        pcm = decoded_pcm(job)
        audio = np.frombuffer(pcm, np.int16).astype(np.float32) / 32768.0
        recent = ""
        if self.settings.prompt_context_chars:
            recent = (await self.r.get(keys.context(job.sid)) or b"").decode()[
                -self.settings.prompt_context_chars :
            ]
        language = await session_language(
            self.r, self.backend, job, audio, self.settings.events_key(job.sid), self.settings.stream_maxlen
        )
        # The lecture prompt and hotwords are English: with speech in another language they pull the
        # text towards English, and a translation of it towards repeating them ("exam dates, exam
        # dates"), so they are given only for English speech.
        english = language in (None, "en")
        lecture = self.settings.lecture_prompt if english else ""
        prompt = build_prompt(lecture, job.config.prompt, job.config.keywords, recent)
        heard, said = None, ""
        if job.final and self.in_context(job) and not self.context_now:
            metrics.FINAL_CONTEXT.labels("behind").inc()
        elif job.final and self.in_context(job):
            seconds = context.budget_s(self.settings.final_context_s, len(audio) / SAMPLE_RATE)
            heard, said = await context.load(self.r, job.sid, job.segment, seconds)
            if heard is not None:
                metrics.FINAL_CONTEXT.labels("used").inc()
        return Request(
            audio,
            language,
            prompt,
            self.settings.hotwords if english else "",
            partial=not job.final,
            prefix=prefix,
            task=job.config.task,
            context=heard,
            context_text=said,
        )

    def keeping_up(self, finals: int) -> bool:
        """Context costs a third more of a final's CPU (README "Finals in context"): it is spent only
        while no other final waits. Behind (several finals at once, finals waiting in the group, partials
        shed) finals go without it, in batches, so that a backlog never builds on context."""
        if finals > 1 or time.monotonic() < self.shed_until:
            return False
        return self.q is None or self.q.lag is None or self.q.lag <= 1

    def in_context(self, job: SegmentJob) -> bool:
        """Finals in context for transcription only: the new words are found by aligning the text to
        the audio, and a translation's words are not the audio's."""
        return self.settings.final_context_s > 0 and job.config.task == "transcribe"

    async def decode(self, job: SegmentJob, prefix: str = "") -> tuple[list[Piece], int, float]:
        done = self.decoded.pop((job.sid, job.segment), None) if job.final else None
        if done is None and job.final and (done := await self.early_finals.take(job)) is not None:
            self.done["early_used"] += 1
            metrics.EARLY_FINALS.labels("used").inc()
        if done is not None:
            result, took = done
        else:
            t0 = time.perf_counter()
            result = await self.backend.transcribe(await self.request(job, prefix))
            took = time.perf_counter() - t0
        kind = "final" if job.final else "partial"
        metrics.TRANSCRIBE_SECONDS.labels(kind).observe(took)
        metrics.SEGMENTS.labels("transcriber", kind).inc()
        pieces = keep_pieces(
            result.pieces,
            self.settings.no_speech_threshold,
            self.settings.logprob_threshold,
            self.settings.compression_ratio_threshold,
        )
        return pieces, len(result.pieces) - len(pieces), took

    async def final(self, job: SegmentJob) -> None:
        used = self.done["early_used"]
        try:
            pieces, dropped, took = await self.decode(job)
        except LanguageUnsupported as e:  # told once; the segment is closed with no text
            await tell_unsupported(
                self.r, e, job, self.settings.events_key(job.sid), self.settings.stream_maxlen
            )
            pieces, dropped, took = [], 0, 0.0
        text = drop_doubled(" ".join(p.text.strip() for p in pieces))
        start, end = timed_span(job, pieces)
        words = session_words(job, pieces) if text else None
        event = TranscriptEvent(
            segment=job.segment, start=start, end=end, text=text, final=True, speaker=job.speaker, words=words
        )
        # Closed in a short pause: did the speaker go on? (the VAD knows 0.3 s later; this decode took
        # longer, so it almost always knows by now; not yet: taken as a pause, the old reading)
        went_on = job.continues and await self.r.hget(keys.joins(job.sid), str(job.segment)) == b"1"
        record = TranscriptRecord(sid=job.sid, transcript=event, config=job.config, continues=went_on)
        async with self.r.pipeline(transaction=True) as pipe:
            stage(pipe, self.settings.events_key(job.sid), event, self.settings.stream_maxlen)
            stage(pipe, self.settings.transcripts_stream, record, self.settings.stream_maxlen)
            pipe.hdel(keys.agreement(job.sid), str(job.segment))
            if self.in_context(job) and job.speaker != "other":
                context.save(pipe, job.sid, job.segment, decoded_pcm(job), text)
            if text and self.settings.prompt_context_chars:
                pipe.append(keys.context(job.sid), " " + text)
                pipe.expire(keys.context(job.sid), STATE_TTL_S)
            await pipe.execute()
        self.done["final"] += 1
        log.info(
            "sid=%s seg=%d final audio_s=%.2f took_s=%.2f early=%d dropped=%d text=%r",
            job.sid,
            job.segment,
            job.end - job.start,
            took,
            self.done["early_used"] - used,
            dropped,
            text,
        )

    async def partial(self, job: SegmentJob) -> None:
        key = keys.agreement(job.sid)
        raw = await self.r.hget(key, str(job.segment))
        agreement = Agreement.from_dict(json.loads(raw)) if raw else Agreement()
        try:
            pieces, _, took = await self.decode(job, prefix=agreement.prefix)
        except LanguageUnsupported:
            return
        text, stable = agreement.update(" ".join(p.text.strip() for p in pieces))
        event = TranscriptEvent(
            segment=job.segment, start=job.start, end=job.end, text=text, final=False, stable=stable
        )
        async with self.r.pipeline(transaction=True) as pipe:
            stage(pipe, self.settings.events_key(job.sid), event, self.settings.stream_maxlen)
            pipe.hset(key, str(job.segment), json.dumps(agreement.to_dict()))
            pipe.expire(key, STATE_TTL_S)
            await pipe.execute()
        self.done["partial"] += 1
        await self.sentences.after_partial(job, agreement)
        log.debug(
            "sid=%s seg=%d partial rev=%d took_s=%.2f text=%r", job.sid, job.segment, job.rev, took, text
        )

    async def on_dead(self, stream: str, msg: Msg) -> None:
        """A final that keeps failing: tell the session, and close the segment with no text."""
        if not isinstance(msg, SegmentJob) or not msg.final:
            return
        error = ErrorEvent(code="segment_failed", message=f"segment {msg.segment} could not be transcribed")
        event = TranscriptEvent(
            segment=msg.segment, start=msg.start, end=msg.end, text="", final=True, speaker=msg.speaker
        )
        record = TranscriptRecord(sid=msg.sid, transcript=event, config=msg.config)
        async with self.r.pipeline(transaction=True) as pipe:
            stage(pipe, self.settings.events_key(msg.sid), error, self.settings.stream_maxlen)
            stage(pipe, self.settings.events_key(msg.sid), event, self.settings.stream_maxlen)
            stage(pipe, self.settings.transcripts_stream, record, self.settings.stream_maxlen)
            await pipe.execute()
        log.error("sid=%s seg=%d dead-lettered; the session was told", msg.sid, msg.segment)

    async def shutdown(self) -> None:
        await super().shutdown()
        await leave(self.r, self.settings.segments_stream, self.consumer)

    async def after_batch(self) -> None:
        if self.trim is not None:
            freed = await asyncio.to_thread(self.trim)
            if freed:
                log.info("heap trimmed: %d MB were free", freed >> 20)
        info = {"backend": self.backend.name, **self.done}
        info["model"] = getattr(self.backend, "model_name", None)  # what /api/languages reports
        info["languages"] = getattr(self.backend, "languages", None)
        await heartbeat(self.r, "transcriber", self.consumer, info)
