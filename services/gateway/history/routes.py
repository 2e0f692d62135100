"""The history routes: the list of past sessions, each stored transcript, and the transcript as a file.

- `GET /api/sessions` — the sessions of the registry (`session:{sid}` hashes), newest first by
  `created`, `?limit=` (default 50, at most 500): `{"sessions": [...], "total": N, "limit": n}`, each
  `{id, status, created, course, language, keywords, segments, alerts, duration}`.
- `GET /api/sessions/{sid}` — `{id, status, created, config, duration, transcript, alerts}`.
- `GET /api/sessions/{sid}/transcript.{txt,srt,vtt,md}` — the transcript as a download.

Errors are `ApiError`s (`errors.py`), a JSON body `{"error": ...}`: 400 malformed session id or
limit, 404 unknown session (neither registry entry nor events) or format, 503 when Redis is
unreachable.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from services.gateway import archived, owners, state
from services.gateway.errors import ApiError
from services.gateway.flag_formats import flags_json
from services.gateway.history.formats import FORMATS
from services.gateway.history.records import (
    Entry,
    Record,
    iso,
    read_entry,
    read_record,
    scan_registry,
)
from services.gateway.history.tallies import Tally, TallyCache, parse_id
from services.gateway.paragraphs import paragraphs
from services.gateway.sessions import SID_RE, SessionStore
from shared.streams import REDIS_DOWN

log = logging.getLogger(__name__)

DEFAULT_LIMIT, MAX_LIMIT = 50, 500


def add_routes(app: web.Application) -> None:
    """Registers the history routes (and the tally cache) on the gateway's application."""
    app[state.TALLIES] = TallyCache()
    app.router.add_get("/api/sessions", list_sessions)
    app.router.add_get("/api/sessions/{sid}", session_detail)
    app.router.add_get("/api/sessions/{sid}/transcript.{ext}", transcript_file)


# --- JSON -------------------------------------------------------------------------------------


def summary_json(entry: Entry, tally: Tally) -> dict[str, Any]:
    started = parse_id(tally.first_id)[0] / 1000 if tally.first_id else None
    cfg = entry.config
    return {
        "id": entry.sid,
        "status": entry.status,
        "created": iso(entry.created if entry.created is not None else started),
        "course": cfg.get("course"),
        "language": cfg.get("language"),
        "keywords": cfg.get("keywords") or [],
        "segments": tally.segments,
        "alerts": len(tally.alerts),
        "duration": round(tally.duration, 3),
    }


def detail_json(entry: Entry, record: Record) -> dict[str, Any]:
    return {
        "id": entry.sid,
        "status": entry.status,
        "created": iso(entry.created if entry.created is not None else record.started),
        "config": entry.config,
        "duration": round(record.duration, 3),
        "transcript": [
            f.model_dump(include={"segment", "start", "end", "text", "words"}, exclude_none=True)
            for f in record.lines
        ],
        "alerts": [a.model_dump(exclude={"type"}) for a in sorted(record.alerts, key=lambda a: a.segment)],
        "flags": flags_json(record.flags, record.lines),
        "paragraphs": paragraphs(record.lines),
    }


# --- handlers ---------------------------------------------------------------------------------


def parse_limit(request: web.Request) -> int:
    raw = request.query.get("limit", str(DEFAULT_LIMIT))
    try:
        limit = int(raw)
    except ValueError:
        raise ApiError(400, "limit must be an integer") from None
    if limit < 1:
        raise ApiError(400, "limit must be at least 1")
    return min(limit, MAX_LIMIT)


def may_list(request: web.Request, auth_token: str | None) -> bool:
    """Listing reveals session ids (which grant reading and resuming a session started without an
    owner): without a token, only a client on this machine (the `make run` laptop case) may list
    those. An owner lists only its own sessions, which nobody else can open: from anywhere."""
    if auth_token or owners.request_owner(request):
        return True  # the security middleware has already checked the token
    peer = request.remote or ""
    return peer in ("127.0.0.1", "::1", "localhost") or peer.startswith("127.")


async def list_sessions(request: web.Request) -> web.Response:
    limit = parse_limit(request)
    r, s = request.app[state.REDIS], request.app[state.SETTINGS]
    if not may_list(request, s.auth_token):
        raise ApiError(403, "listing sessions from another machine needs AUTH_TOKEN to be set")
    owner = owners.request_owner(request)
    try:
        entries = [e for e in await scan_registry(r, SessionStore(r, s)) if e.owner == owner]
        entries.sort(key=lambda e: e.created or 0.0, reverse=True)
        page = entries[:limit]
        tallies = await request.app[state.TALLIES].tallies(r, [s.events_key(e.sid) for e in page])
    except REDIS_DOWN as e:
        log.error("history list: redis unavailable: %r", e)
        raise ApiError(503, "storage unavailable, try again") from None
    sessions = [summary_json(e, t) for e, t in zip(page, tallies, strict=True)]
    sessions, total = await archived.merge_list(request.app, owner, sessions, [e.sid for e in entries], limit)
    return web.json_response({"sessions": sessions, "total": total, "limit": limit})


async def load(request: web.Request) -> tuple[Entry, Record]:
    """The session of the URL, with its record; raises the JSON 400/404/503."""
    sid = request.match_info["sid"]
    if not SID_RE.fullmatch(sid):
        raise ApiError(400, "malformed session id")
    r, s = request.app[state.REDIS], request.app[state.SETTINGS]
    row = await archived.session(request.app, sid)
    try:
        entry = await read_entry(r, SessionStore(r, s), sid)
        owner = entry.owner if entry is not None else row.owner if row is not None else None
        if not await owners.may_read(request, sid, owner):
            raise ApiError(404, "unknown session")  # another owner's: it does not exist
        if row is not None and row.complete:  # the archive's copy is the whole lecture
            return await archived.record(request.app, row)
        key = s.events_key(sid)
        if entry is None and not await r.exists(key):
            if row is not None:  # Redis lost it before its end: what the archive has
                return await archived.record(request.app, row)
            raise ApiError(404, "unknown session")
        record = await read_record(r, key)
    except REDIS_DOWN as e:
        log.error("sid=%s history: redis unavailable: %r", sid, e)
        raise ApiError(503, "storage unavailable, try again") from None
    return entry or Entry(sid), record


async def session_detail(request: web.Request) -> web.Response:
    entry, record = await load(request)
    return web.json_response(detail_json(entry, record))


async def transcript_file(request: web.Request) -> web.Response:
    ext = request.match_info["ext"]
    if ext not in FORMATS:
        raise ApiError(404, f"unknown format {ext!r}: use txt, srt, vtt or md")
    entry, record = await load(request)
    record.base_url = f"{request.scheme}://{request.host}"
    content_type, render = FORMATS[ext]
    return web.Response(
        text=render(entry, record),
        content_type=content_type,
        charset="utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="classrec-{entry.sid}.{ext}"',
            "Cache-Control": "no-cache",
        },
    )
