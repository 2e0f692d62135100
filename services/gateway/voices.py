"""Enrolled voices (the voice lock): `POST /api/voices`, `GET /api/voices`, `DELETE /api/voices/{id}`.

A voice belongs to the owner key that enrolled it, named in header `X-ClassRec-Owner` (16-128
url-safe characters; the page keeps one in localStorage). Redis keeps an owner's voices in the hash
`voices:{sha256 of the owner key}`: field = voice id, value = JSON `{voice, name, seconds,
speech_seconds, created, embedding}` (embedding: base64 of the 256 float32 of the d-vector). The key
itself is never stored. A live session with `"voice"` in its start gets a copy of the embedding
(`voice_for`), so deleting a voice does not disturb a lecture that uses it.

POST takes a multipart form: `file` (5-30 s of the lecturer, any format PyAV decodes, at most
MAX_BYTES) and `name`; the answer is `{"voice", "name", "seconds"}`. Errors are JSON `{"error",
"code"}`: 400 missing or malformed owner key, form, name or audio, or audio that is no voice
(`too_short`, `too_long`, `silence`, `no_speech`, `too_little_speech`); 404 unknown voice; 409 too
many voices; 503 Redis unreachable.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import logging
import re
import secrets
import time
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import av
import numpy as np
import redis.asyncio as aioredis
from aiohttp import BodyPartReader, web

from services.gateway import state
from services.gateway.errors import ApiError
from services.gateway.uploads.decode import decodable_frames
from services.voice.embedder import EMBEDDING_DIM, Embedder
from services.voice.enrol import MAX_SECONDS, EnrolmentError, enrol
from shared import keys
from shared.messages import SessionConfig, StartMessage

if TYPE_CHECKING:
    from services.gateway.live import LiveSession

log = logging.getLogger(__name__)

OWNER_HEADER = "X-ClassRec-Owner"
OWNER_RE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
VOICE_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_BYTES = 8 * 2**20
MAX_NAME = 100
MAX_VOICES = 50


def voice_error(status: int, code: str, message: str) -> ApiError:
    return ApiError(status, message, code=code)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/voices", create_voice)
    app.router.add_get("/api/voices", list_voices)
    app.router.add_delete("/api/voices/{voice}", delete_voice)


def owner_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def voices_key(owner_key: str) -> str:
    return keys.voices(owner_hash(owner_key))


def owner_of(request: web.Request) -> str:
    key = request.headers.get(OWNER_HEADER, "")
    if not OWNER_RE.match(key):
        raise voice_error(
            400,
            "no_owner",
            f"voices need the owner key in header {OWNER_HEADER} (16-128 url-safe characters)",
        )
    return key


@lru_cache(maxsize=1)
def embedder() -> Embedder:
    return Embedder()


async def read_form(request: web.Request) -> tuple[bytes, str]:
    """The form's audio file and name."""
    if not request.content_type.startswith("multipart/"):
        raise voice_error(
            400, "bad_form", "expected multipart/form-data with the audio in 'file' and a 'name'"
        )
    data, name, has_file = bytearray(), "", False
    try:
        async for part in await request.multipart():
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "file" and not has_file:
                has_file = True
                while chunk := await part.read_chunk():
                    data += chunk
                    if len(data) > MAX_BYTES:
                        raise voice_error(400, "too_large", f"the file is over {MAX_BYTES // 2**20} MB")
            elif part.name == "name":
                name = (await part.text())[: MAX_NAME + 1].strip()
    except (ValueError, AssertionError) as e:
        raise voice_error(400, "bad_form", f"malformed multipart body: {e}") from None
    if not data:
        raise voice_error(400, "no_audio", "no audio: send the lecturer's recording in the field 'file'")
    if not name or len(name) > MAX_NAME:
        raise voice_error(400, "bad_name", f"give the voice a 'name' of 1-{MAX_NAME} characters")
    return bytes(data), name


