"""Recordings uploaded as files: the page's "Upload a recording", and an OpenAI-compatible route.

- `POST /api/uploads` — multipart: `file` (any audio PyAV decodes: WAV, MP3, M4A, WebM, OGG, FLAC...),
  optional `language` (`auto` or empty: detect), `prompt`, `keywords` (comma-separated), `timezone`,
  `course`. Answers 202 `{"session", "status", "duration_s"}` at once; the audio is fed in the
  background. Errors are JSON `{"error": ...}`: 400 not multipart / no file / not decodable audio /
  invalid fields, 413 over `MAX_UPLOAD_BYTES` (200 MiB), 429 too many uploads being fed by this
  gateway, 503 Redis unreachable.
- `GET /api/uploads/{sid}` — `{"session", "duration_s", "fed_s", "transcribed_s", "status"}` with
  status `feeding` (audio still going in), `transcribing` (all in, waiting for the last utterances),
  `done` (the alerts worker wrote `alerts_done`), `failed` (plus `error`); `warning` when part of the
  file was not transcribed (it stops decoding part-way, or is longer than `MAX_AUDIO_S`).
  `duration_s` is the container's estimate (null when it has none, e.g. a browser's WebM) until
  decoding ends, then exact; `transcribed_s` is the end of the newest final in `events:{sid}`.
- `POST /v1/audio/transcriptions` — OpenAI's route: `file`, `model` (accepted, ignored), `prompt`,
  `language`, `response_format` (`json`, `text`, `srt`, `vtt`, `verbose_json`),
  `timestamp_granularities[]` (`segment`, `word`; word timings are spread over each final by
  characters, first and last word exact). Runs the same pipeline and answers when the session
  ends. Errors in OpenAI's shape `{"error": {"message", "type", "param", "code"}}`.

An upload is a session like a live one: `SessionStore.create`, `SessionOpened` on `sessions`, PCM16
in 1 s `AudioChunk`s on `audio:{sid}`, `AudioStop`, and it is then listed in `/api/sessions` with its
transcript and alerts. The file is stored in a temporary file while the request is read (bounded),
checked (it must open and decode to audio) before the 202, and decoded in a thread in the background,
a few seconds at a time, so memory does not grow with the recording's length.

**Flow control.** Audio goes in as fast as the pipeline takes it, never much faster: a chunk is
written only while `audio:{sid}` holds fewer than `AUDIO_AHEAD` entries (the VAD trims what it has
checkpointed; XLEN is a coarse measure, see `has_room`) and while a transcriber is idle: the finals
pending in or waiting for the `transcriber` group, any session's, are fewer than the live workers
(the group's consumers seen in the last 30 s) plus `SEGMENT_BACKLOG` (0). Uploads fill the
transcribers' idle time; a live lecture's final waits behind at most the upload utterance being
decoded, not minutes of queued work. A chunk held back by the transcribers longer than `MAX_HOLD_S`
goes in anyway (the VAD ends a session that has had no audio for 120 s); no room at all for
`STALL_S` fails the upload (and stops its session with the audio fed so far).

Progress is in Redis, `upload:{sid}` (hash: `status`, `duration_s`, `fed_s`, `updated`, `error`,
`warning`, `filename`, kept as long as the session), so any gateway replica answers the GET. A
gateway that stops while feeding leaves the session to the VAD's idle timeout; its upload reads
`failed` once its progress is `STALE_S` old.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import redis.asyncio as aioredis
from aiohttp import BodyPartReader, web
from pydantic import ValidationError

from services.gateway import owners, state, voices
from services.gateway.errors import ApiError, unavailable
from services.gateway.history.formats import render_srt, render_vtt
from services.gateway.history.records import Entry, Record, read_record
from services.gateway.sessions import ENDED, SID_RE, STOPPING, SessionStore
from shared.messages import (
    SAMPLE_RATE,
    AudioChunk,
    AudioStop,
    SessionConfig,
    SessionOpened,
    StartMessage,
    TranscriptEvent,
    from_fields,
    to_fields,
)
from shared.settings import GatewaySettings
from shared.streams import REDIS_DOWN, xadd

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 200 * 1024 * 1024
MAX_FIELD_BYTES = 8192  # any form field other than the file
MAX_AUDIO_S = 6 * 3600  # decoded audio beyond this is not fed (a tiny file can decode to hours)
MAX_ACTIVE = 8  # uploads one gateway feeds at once
READ_CHUNK = 1 << 16
CHUNK_BYTES = SAMPLE_RATE * 2  # one AudioChunk: 1 s of PCM16
DECODE_BATCH = 5  # chunks decoded per trip to the thread pool
PROBE_FRAMES = 200  # frames read to find the first one with audio
AUDIO_AHEAD = 60  # entries of audio:{sid} (seconds) the feeder may be ahead of the VAD's trim
SEGMENT_BACKLOG = 0  # utterances that may wait for a busy transcriber (0: feed only while one is idle)
WORKERS_TTL_S = 5.0
WORKER_IDLE_MS = 30_000  # a worker blocks at most a second between reads; decoding takes seconds
MAX_HOLD_S = 20.0
STALL_S = 300.0
NUDGE_S = 1.5  # longer than the VAD's idle-checkpoint interval (1 s)
HEARTBEAT_S = 10.0  # a held-back feeder refreshes its progress's `updated` this often
POLL_S = 0.1  # how often a held-back feeder looks again (polling Redis, not a synchronisation)
STALE_S = 90.0
WAIT_BASE_S, WAIT_PER_AUDIO_S = 60.0, 2.0  # longest wait for the end after the last chunk
EVENTS_PAGE, EVENTS_PAGES = 200, 5
TRANSCRIBER_GROUP = b"transcriber"
FEEDING, TRANSCRIBING, DONE, FAILED = "feeding", "transcribing", "done", "failed"
FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
GRANULARITIES = ("segment", "word")
ACCEPTED = "send WAV, MP3, M4A, WebM, OGG or FLAC audio"


def add_routes(app: web.Application) -> None:
    """Registers the upload routes and their state on the gateway's application."""
    app[state.UPLOAD_LIMIT] = getattr(app[state.SETTINGS], "max_upload_bytes", MAX_UPLOAD_BYTES)
    app[state.UPLOADS_ACTIVE] = {}
    app.router.add_post("/api/uploads", create_upload)
    app.router.add_get("/api/uploads/{sid}", upload_progress)
    app.router.add_post("/v1/audio/transcriptions", openai_transcriptions)


