"""Share links: read-only access to one session for whoever holds the link.

`POST /api/sessions/{sid}/share` (the owner) -> `{"share": "<token>", "url": "/s/<token>"}`; the
token (24 random bytes) is kept only as its digest, in the archive's `shares` table, so a share
outlives Redis with the lecture. `DELETE` of the same route revokes every share of the session.
"""

from __future__ import annotations

import logging

from aiohttp import web

from services.gateway import archived
from shared.archive import DB_DOWN

log = logging.getLogger(__name__)


async def session_of(app: web.Application, share: str) -> str | None:
    """The session a share token's digest opens, None when it opens none (or there is no archive)."""
    archive = archived.archive_of(app)
    if archive is None:
        return None
    try:
        return await archive.shared_session(share)
    except DB_DOWN as e:
        log.error("share lookup: archive unreachable: %r", e)
        return None
