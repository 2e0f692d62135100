"""`POST /api/uploads` and `GET /api/uploads/{sid}`: start an upload, follow its progress."""

from __future__ import annotations

import logging
import time
from typing import Any

from aiohttp import web

from services.gateway import events, owners, state, voices
from services.gateway.errors import ApiError, unavailable
from services.gateway.sessions import SID_RE
from services.gateway.uploads.feeder import DONE, FAILED, FEEDING, TRANSCRIBING, start_upload, upload_key
from services.gateway.uploads.form import receive
from services.gateway.uploads.openai_api import openai_transcriptions
from shared.streams import REDIS_DOWN

log = logging.getLogger(__name__)
MAX_UPLOAD_BYTES = 200 * 1024 * 1024
STALE_S = 90.0


def add_routes(app: web.Application) -> None:
    """Registers the upload routes and their state on the gateway's application."""
    app[state.UPLOAD_LIMIT] = getattr(app[state.SETTINGS], "max_upload_bytes", MAX_UPLOAD_BYTES)
    app[state.UPLOADS_ACTIVE] = {}
    app.router.add_post("/api/uploads", create_upload)
    app.router.add_get("/api/uploads/{sid}", upload_progress)
    app.router.add_post("/v1/audio/transcriptions", openai_transcriptions)


async def create_upload(request: web.Request) -> web.Response:
    upload = await receive(request)  # a refusal is an ApiError, rendered by errors.py
    owner = request.headers.get(voices.OWNER_HEADER) or upload.get("owner") or ""
    upload.fields["owner"] = [owner]  # the voice lock's owner: the header, else the form's field
    owned = owners.digest(owner) if owners.OWNER_RE.fullmatch(owner) else owners.request_owner(request)
    feeder = await start_upload(request.app, upload, "en", owned)
    return web.json_response(
        {"session": feeder.sid, "status": FEEDING, "duration_s": feeder.duration_hint}, status=202
    )


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
        transcribed, ended = await events.progress(r, s.events_key(sid))
    except REDIS_DOWN as e:
        log.error("sid=%s upload progress: redis unavailable: %r", sid, e)
        raise unavailable() from None
    return web.json_response(progress_json(sid, info, transcribed, ended))