# --- receiving the form ------------------------------------------------------------------------


@dataclass
class Upload:
    """A received form: the file (in a temporary file) and the other fields."""

    path: Path
    size: int = 0
    filename: str = ""
    fields: dict[str, list[str]] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        """The first value of a field, stripped; None when absent or empty."""
        values = self.fields.get(name) or [""]
        return values[0].strip() or None

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()


def too_large(limit: int) -> ApiError:
    size = f"{limit // 2**20} MB" if limit >= 2**20 else f"{limit} bytes"
    return ApiError(413, f"the upload is larger than {size}", "file", "file_too_large")


async def save_file(part: BodyPartReader, upload: Upload, limit: int) -> None:
    upload.filename = part.filename or "upload"
    with upload.path.open("wb") as out:
        while chunk := await part.read_chunk(READ_CHUNK):
            upload.size += len(chunk)
            if upload.size > limit:
                raise too_large(limit)
            out.write(chunk)


async def read_field(part: BodyPartReader) -> str:
    data = bytearray()
    while chunk := await part.read_chunk(READ_CHUNK):
        data += chunk
        if len(data) > MAX_FIELD_BYTES:
            raise ApiError(400, f"form field {part.name!r} is too long", part.name)
    return data.decode(part.get_charset("utf-8"), errors="replace")


async def read_parts(request: web.Request, upload: Upload, limit: int) -> bool:
    """Reads the multipart body into `upload`; True when it held a file."""
    has_file = False
    reader = await request.multipart()
    async for part in reader:
        if not isinstance(part, BodyPartReader) or not part.name:
            continue  # nested multipart or an unnamed part: not ours
        if part.name == "file" and not has_file:
            await save_file(part, upload, limit)
            has_file = True
        else:
            upload.fields.setdefault(part.name, []).append(await read_field(part))
    return has_file


async def receive(request: web.Request) -> Upload:
    """The request's form, its file in a temporary file (the caller discards it); raises ApiError."""
    limit = request.app[state.UPLOAD_LIMIT]
    check_capacity(request.app)
    if request.content_length is not None and request.content_length > limit + MAX_FIELD_BYTES * 8:
        raise too_large(limit)
    if not request.content_type.startswith("multipart/"):
        raise ApiError(400, "expected a multipart/form-data body with the audio in field 'file'", "file")
    fd, name = tempfile.mkstemp(prefix="classrec-upload-")
    os.close(fd)
    upload = Upload(Path(name))
    try:
        has_file = await read_parts(request, upload, limit)
    except (ValueError, AssertionError, KeyError) as e:  # a malformed body
        upload.discard()
        raise ApiError(400, f"malformed multipart body: {e}", "file") from None
    except BaseException:  # refused (ApiError), or the client went away
        upload.discard()
        raise
    if not has_file or upload.size == 0:
        upload.discard()
        raise ApiError(400, "no audio: send the recording in the multipart field 'file'", "file")
    return upload


