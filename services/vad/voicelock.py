"""A session's voice lock inside the VAD worker: which speaker each utterance's pieces belong to.

Built from the enrolled voice's embedding that came with `session_opened`. The open utterance's
1-s windows are embedded as its audio grows (each window once, whether for a partial or the final)
and kept in `cache`; at the utterance's end `services.voice.lock.pieces` cuts it into speakers'
pieces. The voice, the mode and the cached windows are part of the session's checkpoint (`state`),
so a VAD replica that takes the session over goes on with the same lock.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import redis.asyncio as aioredis

from services.voice.embedder import EMBEDDING_DIM, WINDOW_SAMPLES, Embedder
from services.voice.lock import LECTURER, OTHER, LockConfig, Piece, pieces, window_starts
from shared.messages import SAMPLE_RATE, SessionConfig, TranscriptEvent, TranscriptRecord
from shared.streams import stage

if TYPE_CHECKING:
    from services.vad.segmenter import Utterance
    from services.vad.worker import SessionState

log = logging.getLogger(__name__)
LockedPiece = tuple[int, int, np.ndarray, str | None]  # segment, start sample, audio, speaker


@lru_cache(maxsize=1)
def embedder() -> Embedder:
    return Embedder()


def decode_voice(b64: str) -> np.ndarray:
    v = np.frombuffer(base64.b64decode(b64), "<f4").astype(np.float32)
    if v.shape != (EMBEDDING_DIM,):
        raise ValueError(f"a voice has {EMBEDDING_DIM} values, got {v.size}")
    return v / (np.linalg.norm(v) + 1e-12)


@dataclass
class SessionLock:
    voice: np.ndarray
    others: str  # "drop" | "label"
    cfg: LockConfig
    cache_start: int = -1  # session sample of the utterance whose windows are cached
    cache: list[np.ndarray] = field(default_factory=list)

    def windows(self, start: int, audio: np.ndarray) -> np.ndarray:
        """The embeddings of the windows of the utterance starting at `start` (audio so far)."""
        if start != self.cache_start:
            self.cache_start, self.cache = start, []
        starts = window_starts(len(audio))
        if len(starts) == 1 and len(audio) < WINDOW_SAMPLES:  # a padded window: not cached
            return embedder().at(audio, starts)
        todo = starts[len(self.cache) :]
        if todo:
            self.cache += list(embedder().at(audio, todo))
        return np.stack(self.cache[: len(starts)]) if starts else np.zeros((0, EMBEDDING_DIM), np.float32)

    def split(self, start: int, audio: np.ndarray) -> list[Piece]:
        """The finished utterance's pieces by speaker (positions relative to `start`)."""
        out = pieces(len(audio), self.windows(start, audio), self.voice, self.cfg, audio)
        self.cache_start, self.cache = -1, []
        return out

    def partial_ok(self, start: int, audio: np.ndarray) -> bool:
        """Drop mode: a partial is sent only while the open utterance is all the lecturer's."""
        if self.others != "drop":
            return True
        try:
            got = pieces(len(audio), self.windows(start, audio), self.voice, self.cfg)
        except Exception:  # fails open, as `utterance_pieces` does
            log.exception("voice lock failed on a partial; it is sent")
            return True
        return all(p.speaker == LECTURER for p in got)

    def state(self) -> dict:
        return {
            "voice": base64.b64encode(self.voice.astype("<f4").tobytes()).decode(),
            "others": self.others,
            "cache_start": self.cache_start,
            "cache": base64.b64encode(np.asarray(self.cache, "<f4").tobytes()).decode(),
        }

    @classmethod
    def restore(cls, meta: dict, cfg: LockConfig) -> SessionLock:
        cache = np.frombuffer(base64.b64decode(meta["cache"]), "<f4").reshape(-1, EMBEDDING_DIM)
        return cls(decode_voice(meta["voice"]), meta["others"], cfg, meta["cache_start"], list(cache.copy()))


def utterance_pieces(state: SessionState, utt: Utterance) -> list[LockedPiece]:
    """The utterance's segments by speaker (one, with no speaker, without a lock); counts the extra
    segments in `state.extra`."""
    seg = state.index(utt.index)
    if state.lock is None:
        return [(seg, utt.start, utt.audio, None)]
    try:
        split = state.lock.split(utt.start, utt.audio)
    except Exception:  # the lock fails open: a fault of its own never drops the lecturer's words
        log.exception("sid=%s seg=%d voice lock failed; the utterance is kept", state.sid, seg)
        split = [Piece(0, len(utt.audio), LECTURER, 0.0)]
    out: list[LockedPiece] = []
    for i, p in enumerate(split):
        out.append((seg + i, utt.start + p.start, utt.audio[p.start : p.end], p.speaker))
        log.info("sid=%s seg=%d speaker=%s score=%.3f", state.sid, seg + i, p.speaker, p.score)
    state.extra += len(out) - 1
    return out


def write_dropped(
    pipe: aioredis.client.Pipeline, cfg: Any, sid: str, config: SessionConfig, seg: int, start: int, n: int
) -> None:
    """Another speaker's piece with `others: drop`: not transcribed; an empty final closes its segment
    for the client and the alerts worker."""
    t0, t1 = round(start / SAMPLE_RATE, 3), round((start + n) / SAMPLE_RATE, 3)
    event = TranscriptEvent(segment=seg, start=t0, end=t1, text="", final=True, speaker=OTHER)
    record = TranscriptRecord(sid=sid, transcript=event, config=config)
    stage(pipe, cfg.events_key(sid), event, cfg.stream_maxlen)
    stage(pipe, cfg.transcripts_stream, record, cfg.stream_maxlen)


def config(settings: Any) -> LockConfig:
    return LockConfig(settings.voice_threshold, settings.voice_window_threshold, settings.voice_min_run)


def from_opened(msg: Any, cfg: LockConfig) -> SessionLock | None:
    """The lock of a new session (`SessionOpened` with a voiceprint), else None."""
    if not msg.voiceprint:
        return None
    try:
        return SessionLock(decode_voice(msg.voiceprint), msg.config.others, cfg)
    except ValueError as e:
        log.error("sid=%s voice lock off: bad voiceprint (%s)", msg.sid, e)
        return None
