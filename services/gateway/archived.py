"""The gateway's side of the archive: its pool in the app, and past sessions read back from it.

The history routes (`history/routes.py`) serve a session from the archive once its copy there is
complete (ended, a final for every utterance: `ArchivedSession.complete`; so Redis's retention can
stay short), or when Redis no longer has it at all; a session still going,
or one that ended before there was an archive, is served from Redis as before. `GET /api/sessions`
lists the union of both. Without `DATABASE_URL` there is no archive and everything is Redis's; when
the database is unreachable the routes fall back to Redis (and say so in the log).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from services.gateway import state
from services.gateway.errors import ApiError
from services.gateway.flags import FlagStore
from services.gateway.history.records import Entry, Record, iso
from services.gateway.sessions import ENDED, LIVE
from shared.archive import DB_DOWN, Archive, ArchivedSession
from shared.db import connect_pool

log = logging.getLogger(__name__)


def install(app: web.Application) -> None:
    """Opens the archive's pool with the app when DATABASE_URL is set."""
    if app[state.SETTINGS].database_url:
        app.cleanup_ctx.append(_pool_ctx)


async def _pool_ctx(app: web.Application) -> AsyncIterator[None]:
    pool = await connect_pool(app[state.SETTINGS].database_url or "", min_size=1, max_size=10)
    app[state.ARCHIVE] = Archive(pool)
    yield
    await pool.close()


def archive_of(app: web.Application) -> Archive | None:
    return app.get(state.ARCHIVE)


def require(request: web.Request) -> Archive:
    """The archive, or a JSON 503 for routes that cannot work without one."""
    archive = archive_of(request.app)
    if archive is None:
        raise ApiError(503, "this server keeps no archive (DATABASE_URL)")
    return archive


async def session(app: web.Application, sid: str) -> ArchivedSession | None:
    """The archived session, or None (no archive, not archived, or the database unreachable)."""
    archive = archive_of(app)
    if archive is None:
        return None
    try:
        return await archive.session(sid)
    except DB_DOWN as e:
        log.error("sid=%s archive unreachable, serving from redis: %r", sid, e)
        return None


def entry_of(row: ArchivedSession) -> Entry:
    return Entry(row.sid, ENDED if row.ended else LIVE, row.created, row.config, row.owner)


async def record(app: web.Application, row: ArchivedSession) -> tuple[Entry, Record]:
    archive = archive_of(app)
    assert archive is not None
    rec = Record()
    for final in await archive.finals(row.sid):
        rec.finals[final.segment] = final
    rec.alerts = await archive.alerts(row.sid)
    rec.flags_by_id = {f.id: f for f in await archive.flags(row.sid)}
    # Flags are kept by the gateway (flags.py) with the session in Redis; the archive has a table for
    # them but no writer yet, so they are read from there (as long as SESSION_RETENTION_S keeps them).
    app_r, app_s = app[state.REDIS], app[state.SETTINGS]
    for flag in await FlagStore(app_r, app_s).list(row.sid):
        rec.flags_by_id.setdefault(flag.id, flag)
    return entry_of(row), rec


def summary(row: ArchivedSession) -> dict[str, Any]:
    cfg = row.config
    return {
        "id": row.sid,
        "status": ENDED if row.ended else LIVE,
        "created": iso(row.created),
        "course": cfg.get("course"),
        "language": cfg.get("language"),
        "keywords": cfg.get("keywords") or [],
        "segments": row.lines,
        "alerts": row.alerts,
        "duration": round(row.duration, 3),
    }


async def merge_list(
    app: web.Application, owner: str | None, listed: list[dict[str, Any]], redis_ids: list[str], limit: int
) -> tuple[list[dict[str, Any]], int]:
    """The Redis page of the list merged with the archive's: an ended archived session is shown as
    archived, the others as Redis has them; newest first, `limit` of them, and the union's size."""
    archive = archive_of(app)
    if archive is None:
        return listed, len(redis_ids)
    try:
        rows, archived_total = await archive.sessions_of(owner, limit)
        also_archived = await archive.known(redis_ids)
    except DB_DOWN as e:
        log.error("history list: archive unreachable, listing redis only: %r", e)
        return listed, len(redis_ids)
    by_id = {s["id"]: s for s in listed}
    for row in rows:
        if row.complete or row.sid not in by_id:
            by_id[row.sid] = summary(row)
    merged = sorted(by_id.values(), key=lambda s: s["created"] or "", reverse=True)[:limit]
    return merged, archived_total + len(set(redis_ids) - also_archived)
