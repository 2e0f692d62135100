"""The VAD worker loop: takes new sessions, reads their audio in order, writes utterances to `segments`.

Sessions are announced on the sessions stream (consumer group "vad": each goes to one VAD worker);
the worker then reads the session's `audio:{sid}` stream through the same group, runs streaming Silero
VAD with that session's own LSTM state, and writes every finished utterance as a `SegmentJob`.
At the client's stop it closes the open utterance and tells the gateway how many utterances there were.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

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
)
from shared.service import heartbeat
from shared.settings import VadSettings
from shared.streams import StreamWorker, xadd

log = logging.getLogger(__name__)


@dataclass
class SessionState:
    sid: str
    config: SessionConfig
    vad: StreamingVad
    segmenter: Segmenter
    samples: int = 0


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
        probs = state.vad.push(pcm.astype(np.float32) / 32768.0)
        for utt in state.segmenter.push(pcm, probs):
            await self.emit(state, utt)

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
        job = SegmentJob(
            sid=state.sid,
            segment=utt.index,
            start=round(utt.start / SAMPLE_RATE, 3),
            end=round(utt.end / SAMPLE_RATE, 3),
            final=True,
            config=state.config,
            pcm=utt.audio.tobytes(),
        )
        await xadd(self.r, self.cfg.segments_stream, job, self.cfg.stream_maxlen)
        log.info("sid=%s seg=%d utterance start=%.2f end=%.2f", state.sid, utt.index, job.start, job.end)

    async def after_batch(self) -> None:
        await heartbeat(self.r, "vad", self.consumer, {"sessions": len(self.sessions)})
