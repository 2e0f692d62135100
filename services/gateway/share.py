"""Share links: read-only access to one session for whoever holds the link.

`POST /api/sessions/{sid}/share` (the owner) -> `{"share": "<token>", "url": "/s/<token>"}`; the
token (24 random bytes) is kept only as its digest, in the archive's `shares` table, so a share
outlives Redis with the lecture. `DELETE` of the same route revokes every share of the session.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

from aiohttp import web

from services.gateway import archived, owners, state
from services.gateway.errors import ApiError
from services.gateway.history.records import read_entry
from services.gateway.sessions import SessionStore
from shared.archive import DB_DOWN

log = logging.getLogger(__name__)
PAGE = Path(__file__).parent / "static" / "index.html"


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/sessions/{sid}/share", create_share)
    app.router.add_delete("/api/sessions/{sid}/share", revoke_shares)
    app.router.add_get("/s/{token}", share_page)


async def create_share(request: web.Request) -> web.Response:
    sid = request.match_info["sid"]
    found = await owners.require_owner(request, sid)
    archive = archived.require(request)
    r, s = request.app[state.REDIS], request.app[state.SETTINGS]
    entry = await read_entry(r, SessionStore(r, s), sid)
    config = entry.config if entry is not None else {}
    token = secrets.token_urlsafe(24)
    try:
        await archive.add_share(sid, owners.digest(token), found.owner, config)
    except DB_DOWN as e:
        log.error("sid=%s share: archive unreachable: %r", sid, e)
        raise ApiError(503, "the archive is unreachable, try again") from None
    log.info("sid=%s share link made", sid)
    return web.json_response({"share": token, "url": f"/s/{token}"}, status=201)


async def revoke_shares(request: web.Request) -> web.Response:
    sid = request.match_info["sid"]
    await owners.require_owner(request, sid)
    revoked = await archived.require(request).revoke_shares(sid)
    log.info("sid=%s share links revoked n=%d", sid, revoked)
    return web.json_response({"revoked": revoked})


async def share_page(request: web.Request) -> web.FileResponse:
    """The page, which on /s/<token> follows the shared lecture (read-only) instead of recording."""
    return web.FileResponse(PAGE, headers={"Cache-Control": "no-cache"})