# --- decoding ------------------------------------------------------------------------------------


def decodable_frames(container: av.container.InputContainer) -> Iterator[av.AudioFrame]:
    """The first audio stream's frames, skipping the ones that do not decode (as faster-whisper does)."""
    frames = container.decode(audio=0)
    while True:
        try:
            yield next(frames)
        except StopIteration:
            return
        except av.error.InvalidDataError:
            continue


def container_duration(container: av.container.InputContainer) -> float | None:
    if container.duration:
        return container.duration / av.time_base
    stream = container.streams.audio[0]
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return None


def probe(path: Path) -> float | None:
    """Checks that the file opens and decodes to audio; its duration when the container tells it."""
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise ApiError(400, f"the file has no audio track; {ACCEPTED}", "file", "no_audio")
            for n, frame in enumerate(decodable_frames(container)):
                if frame.samples:
                    return container_duration(container)
                if n >= PROBE_FRAMES:
                    break
    except av.error.FFmpegError as e:
        reason = getattr(e, "strerror", None) or type(e).__name__
        raise ApiError(
            400, f"not a decodable audio file ({reason}); {ACCEPTED}", "file", "invalid_audio"
        ) from None
    raise ApiError(400, f"no decodable audio in the file; {ACCEPTED}", "file", "invalid_audio")


def pcm_chunks(path: Path) -> Iterator[bytes]:
    """The file as 16 kHz mono PCM16, in 1 s chunks (the last one shorter)."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    buf = bytearray()
    with av.open(str(path), metadata_errors="ignore") as container:
        for frame in decodable_frames(container):
            frame.pts = None  # timestamps of broken files must not stop the resampler
            for out in resampler.resample(frame):
                buf += out.to_ndarray().tobytes()
            while len(buf) >= CHUNK_BYTES:
                yield bytes(buf[:CHUNK_BYTES])
                del buf[:CHUNK_BYTES]
        for out in resampler.resample(None):
            buf += out.to_ndarray().tobytes()
    for i in range(0, len(buf) - len(buf) % 2, CHUNK_BYTES):
        yield bytes(buf[i : i + CHUNK_BYTES])


def take(chunks: Iterator[bytes], n: int) -> list[bytes]:
    return [c for _, c in zip(range(n), chunks, strict=False)]


# --- the session ---------------------------------------------------------------------------------


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
    """Creates a session exactly as a live one is opened; returns its id."""
    sid = secrets.token_urlsafe(18)
    extra = {"course": start.course} if "course" in SessionConfig.model_fields else {}
    config = SessionConfig(
        language=start.language or None,
        prompt=start.prompt,
        keywords=start.keywords,
        timezone=start.timezone,
        started_at=time.time(),
        partials=False,
        **extra,
    )
    voiceprint = await voices.upload_lock(r, start, config)
    store = SessionStore(r, s)
    await store.create(sid, config, owner)
    if start.course and not extra:  # the registry keeps the course for the history list
        await r.hset(store.key(sid), "config", json.dumps({**config.model_dump(), "course": start.course}))
    opened = SessionOpened(sid=sid, config=config, voiceprint=voiceprint, owner=owner)
    await xadd(r, s.sessions_stream, opened, s.stream_maxlen)
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
    return f"upload:{sid}"


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
            pipe.xadd(
                self.s.audio_key(self.sid),
                to_fields(AudioChunk(seq=self.seq, pcm=pcm)),
                maxlen=self.s.stream_maxlen,
                approximate=True,
            )
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
            pipe.xadd(
                self.s.audio_key(self.sid),
                to_fields(AudioStop(seq=self.seq)),
                maxlen=self.s.stream_maxlen,
                approximate=True,
            )
            pipe.hset(SessionStore(self.r, self.s).key(self.sid), "status", STOPPING)
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
        key, last = self.s.events_key(self.sid), "0-0"
        limit = WAIT_BASE_S + WAIT_PER_AUDIO_S * self.fed_s
        deadline = time.monotonic() + limit
        while (remaining := deadline - time.monotonic()) > 0:
            resp = await self.r.xread({key: last}, count=100, block=max(1, int(min(remaining, 5.0) * 1000)))
            for _, entries in resp or []:
                for entry_id, fields in entries:
                    last = entry_id
                    if fields.get(b"type") == b"alerts_done":
                        return await self.done()
            await self.r.hset(upload_key(self.sid), "updated", time.time())
        await self.fail(f"transcription did not finish within {limit:.0f} s")

    async def done(self) -> None:
        self.status = DONE
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.hset(SessionStore(self.r, self.s).key(self.sid), "status", ENDED)
            pipe.hset(upload_key(self.sid), mapping={"status": DONE, "updated": time.time()})
            await pipe.execute()

    async def fail(self, message: str) -> None:
        """Marks the upload failed; a session still taking audio is stopped with what it has."""
        fed_all = self.status != FEEDING
        self.status, self.error = FAILED, message
        with contextlib.suppress(*REDIS_DOWN):
            if not fed_all:
                await xadd(self.r, self.s.audio_key(self.sid), AudioStop(seq=self.seq), self.s.stream_maxlen)
            await self.r.hset(
                upload_key(self.sid), mapping={"status": FAILED, "error": message, "updated": time.time()}
            )


def check_capacity(app: web.Application) -> None:
    """429 while this gateway feeds MAX_ACTIVE uploads (a soft bound: checked before and after the body)."""
    if len(app[state.UPLOADS_ACTIVE]) >= MAX_ACTIVE:
        raise ApiError(429, f"{MAX_ACTIVE} uploads are being transcribed; try again later", None, "busy")


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


# --- /api/uploads ----------------------------------------------------------------------------------


async def create_upload(request: web.Request) -> web.Response:
    upload = await receive(request)  # a refusal is an ApiError, rendered by errors.py
    owner = request.headers.get(voices.OWNER_HEADER) or upload.get("owner") or ""
    upload.fields["owner"] = [owner]  # the voice lock's owner: the header, else the form's field
    owned = owners.digest(owner) if owners.OWNER_RE.fullmatch(owner) else owners.request_owner(request)
    feeder = await start_upload(request.app, upload, "en", owned)
    return web.json_response(
        {"session": feeder.sid, "status": FEEDING, "duration_s": feeder.duration_hint}, status=202
    )


async def events_progress(r: aioredis.Redis, key: str) -> tuple[float, bool]:
    """(end of the newest final, whether `alerts_done` is there), reading back from the stream's end."""
    ended, top = False, "+"
    for _ in range(EVENTS_PAGES):
        entries = await r.xrevrange(key, max=top, min="-", count=EVENTS_PAGE)
        ended = ended or any(f.get(b"type") == b"alerts_done" for _, f in entries)
        ends = [m.end for _, f in entries if (m := final_of(f))]
        if ends:
            return max(ends), ended
        if len(entries) < EVENTS_PAGE:
            break
        top = "(" + entries[-1][0].decode()
    return 0.0, ended


