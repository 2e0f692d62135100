"""The VAD worker loop: takes new sessions, reads their audio in order, writes utterances to `segments`.

Sessions are announced on the sessions stream (consumer group "vad": each goes to one VAD worker);
the worker then reads the session's `audio:{sid}` stream through the same group, runs streaming Silero
VAD with that session's own LSTM state, and writes every finished utterance as a `SegmentJob`.
At the client's stop it closes the open utterance and tells the gateway how many utterances there were.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import redis.asyncio as aioredis

from services.vad.segmenter import Segmenter, SegmenterConfig, Utterance
from services.vad.silero import StreamingVad, load_model
from shared.messages import (
    SAMPLE_RATE,
    AudioChunk,
    AudioStop,
    Msg,
    SegmentJob,
    SessionConfig,
    SessionOpened,
    VadDone,
    to_fields,
)
from shared.service import heartbeat
from shared.settings import VadSettings
from shared.streams import StreamWorker, xadd

log = logging.getLogger(__name__)
PARTIALS_TTL_S = 6 * 3600


@dataclass
class SessionState:
    sid: str
    config: SessionConfig
    vad: StreamingVad
    segmenter: Segmenter
    samples: int = 0
    last_audio: float = field(default_factory=time.monotonic)
    partial_end: int = 0  # session sample up to which the open utterance was last sent as a partial
    partial_rev: int = 0


class VadWorker(StreamWorker):
    group = "vad"

    def __init__(self, settings: VadSettings, r: aioredis.Redis, consumer: str | None = None) -> None:
        super().__init__(settings, r, consumer)
        self.cfg = settings
        self.model = load_model(settings.vad_model_path)
        self.seg_cfg = SegmenterConfig(
            threshold=settings.vad_threshold,
            neg_threshold=settings.vad_neg_threshold,
            min_silence_s=settings.vad_min_silence_s,
            pad_s=settings.vad_pad_s,
            min_speech_s=settings.vad_min_speech_s,
            max_utterance_s=settings.vad_max_utterance_s,
        )
        self.sessions: dict[str, SessionState] = {}

    def streams(self) -> Iterable[str]:
        yield self.cfg.sessions_stream
        for sid in self.sessions:
            yield self.cfg.audio_key(sid)

    async def handle(self, stream: str, msg: Msg) -> None:
        if isinstance(msg, SessionOpened):
            self.open(msg)
            return
        sid = stream.removeprefix(self.cfg.audio_prefix)
        state = self.sessions.get(sid)
        if state is None:
            log.warning("sid=%s audio for a session this worker does not hold; skipped", sid)
            return
        if isinstance(msg, AudioChunk):
            await self.audio(state, msg)
        elif isinstance(msg, AudioStop):
            await self.stop(state)

    def open(self, msg: SessionOpened) -> None:
        self.sessions[msg.sid] = SessionState(
            msg.sid, msg.config, StreamingVad(self.model), Segmenter(self.seg_cfg)
        )
        log.info("sid=%s session taken", msg.sid)

    async def audio(self, state: SessionState, msg: AudioChunk) -> None:
        pcm = np.frombuffer(msg.pcm, np.int16)
        state.samples += len(pcm)
        state.last_audio = time.monotonic()
        probs = state.vad.push(pcm.astype(np.float32) / 32768.0)
        for utt in state.segmenter.push(pcm, probs):
            await self.emit(state, utt)
        if self.cfg.partials:
            await self.maybe_partial(state)

    async def stop(self, state: SessionState) -> None:
        for utt in state.segmenter.flush():
            await self.emit(state, utt)
        n = state.segmenter.next_index
        await xadd(
            self.r, self.cfg.transcripts_stream, VadDone(sid=state.sid, segments=n), self.cfg.stream_maxlen
        )
        del self.sessions[state.sid]
        await self.r.delete(self.cfg.audio_key(state.sid))
        log.info("sid=%s audio ended segments=%d audio_s=%.1f", state.sid, n, state.samples / SAMPLE_RATE)

    async def emit(self, state: SessionState, utt: Utterance) -> None:
        job = self.job(state, utt.index, utt.start, utt.audio, final=True)
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.xadd(
                self.cfg.segments_stream, to_fields(job), maxlen=self.cfg.stream_maxlen, approximate=True
            )
            if self.cfg.partials:
                pipe.hset(self.cfg.partials_key(state.sid), str(utt.index), "final")
                pipe.expire(self.cfg.partials_key(state.sid), PARTIALS_TTL_S)
            await pipe.execute()
        state.partial_rev, state.partial_end = 0, 0
        log.info("sid=%s seg=%d utterance start=%.2f end=%.2f", state.sid, utt.index, job.start, job.end)

    async def maybe_partial(self, state: SessionState) -> None:
        """Send the open utterance for a partial result once it has grown by `partial_interval_s`."""
        opened = state.segmenter.open_audio()
        if opened is None:
            return
        start, audio = opened
        end = start + len(audio)
        grown = end - max(state.partial_end, start)
        if (
            grown < self.cfg.partial_interval_s * SAMPLE_RATE
            or len(audio) < self.cfg.partial_min_speech_s * SAMPLE_RATE
        ):
            return
        seg = state.segmenter.next_index
        state.partial_rev += 1
        state.partial_end = end
        job = self.job(state, seg, start, audio, final=False, rev=state.partial_rev)
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.hset(self.cfg.partials_key(state.sid), str(seg), state.partial_rev)
            pipe.expire(self.cfg.partials_key(state.sid), PARTIALS_TTL_S)
            pipe.xadd(
                self.cfg.partials_stream, to_fields(job), maxlen=self.cfg.stream_maxlen, approximate=True
            )
            await pipe.execute()

    def job(
        self, state: SessionState, index: int, start: int, audio: np.ndarray, final: bool, rev: int = 0
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

    async def after_batch(self) -> None:
        idle = [
            s for s in self.sessions.values() if time.monotonic() - s.last_audio > self.cfg.vad_idle_timeout_s
        ]
        for state in idle:  # its client is gone and nobody stopped it (e.g. the gateway died)
            log.warning(
                "sid=%s no audio for %.0fs; ending the session", state.sid, self.cfg.vad_idle_timeout_s
            )
            await self.stop(state)
        await heartbeat(self.r, "vad", self.consumer, {"sessions": len(self.sessions)})
