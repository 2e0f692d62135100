"""An upload's session: opened like a live one, fed its audio with flow control (the feeder), stopped.

See "Flow control" in the package's docstring (`uploads/__init__.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import redis.asyncio as aioredis
from aiohttp import web
from pydantic import ValidationError

from services.gateway import events, state, voices
from services.gateway.errors import ApiError
from services.gateway.sessions import SessionStore, config_for, new_sid
from services.gateway.uploads.decode import pcm_chunks, probe, take
from services.gateway.uploads.form import Upload, check_capacity
from shared import keys
from shared.messages import SAMPLE_RATE, AlertsDone, AudioChunk, StartMessage
from shared.settings import GatewaySettings
from shared.streams import REDIS_DOWN, stage

log = logging.getLogger(__name__)
MAX_AUDIO_S = 6 * 3600  # decoded audio beyond this is not fed (a tiny file can decode to hours)
DECODE_BATCH = 5  # chunks decoded per trip to the thread pool
AUDIO_AHEAD = 60  # entries of audio:{sid} (seconds) the feeder may be ahead of the VAD's trim
SEGMENT_BACKLOG = 0  # utterances that may wait for a busy transcriber (0: feed only while one is idle)
WORKERS_TTL_S = 5.0
WORKER_IDLE_MS = 30_000  # a worker blocks at most a second between reads; decoding takes seconds
MAX_HOLD_S = 20.0
STALL_S = 300.0
NUDGE_S = 1.5  # longer than the VAD's idle-checkpoint interval (1 s)
HEARTBEAT_S = 10.0  # a held-back feeder refreshes its progress's `updated` this often
POLL_S = 0.1  # how often a held-back feeder looks again (polling Redis, not a synchronisation)
WAIT_BASE_S, WAIT_PER_AUDIO_S = 60.0, 2.0  # longest wait for the end after the last chunk
TRANSCRIBER_GROUP = keys.TRANSCRIBER_GROUP.encode()
FEEDING, TRANSCRIBING, DONE, FAILED = "feeding", "transcribing", "done", "failed"


def start_message(upload: Upload, default_language: str | None) -> StartMessage:
    """The upload's options, validated as a live session's `start` would be."""
    language = upload.get("language")
    if language is None:
        language = default_language
    elif language.lower() == "auto":
        language = None
    keywords = [k.strip() for k in (upload.get("keywords") or "").split(",") if k.strip()]
    try:
        return StartMessage(
            language=language,
            prompt=upload.get("prompt") or "",
            keywords=keywords,
            timezone=upload.get("timezone"),
            course=upload.get("course"),
            **voices.upload_fields(upload),
        )
    except ValidationError as e:
        err = e.errors()[0]
        param = str(err["loc"][0]) if err.get("loc") else None
        raise ApiError(400, f"invalid {param or 'field'}: {err['msg']}", param) from None


async def open_session(
    r: aioredis.Redis, s: GatewaySettings, start: StartMessage, owner: str | None = None
) -> str:
    """Creates a session exactly as a live one is opened (no partials: nobody watches); returns its id."""
    sid = new_sid()
    config = config_for(start, start.language or None, partials=False)
    voiceprint = await voices.upload_lock(r, start, config)
    await SessionStore(r, s).open(sid, config, owner, voiceprint)
    return sid


def has_room(ahead: int, excess: int, waited: float, unchanged: float) -> bool:
    """Whether the next chunk may go in: `ahead` entries in audio:{sid}, `excess` utterances in the
    transcribers' hands beyond one per worker (negative: a worker is idle), after `waited` s of
    holding it, `audio:{sid}` not having changed for `unchanged` s.

    XLEN counts the entries after the VAD's last checkpoint, not after its read position: outside an
    utterance the VAD checkpoints (and trims) at most once a second, on new audio, so after a fast
    burst it may have read everything without trimming. A stream that has not moved for NUDGE_S gets
    one more chunk, which makes the VAD checkpoint; never beyond twice AUDIO_AHEAD.
    """
    if ahead >= 2 * AUDIO_AHEAD or (ahead >= AUDIO_AHEAD and unchanged < NUDGE_S):
        return False
    return excess < SEGMENT_BACKLOG or waited > MAX_HOLD_S


def upload_key(sid: str) -> str:
    return keys.upload(sid)


@dataclass
class Feeder:
    """Feeds one upload's audio into its session and follows it to the end."""

    r: aioredis.Redis
    s: GatewaySettings
    sid: str
    path: Path
    duration_hint: float | None
    seq: int = 0
    samples: int = 0
    status: str = FEEDING
    error: str | None = None  # why it failed
    warning: str | None = None  # what was not transcribed (decoding stopped early, too long)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    workers: int = 1
    workers_at: float = -WORKERS_TTL_S

    @property
    def fed_s(self) -> float:
        return self.samples / SAMPLE_RATE

    async def register(self, filename: str) -> None:
        key = upload_key(self.sid)
        fields: dict[str, Any] = {"status": FEEDING, "fed_s": 0, "updated": time.time(), "filename": filename}
        if self.duration_hint is not None:
            fields["duration_s"] = round(self.duration_hint, 3)
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=fields)
            pipe.expire(key, self.s.session_retention_s)
            await pipe.execute()

    async def run(self) -> None:
        t0 = time.monotonic()
        try:
            await self.feed()
            await self.stop()
            await self.await_end()
        except asyncio.CancelledError:
            raise  # gateway shutdown: the VAD's idle timeout ends the session
        except Exception as e:
            log.exception("sid=%s upload failed", self.sid)
            await self.fail(f"upload failed: {e}")
        finally:
            with contextlib.suppress(OSError):
                self.path.unlink()
            self.finished.set()
        log.info(
            "sid=%s upload %s audio_s=%.1f took_s=%.1f",
            self.sid,
            self.status,
            self.fed_s,
            time.monotonic() - t0,
        )

    async def feed(self) -> None:
        chunks = pcm_chunks(self.path)
        try:
            while batch := await self.decode(chunks):
                for pcm in batch:
                    await self.wait_for_room()
                    await self.write(pcm)
                if self.fed_s >= MAX_AUDIO_S:
                    self.warning = f"only the first {MAX_AUDIO_S / 3600:.0f} h were transcribed"
                    return
        finally:
            with contextlib.suppress(ValueError):  # cancelled while a thread was decoding: left to GC
                chunks.close()

    async def decode(self, chunks: Iterator[bytes]) -> list[bytes]:
        """The next chunks; none at the end, or where the file stops decoding (what came before is kept)."""
        try:
            return await asyncio.to_thread(take, chunks, DECODE_BATCH)
        except (av.error.FFmpegError, OSError, ValueError) as e:
            self.warning = f"decoding stopped at {self.fed_s:.1f} s: {e}"
            log.warning("sid=%s %s", self.sid, self.warning)
            return []

    async def write(self, pcm: bytes) -> None:
        self.samples += len(pcm) // 2
        async with self.r.pipeline(transaction=True) as pipe:
            stage(pipe, self.s.audio_key(self.sid), AudioChunk(seq=self.seq, pcm=pcm), self.s.stream_maxlen)
            pipe.hset(upload_key(self.sid), mapping={"fed_s": round(self.fed_s, 3), "updated": time.time()})
            await pipe.execute()
        self.seq += 1

    async def wait_for_room(self) -> None:
        """Holds the next chunk while the VAD or the transcribers are behind (see the module's doc)."""
        since = beat = moved = time.monotonic()
        last_ahead = -1
        while True:
            ahead, excess = await self.pressure()
            now = time.monotonic()
            if ahead != last_ahead:
                last_ahead, moved = ahead, now
            if has_room(ahead, excess, now - since, now - moved):
                return
            if now - since > STALL_S:
                raise RuntimeError(f"the pipeline took no audio for {STALL_S:.0f} s")
            if now - beat > HEARTBEAT_S:  # still alive, for the progress route's staleness check
                await self.r.hset(upload_key(self.sid), "updated", time.time())
                beat = now
            await asyncio.sleep(POLL_S)  # polling Redis for room, not a synchronisation

    async def pressure(self) -> tuple[int, int]:
        """(entries in audio:{sid}, utterances in the transcribers' hands beyond one per live transcriber).

        In their hands: pending in the `transcriber` group (a worker reads several finals at once)
        plus not yet delivered; counted up to the bound only.
        """
        ahead = await self.r.xlen(self.s.audio_key(self.sid))
        try:
            groups = await self.r.xinfo_groups(self.s.segments_stream)
        except aioredis.ResponseError:  # no segments stream yet
            return ahead, 0
        group = next((g for g in groups if g["name"] == TRANSCRIBER_GROUP), None)
        if group is None:
            return ahead, 0
        workers = await self.transcribers()
        waiting = await self.r.xrange(
            self.s.segments_stream,
            min="(" + group["last-delivered-id"].decode(),
            max="+",
            count=workers + SEGMENT_BACKLOG + 1,
        )
        return ahead, int(group["pending"]) + len(waiting) - workers

    async def transcribers(self) -> int:
        """Live transcriber workers (group consumers seen in the last WORKER_IDLE_MS), looked up every
        WORKERS_TTL_S; at least one. Dead workers' consumers stay in the group, idle."""
        now = time.monotonic()
        if now - self.workers_at > WORKERS_TTL_S:
            consumers = await self.r.xinfo_consumers(self.s.segments_stream, TRANSCRIBER_GROUP)
            self.workers = max(1, sum(1 for c in consumers if int(c["idle"]) < WORKER_IDLE_MS))
            self.workers_at = now
        return self.workers

    async def stop(self) -> None:
        """AudioStop: the session ends with the audio fed so far."""
        self.status = TRANSCRIBING
        async with self.r.pipeline(transaction=True) as pipe:
            SessionStore(self.r, self.s).stage_stop(pipe, self.sid, self.seq)
            fields: dict[str, Any] = {
                "status": TRANSCRIBING,
                "duration_s": round(self.fed_s, 3),
                "updated": time.time(),
            }
            if self.warning:
                fields["warning"] = self.warning
            pipe.hset(upload_key(self.sid), mapping=fields)
            await pipe.execute()

    async def await_end(self) -> None:
        """Reads events:{sid} until `alerts_done`, for at most WAIT_BASE_S + WAIT_PER_AUDIO_S × duration."""
        limit = WAIT_BASE_S + WAIT_PER_AUDIO_S * self.fed_s
        deadline = time.monotonic() + limit

        def block_ms() -> int:  # each wait ends by the deadline
            return max(1, int(min(deadline - time.monotonic(), 5.0) * 1000))

        beat = time.monotonic()
        async with contextlib.aclosing(events.follow(self.r, self.s, self.sid, block_ms=block_ms)) as stream:
            async for msg in stream:
                if isinstance(msg, AlertsDone):
                    return await self.done()
                if msg is None or time.monotonic() - beat > 1.0:  # alive, for the progress route
                    await self.r.hset(upload_key(self.sid), "updated", time.time())
                    beat = time.monotonic()
                if deadline - time.monotonic() <= 0:
                    break
        await self.fail(f"transcription did not finish within {limit:.0f} s")

    async def done(self) -> None:
        self.status = DONE
        async with self.r.pipeline(transaction=True) as pipe:
            SessionStore(self.r, self.s).stage_end(pipe, self.sid)
            pipe.hset(upload_key(self.sid), mapping={"status": DONE, "updated": time.time()})
            await pipe.execute()

    async def fail(self, message: str) -> None:
        """Marks the upload failed; a session still taking audio is stopped with what it has."""
        fed_all = self.status != FEEDING
        self.status, self.error = FAILED, message
        with contextlib.suppress(*REDIS_DOWN):
            if not fed_all:
                await SessionStore(self.r, self.s).stop(self.sid, self.seq)
            await self.r.hset(
                upload_key(self.sid), mapping={"status": FAILED, "error": message, "updated": time.time()}
            )


