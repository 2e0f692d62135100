"""The transcriber loop: reads utterances from `segments` (consumer group "transcriber"), transcribes
them with the configured backend, and writes each transcript to the session's event stream and, when
final, to `transcripts` for the alerts worker, in one transaction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import numpy as np
import redis.asyncio as aioredis

from services.transcriber.backends import Backend
from services.transcriber.guards import keep_pieces
from shared.messages import Msg, SegmentJob, TranscriptEvent, TranscriptRecord, to_fields
from shared.service import heartbeat
from shared.settings import TranscriberSettings
from shared.streams import StreamWorker

log = logging.getLogger(__name__)
CONTEXT_TTL_S = 6 * 3600


def build_prompt(lecture_prompt: str, session_prompt: str, keywords: list[str], recent: str = "") -> str:
    """Lecture prompt, the session's own prompt and keywords, then the end of its recent text."""
    parts = [lecture_prompt.strip(), session_prompt.strip()]
    if keywords:
        parts.append("Keywords: " + ", ".join(k.strip() for k in keywords if k.strip()) + ".")
    if recent:
        parts.append(recent.strip())
    return " ".join(p for p in parts if p)


class TranscriberWorker(StreamWorker):
    group = "transcriber"

    def __init__(
        self, settings: TranscriberSettings, r: aioredis.Redis, backend: Backend, consumer: str | None = None
    ) -> None:
        super().__init__(settings, r, consumer)
        self.cfg = settings
        self.backend = backend
        self.done = 0

    def streams(self) -> Iterable[str]:
        return [self.cfg.segments_stream]

    async def handle(self, stream: str, msg: Msg) -> None:
        if not isinstance(msg, SegmentJob):
            log.warning("unexpected message type=%s on %s", msg.type, stream)  # type: ignore[attr-defined]
            return
        audio = np.frombuffer(msg.pcm, np.int16).astype(np.float32) / 32768.0
        recent = ""
        if self.cfg.prompt_context_chars:
            recent = (await self.r.get(self.context_key(msg.sid)) or b"").decode()[
                -self.cfg.prompt_context_chars :
            ]
        prompt = build_prompt(self.cfg.lecture_prompt, msg.config.prompt, msg.config.keywords, recent)
        t0 = time.perf_counter()
        result = await self.backend.transcribe(audio, msg.config.language, prompt, self.cfg.hotwords)
        pieces = keep_pieces(
            result.pieces,
            self.cfg.no_speech_threshold,
            self.cfg.logprob_threshold,
            self.cfg.compression_ratio_threshold,
        )
        text = " ".join(p.text.strip() for p in pieces)
        took = time.perf_counter() - t0
        event = TranscriptEvent(segment=msg.segment, start=msg.start, end=msg.end, text=text, final=msg.final)
        await self.write(msg, event, recent)
        self.done += 1
        log.info(
            "sid=%s seg=%d final=%s audio_s=%.2f took_s=%.2f dropped=%d text=%r",
            msg.sid,
            msg.segment,
            msg.final,
            len(audio) / 16000,
            took,
            len(result.pieces) - len(pieces),
            text,
        )

    def context_key(self, sid: str) -> str:
        return f"context:{sid}"

    async def write(self, job: SegmentJob, event: TranscriptEvent, recent: str) -> None:
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.xadd(self.cfg.events_key(job.sid), to_fields(event), maxlen=self.cfg.stream_maxlen)
            if job.final:
                record = TranscriptRecord(sid=job.sid, transcript=event, config=job.config)
                pipe.xadd(self.cfg.transcripts_stream, to_fields(record), maxlen=self.cfg.stream_maxlen)
                if event.text and self.cfg.prompt_context_chars:
                    ctx = (recent + " " + event.text)[-self.cfg.prompt_context_chars :]
                    pipe.set(self.context_key(job.sid), ctx, ex=CONTEXT_TTL_S)
            await pipe.execute()

    async def after_batch(self) -> None:
        info = {"backend": self.backend.name, "done": self.done}
        await heartbeat(self.r, "transcriber", self.consumer, info)