def decode(data: bytes) -> np.ndarray:
    """The file as float32 16 kHz mono, up to a little over MAX_SECONDS (longer is refused)."""
    limit = int((MAX_SECONDS + 1) * 16_000)
    parts: list[np.ndarray] = []
    n = 0
    resampler = av.AudioResampler(format="s16", layout="mono", rate=16_000)
    try:
        with av.open(io.BytesIO(data), metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise voice_error(400, "invalid_audio", "the file has no audio track")
            for frame in decodable_frames(container):
                frame.pts = None
                for out in resampler.resample(frame):
                    parts.append(out.to_ndarray().reshape(-1))
                    n += len(parts[-1])
                if n > limit:
                    break
    except av.error.FFmpegError as e:
        raise voice_error(400, "invalid_audio", f"not a decodable audio file ({type(e).__name__})") from None
    if not n:
        raise voice_error(400, "invalid_audio", "no decodable audio in the file")
    return np.concatenate(parts).astype(np.float32) / 32768.0


def enrol_file(data: bytes) -> tuple[np.ndarray, float, float]:
    audio = decode(data)
    try:
        got = enrol(audio, embedder())
    except EnrolmentError as e:
        raise voice_error(400, e.code, str(e)) from None
    return got.embedding, got.seconds, got.speech_seconds


async def create_voice(request: web.Request) -> web.Response:
    r: aioredis.Redis = request.app[state.REDIS]
    owner = owner_of(request)
    data, name = await read_form(request)
    emb, seconds, speech_s = await asyncio.to_thread(enrol_file, data)
    if await r.hlen(voices_key(owner)) >= MAX_VOICES:
        raise voice_error(409, "too_many_voices", f"at most {MAX_VOICES} voices per owner: delete one first")
    voice = secrets.token_urlsafe(9)
    record = {
        "voice": voice,
        "name": name,
        "seconds": seconds,
        "speech_seconds": speech_s,
        "created": round(time.time(), 3),
        "embedding": base64.b64encode(emb.astype("<f4").tobytes()).decode(),
    }
    await r.hset(voices_key(owner), voice, json.dumps(record))
    return web.json_response({"voice": voice, "name": name, "seconds": seconds}, status=201)


async def list_voices(request: web.Request) -> web.Response:
    raw = await request.app[state.REDIS].hgetall(voices_key(owner_of(request)))
    voices = [json.loads(v) for v in raw.values()]
    out = [{k: v[k] for k in ("voice", "name", "seconds", "created")} for v in voices]
    return web.json_response({"voices": sorted(out, key=lambda v: -v["created"])})


async def delete_voice(request: web.Request) -> web.Response:
    voice = request.match_info["voice"]
    owner = owner_of(request)
    if not VOICE_RE.match(voice) or not await request.app[state.REDIS].hdel(voices_key(owner), voice):
        raise voice_error(404, "unknown_voice", "no such voice of this owner")
    return web.json_response({"deleted": voice})


async def voice_for(r: aioredis.Redis, owner_key: str | None, voice: str) -> str | None:
    """The base64 embedding of the owner's voice, for a session's lock; None when unknown."""
    if not owner_key or not VOICE_RE.match(voice):
        return None
    raw = await r.hget(voices_key(owner_key), voice)
    if raw is None:
        return None
    emb = json.loads(raw)["embedding"]
    if len(base64.b64decode(emb)) != 4 * EMBEDDING_DIM:
        return None
    return emb


async def lock_for(session: LiveSession, start: StartMessage, config: SessionConfig) -> str | None:
    """A live start with `voice`: the voiceprint for the VAD, `config` marked locked; an unknown voice
    gets `unknown_voice` and the session goes on without a lock (nothing of it is lost)."""
    if not start.voice:
        return None
    voiceprint = await voice_for(session.r, start.owner, start.voice)
    if voiceprint is None:
        session.error(
            "unknown_voice", "no such voice of this owner; the session goes on without a voice lock"
        )
        return None
    config.voice, config.others = start.voice, start.others
    log.info("sid=%s voice lock voice=%s others=%s", session.sid, start.voice, start.others)
    return voiceprint


def upload_fields(upload: Any) -> dict[str, str | None]:
    """An upload form's voice lock: fields `voice`, `others` (drop | label), owner from the header."""
    if not upload.get("voice"):
        return {}
    return {
        "voice": upload.get("voice"),
        "others": upload.get("others") or "drop",
        "owner": upload.get("owner"),
    }


async def upload_lock(r: aioredis.Redis, start: StartMessage, config: SessionConfig) -> str | None:
    """An upload with `voice`: its voiceprint, `config` marked locked; an unknown voice is refused."""
    if not start.voice:
        return None
    voiceprint = await voice_for(r, start.owner, start.voice)
    if voiceprint is None:
        raise ApiError(400, "no such voice of this owner (header X-ClassRec-Owner)", "voice", "unknown_voice")
    config.voice, config.others = start.voice, start.others
    return voiceprint