def final_of(fields: dict[bytes, bytes]) -> TranscriptEvent | None:
    if fields.get(b"type") != b"transcript":
        return None
    try:
        msg = from_fields(fields)
    except ValueError:
        return None
    return msg if isinstance(msg, TranscriptEvent) and msg.final else None


def float_or_none(raw: bytes | None) -> float | None:
    try:
        return float(raw) if raw else None
    except ValueError:
        return None


def progress_json(sid: str, info: dict[bytes, bytes], transcribed: float, ended: bool) -> dict[str, Any]:
    status = info.get(b"status", b"").decode() or FAILED
    error = info[b"error"].decode() if b"error" in info else None
    warning = info[b"warning"].decode() if b"warning" in info else None
    if ended:
        status = DONE
    elif (
        status in (FEEDING, TRANSCRIBING)
        and time.time() - (float_or_none(info.get(b"updated")) or 0) > STALE_S
    ):
        status, error = FAILED, "the upload stopped making progress (its gateway was restarted?)"
    body: dict[str, Any] = {
        "session": sid,
        "duration_s": float_or_none(info.get(b"duration_s")),
        "fed_s": float_or_none(info.get(b"fed_s")) or 0.0,
        "transcribed_s": round(transcribed, 3),
        "status": status,
    }
    if error:
        body["error"] = error
    if warning:
        body["warning"] = warning
    return body


async def upload_progress(request: web.Request) -> web.Response:
    sid = request.match_info["sid"]
    if not SID_RE.fullmatch(sid):
        raise ApiError(400, "malformed session id")
    try:
        await owners.require_reader(request, sid)
    except ApiError:  # unknown, or another owner's upload: it does not exist
        raise ApiError(404, "unknown upload") from None
    r, s = request.app[state.REDIS], request.app[state.SETTINGS]
    try:
        info = await r.hgetall(upload_key(sid))
        if not info:
            raise ApiError(404, "unknown upload")
        transcribed, ended = await events_progress(r, s.events_key(sid))
    except REDIS_DOWN as e:
        log.error("sid=%s upload progress: redis unavailable: %r", sid, e)
        raise unavailable() from None
    return web.json_response(progress_json(sid, info, transcribed, ended))