async def begin(
    app: web.Application, upload: Upload, start: StartMessage, owner: str | None = None
) -> Feeder:
    """Checks the file, opens its session and starts feeding it in the background."""
    check_capacity(app)
    active = app[state.UPLOADS_ACTIVE]
    duration = await asyncio.to_thread(probe, upload.path)
    r, s = app[state.REDIS], app[state.SETTINGS]
    try:
        sid = await open_session(r, s, start, owner)
        feeder = Feeder(r, s, sid, upload.path, duration)
        await feeder.register(upload.filename)
    except REDIS_DOWN as e:
        log.error("upload: redis unavailable: %r", e)
        raise ApiError(503, "storage unavailable, try again", None, "unavailable") from None
    task = asyncio.create_task(feeder.run(), name=f"upload-{sid}")
    active[sid] = feeder
    background = app[state.BACKGROUND]
    background.add(task)
    task.add_done_callback(background.discard)
    task.add_done_callback(lambda _: active.pop(sid, None))
    log.info(
        "sid=%s upload opened file=%r bytes=%d duration_s=%s language=%s",
        sid,
        upload.filename,
        upload.size,
        f"{duration:.1f}" if duration is not None else "?",
        start.language,
    )
    return feeder


async def start_upload(
    app: web.Application, upload: Upload, default_language: str | None, owner: str | None = None
) -> Feeder:
    """Starts a received upload (owned by `owner`, a key's digest); on any failure its file is
    discarded (raises ApiError)."""
    try:
        return await begin(app, upload, start_message(upload, default_language), owner)
    except BaseException:
        upload.discard()
        raise
