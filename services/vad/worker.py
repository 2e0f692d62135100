"""The VAD worker loop: takes sessions, reads their audio in order, writes utterances to `segments`.

New sessions come from the sessions stream (consumer group "vad"). A worker owns a session through
a lease it keeps renewing (`checkpoint.py`) and reads its `audio:{sid}` stream with XREAD from the
last entry it processed, running streaming Silero VAD with the session's own LSTM state. Each
finished utterance is written as a `SegmentJob` together with a checkpoint of the session's state;
when the owner dies its lease lapses and another replica carries on from that checkpoint. At the
client's stop (or after a long silence of its audio stream) it closes the open utterance and tells
the alerts worker how many utterances there were.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import redis.asyncio as aioredis

from services.vad import checkpoint, partials, sentences, voicelock
from services.vad.recording import Recording, finish, orphan_spools
from services.vad.segmenter import Segmenter, SegmenterConfig, Utterance
from services.vad.silero import StreamingVad, load_model
from services.vad.voicelock import LockedPiece, SessionLock
from services.voice.lock import OTHER, LockConfig
from shared import keys, metrics
from shared.messages import (
    SAMPLE_RATE,
    AudioChunk,
    AudioStop,
    Msg,
    SessionConfig,
    SessionOpened,
    VadDone,
    from_fields,
)
from shared.recordings import audio_dir
from shared.service import heartbeat
from shared.settings import VadSettings
from shared.streams import stage
from shared.worker import Read, StreamWorker

log = logging.getLogger(__name__)
STATE_TTL_S = partials.STATE_TTL_S
IDLE_CHECKPOINT_S = 1.0
JOINS_TTL_S = 120  # a verdict is read by the final's transcriber within seconds
ORPHAN_SWEEP_S = 60.0  # how often spools left by a dead worker are looked for


@dataclass
class SessionState:
    sid: str
    config: SessionConfig
    vad: StreamingVad
    segmenter: Segmenter
    last_id: str = "0-0"  # the last audio entry processed
    samples: int = 0
    partial_end: int = 0  # session sample up to which the open utterance was last sent as a partial
    partial_rev: int = 0
    last_audio: float = field(default_factory=time.monotonic)
    checkpointed: float = 0.0
    lock: SessionLock | None = None  # voice lock
    recording: Recording | None = None  # the session's audio as received (KEEP_AUDIO)
    extra: int = 0  # segments beyond one per utterance (the lock cut an utterance into speakers' pieces)
    early_pause: int | None = None  # where the pause began that had its early final (partials.py)

    def index(self, utt_index: int) -> int:
        """The segment number of the segmenter's utterance `utt_index` (its first piece)."""
        return utt_index + self.extra

    def fields(self) -> dict[str, bytes | str]:
        seg_meta, buf = self.segmenter.state()
        meta = {
            "config": self.config.model_dump(),
            "samples": self.samples,
            "partial_end": self.partial_end,
            "partial_rev": self.partial_rev,
            "segmenter": seg_meta,
            "extra": self.extra,
            **({"lock": self.lock.state()} if self.lock else {}),
        }
        return {"last_id": self.last_id, "meta": json.dumps(meta), "buf": buf, **self.vad.state()}

    @classmethod
    def restore(
        cls, sid: str, raw: dict, vad: StreamingVad, cfg: SegmenterConfig, lock_cfg: LockConfig
    ) -> SessionState:
        meta = json.loads(raw["meta"])
        vad.restore({k: raw[k] for k in ("h", "c", "context", "pending")})
        seg = Segmenter.from_state(cfg, meta["segmenter"], raw["buf"])
        lock = SessionLock.restore(meta["lock"], lock_cfg) if "lock" in meta else None
        return cls(
            sid,
            SessionConfig(**meta["config"]),
            vad,
            seg,
            raw["last_id"].decode(),
            meta["samples"],
            meta["partial_end"],
            meta["partial_rev"],
            lock=lock,
            extra=meta.get("extra", 0),
        )