# --- /v1/audio/transcriptions ----------------------------------------------------------------------


def openai_error(
    status: int, message: str, param: str | None = None, code: str | None = None
) -> web.Response:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return web.json_response(
        {"error": {"message": message, "type": kind, "param": param, "code": code}}, status=status
    )


def openai_options(upload: Upload) -> tuple[str, list[str]]:
    """The response format and timestamp granularities asked for; raises ApiError."""
    fmt = upload.get("response_format") or "json"
    if fmt not in FORMATS:
        raise ApiError(400, f"response_format must be one of {', '.join(FORMATS)}", "response_format")
    grains = [g.strip() for g in upload.fields.get("timestamp_granularities[]", []) if g.strip()]
    grains += [g.strip() for g in upload.fields.get("timestamp_granularities", []) if g.strip()]
    if bad := [g for g in grains if g not in GRANULARITIES]:
        raise ApiError(
            400, f"unknown timestamp granularity {bad[0]!r}: use segment or word", "timestamp_granularities"
        )
    return fmt, grains or ["segment"]


def spread_words(final: TranscriptEvent) -> list[dict[str, Any]]:
    """A final's words with times spread over it by characters (Whisper's own are not stored)."""
    words = final.text.split()
    total = sum(len(w) for w in words) or 1
    out, done = [], 0
    for w in words:
        t0 = final.start + (final.end - final.start) * done / total
        done += len(w)
        t1 = final.start + (final.end - final.start) * done / total
        out.append({"word": w, "start": round(t0, 3), "end": round(t1, 3)})
    return out


def verbose_json(record: Record, language: str | None, duration: float, grains: list[str]) -> dict[str, Any]:
    lines = record.lines
    body: dict[str, Any] = {
        "task": "transcribe",
        "language": language or "en",
        "duration": round(duration, 3),
        "text": " ".join(f.text.strip() for f in lines),
    }
    if "word" in grains:
        body["words"] = [w for f in lines for w in spread_words(f)]
    body["segments"] = [
        {
            "id": i,
            "seek": 0,
            "start": f.start,
            "end": f.end,
            "text": " " + f.text.strip(),
            "tokens": [],
            "temperature": 0.0,
            "avg_logprob": 0.0,
            "compression_ratio": 1.0,
            "no_speech_prob": 0.0,
        }
        for i, f in enumerate(lines)
    ]
    return body


def render(
    fmt: str, sid: str, record: Record, feeder: Feeder, language: str | None, grains: list[str]
) -> web.Response:
    text = " ".join(f.text.strip() for f in record.lines)
    if fmt == "json":
        return web.json_response({"text": text})
    if fmt == "verbose_json":
        return web.json_response(verbose_json(record, language, feeder.fed_s, grains))
    entry = Entry(sid)
    if fmt == "srt":
        return web.Response(text=render_srt(entry, record), content_type="text/plain", charset="utf-8")
    if fmt == "vtt":
        return web.Response(text=render_vtt(entry, record), content_type="text/vtt", charset="utf-8")
    return web.Response(text=text + "\n" if text else "", content_type="text/plain", charset="utf-8")


async def openai_transcriptions(request: web.Request) -> web.Response:
    """OpenAI's transcription route over the pipeline: answers once the session has ended."""
    try:
        upload = await receive(request)
    except ApiError as e:
        return openai_error(e.status, e.message, e.param, e.code)
    try:
        fmt, grains = openai_options(upload)
    except ApiError as e:
        upload.discard()
        return openai_error(e.status, e.message, e.param, e.code)
    try:
        feeder = await start_upload(request.app, upload, None)
    except ApiError as e:
        return openai_error(e.status, e.message, e.param, e.code)
    await feeder.finished.wait()  # the feeder bounds its own wait by the audio's duration
    if feeder.status != DONE:
        return openai_error(
            504 if "did not finish" in (feeder.error or "") else 500, feeder.error or "transcription failed"
        )
    r, s = request.app[state.REDIS], request.app[state.SETTINGS]
    try:
        record = await read_record(r, s.events_key(feeder.sid))
    except REDIS_DOWN:
        return openai_error(503, "storage unavailable, try again", None, "unavailable")
    language = upload.get("language")
    return render(fmt, feeder.sid, record, feeder, language, grains)