class VadWorker(StreamWorker[VadSettings]):
    """Each turn: new sessions (waiting for one only while it has none), then its sessions' audio."""

    group = keys.VAD_GROUP
    reads = (Read(("sessions_stream",), block=lambda w, n: None if w.sessions else w.settings.block_ms),)

    def __init__(self, settings: VadSettings, r: aioredis.Redis, consumer: str | None = None) -> None:
        super().__init__(settings, r, consumer)
        self.model = load_model(settings.vad_model_path)
        self.seg_cfg = SegmenterConfig.from_settings(settings)
        self.lock_cfg = voicelock.config(settings)
        self.leases = checkpoint.Leases(r, self.consumer, int(settings.vad_lease_s * 1000))
        self.sessions: dict[str, SessionState] = {}
        self._last_lease_check = 0.0
        self.audio_dir = audio_dir(settings)
        self.encoding: set[asyncio.Task] = set()  # recordings being encoded once their audio ended
        self._last_sweep = 0.0

    async def handle(self, stream: str, msg: Msg) -> None:
        if isinstance(msg, SessionOpened):
            await self.open(msg)

    async def open(self, msg: SessionOpened) -> None:
        if msg.sid in self.sessions or not await self.leases.take(msg.sid):
            return  # a redelivery: this or another replica already has it
        state = SessionState(msg.sid, msg.config, StreamingVad(self.model), Segmenter(self.seg_cfg))
        state.lock = voicelock.from_opened(msg, self.lock_cfg)
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.sadd(keys.VAD_SESSIONS, msg.sid)
            self.write_checkpoint(pipe, state)
            await pipe.execute()
        self.record(state)  # after the SADD: a spool on disk is always of a session in the set
        self.sessions[msg.sid] = state
        log.info("sid=%s session taken", msg.sid)

    def record(self, state: SessionState) -> None:
        """Start (or after a takeover, carry on) keeping the session's audio, at its checkpoint."""
        if self.settings.keep_audio:
            state.recording = Recording(self.audio_dir, state.sid)
            state.recording.open_at(state.samples)

    async def read_audio(self) -> None:
        ids = {self.settings.audio_key(sid): s.last_id for sid, s in self.sessions.items()}
        resp = await self.r.xread(ids, count=self.settings.read_count, block=self.settings.block_ms)
        for key, entries in resp or []:
            await self.on_entries(key.decode().removeprefix(self.settings.audio_prefix), entries)

    async def on_entries(self, sid: str, entries: list) -> None:
        """A session's entries of one read, in order. Consecutive audio frames go through the VAD
        together: one model call for several frames when the worker is busy and they pile up."""
        frames: list[np.ndarray] = []
        last_id = ""
        for entry_id, fields in entries:
            state = self.sessions.get(sid)
            if state is None:
                return  # stopped, or its lease was lost
            try:
                msg = from_fields(fields)
            except ValueError as e:
                log.error("sid=%s malformed audio entry skipped: %s", sid, e)
                msg = None
            if isinstance(msg, AudioChunk):
                frames.append(np.frombuffer(msg.pcm, np.int16))
                last_id = entry_id.decode()
                continue
            if frames:
                await self.on_audio(state, last_id, np.concatenate(frames))
                frames = []
            state.last_id = entry_id.decode()
            if isinstance(msg, AudioStop):
                await self.stop(state)
            elif utts := sentences.apply_cut(state, msg):  # a sentence ended (sentences.py)
                await self.emit(state, utts)
        state = self.sessions.get(sid)
        if frames and state is not None:
            await self.on_audio(state, last_id, np.concatenate(frames))

    async def on_audio(self, state: SessionState, last_id: str, pcm: np.ndarray) -> None:
        if state.recording is not None:
            state.recording.append(pcm)
        state.samples += len(pcm)
        state.last_audio = time.monotonic()
        utts = state.segmenter.push(pcm, state.vad.push(pcm.astype(np.float32) / 32768.0))
        state.last_id = last_id
        if (
            utts
            or state.segmenter.joins
            or (
                state.segmenter.utt_start is None
                and time.monotonic() - state.checkpointed > IDLE_CHECKPOINT_S
            )
        ):
            await self.emit(state, utts)
        await partials.maybe_early(self.r, self.settings, state)
        if self.settings.partials and state.config.partials:
            await partials.maybe_partial(self.r, self.settings, state)

    def write_checkpoint(self, pipe: aioredis.client.Pipeline, state: SessionState) -> None:
        if state.recording is not None:
            state.recording.flush()  # the spool holds the checkpoint's `samples`, at least
        key = keys.vad_state(state.sid)
        pipe.hset(key, mapping=state.fields())
        pipe.expire(key, STATE_TTL_S)
        if state.last_id != "0-0":  # audio before the checkpoint is no longer needed
            pipe.xtrim(self.settings.audio_key(state.sid), minid=state.last_id, approximate=True)
        state.checkpointed = time.monotonic()

    async def emit(self, state: SessionState, utts: list[Utterance], done: bool = False) -> None:
        """Write the utterances and the state after them in one transaction."""
        async with self.r.pipeline(transaction=True) as pipe:
            for utt in utts:
                for piece in voicelock.utterance_pieces(state, utt):
                    self.write_final(pipe, state, piece, utt)
            if joins := state.segmenter.take_joins():
                # the segment of each one's last piece (the voice lock may have cut it into several)
                went_on = {str(state.index(i + 1) - 1): int(on) for i, on in joins}
                pipe.hset(keys.joins(state.sid), mapping=went_on)
                pipe.expire(keys.joins(state.sid), JOINS_TTL_S)
            if done:
                n = state.index(state.segmenter.next_index)
                stage(
                    pipe,
                    self.settings.transcripts_stream,
                    VadDone(sid=state.sid, segments=n),
                    self.settings.stream_maxlen,
                )
                pipe.srem(keys.VAD_SESSIONS, state.sid)
                pipe.delete(keys.vad_state(state.sid), self.settings.audio_key(state.sid))
            else:
                self.write_checkpoint(pipe, state)
            await pipe.execute()
        for utt in utts:
            metrics.SEGMENTS.labels("vad", "final").inc()
            state.partial_rev, state.partial_end = 0, 0
            log.info(
                "sid=%s seg=%d utterance start=%.2f end=%.2f",
                state.sid,
                utt.index,
                utt.start / SAMPLE_RATE,
                utt.end / SAMPLE_RATE,
            )

    def write_final(
        self, pipe: aioredis.client.Pipeline, state: SessionState, piece: LockedPiece, utt: Utterance
    ) -> None:
        """A final to transcribe; or, for another speaker with `others: drop`, its empty final."""
        seg, start, audio, speaker = piece
        if speaker == OTHER and state.config.others == "drop":
            voicelock.write_dropped(pipe, self.settings, state.sid, state.config, seg, start, len(audio))
        else:
            job = partials.segment_job(state, seg, start, audio, final=True)
            job.speaker = speaker  # type: ignore[assignment]
            job.decode_len = partials.decode_len(self.settings, state, utt)
            # The utterance's speech edges, where they fall inside this piece of it.
            end = start + len(audio)
            if utt.speech_start is not None and start <= utt.speech_start < end:
                job.speech_start = round(utt.speech_start / SAMPLE_RATE, 3)
            if utt.speech_end is not None and start < utt.speech_end <= end:
                job.speech_end = round(utt.speech_end / SAMPLE_RATE, 3)
            job.continues = utt.continues and end == utt.end
            stage(pipe, self.settings.segments_stream, job, self.settings.stream_maxlen)
        pipe.hset(self.settings.partials_key(state.sid), str(seg), "final")
        pipe.expire(self.settings.partials_key(state.sid), STATE_TTL_S)

    async def stop(self, state: SessionState) -> None:
        await self.emit(state, state.segmenter.flush(), done=True)
        del self.sessions[state.sid]
        await self.leases.release(state.sid)
        if state.recording is not None:
            state.recording.close()
            rec = state.recording
            self.encode_later(rec.spool, rec.opus, state.sid)
        log.info(
            "sid=%s audio ended segments=%d audio_s=%.1f",
            state.sid,
            state.index(state.segmenter.next_index),
            state.samples / SAMPLE_RATE,
        )

    async def after_batch(self) -> None:
        if self.sessions:
            await self.read_audio()
        now = time.monotonic()
        if now - self._last_lease_check >= self.settings.vad_lease_s / 4:
            self._last_lease_check = now
            await self.keep_leases()
            await self.adopt_orphans()
        for state in [
            s for s in self.sessions.values() if now - s.last_audio > self.settings.vad_idle_timeout_s
        ]:
            log.warning(
                "sid=%s no audio for %.0fs; ending the session", state.sid, self.settings.vad_idle_timeout_s
            )
            await self.stop(state)
        if self.settings.keep_audio and now - self._last_sweep > ORPHAN_SWEEP_S:
            self._last_sweep = now
            await self.finish_orphans()
        metrics.ACTIVE_SESSIONS.labels("vad").set(len(self.sessions))
        await heartbeat(self.r, "vad", self.consumer, {"sessions": len(self.sessions)})

    def encode_later(self, spool: Path, opus: Path, sid: str) -> None:
        """Encode a finished recording in a child process, the loop going on with the other sessions."""
        task = asyncio.create_task(finish(spool, opus, sid), name=f"encode-{sid}")
        self.encoding.add(task)
        task.add_done_callback(self.encoding.discard)

    async def finish_orphans(self) -> None:
        """Encode the spools of ended sessions that a worker left behind (it died before encoding)."""
        found = orphan_spools(self.audio_dir, set())  # listed before the live set is read: see open()
        if not found:
            return
        live = {s.decode() for s in await self.r.smembers(keys.VAD_SESSIONS)} | set(self.sessions)
        busy = {t.get_name() for t in self.encoding}
        for spool, opus, sid in found:
            if sid not in live and f"encode-{sid}" not in busy:
                log.warning("sid=%s recording left unencoded by a worker; encoding it", sid)
                self.encode_later(spool, opus, sid)

    async def keep_leases(self) -> None:
        for sid in list(self.sessions):
            if not await self.leases.renew(sid):
                log.warning("sid=%s lease lost to another replica; dropping the session here", sid)
                state = self.sessions.pop(sid)
                if state.recording is not None:
                    state.recording.close()  # the new owner cuts it back to its checkpoint

    async def adopt_orphans(self) -> None:
        """Take over sessions whose owner died, from their last checkpoint."""
        for sid in await self.leases.orphans():
            if sid in self.sessions or not await self.leases.take(sid):
                continue
            raw = await checkpoint.load(self.r, sid)
            if raw is None:
                await self.leases.release(sid)
                continue
            state = SessionState.restore(sid, raw, StreamingVad(self.model), self.seg_cfg, self.lock_cfg)
            self.record(state)
            self.sessions[sid] = state
            log.warning(
                "sid=%s taken over from checkpoint last_id=%s seg=%d",
                sid,
                state.last_id,
                state.index(state.segmenter.next_index),
            )

    async def shutdown(self) -> None:
        """On shutdown: checkpoint every session and give up its lease, so another replica goes on."""
        for state in list(self.sessions.values()):
            async with self.r.pipeline(transaction=True) as pipe:
                self.write_checkpoint(pipe, state)
                await pipe.execute()
            await self.leases.release(state.sid)
            if state.recording is not None:
                state.recording.close()
            log.info("sid=%s handed back at last_id=%s", state.sid, state.last_id)
        self.sessions.clear()
        if self.encoding:  # recordings of sessions that ended: finish them before exiting
            await asyncio.gather(*self.encoding, return_exceptions=True)
