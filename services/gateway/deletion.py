"""`DELETE /api/sessions/{sid}`: the owner removes a lecture everywhere, its audio included.

Archive rows (session, finals, alerts, flags, shares; a tombstone keeps late archive messages
from bringing it back), every Redis key of the session, and the audio files. A lecture still being
recorded is refused with 409 (stop it first: its workers would write to it again). To another owner
the session does not exist (404). Answers 200 `{"deleted": sid}`.
"""

from __future__ import annotations

import json
import logging

from aiohttp import web

from services.gateway import archived, owners, state
from shared import keys, recordings

log = logging.getLogger(__name__)


def add_routes(app: web.Application) -> None:
    app.router.add_delete("/api/sessions/{sid}", delete_session)


async def delete_session(request: web.Request) -> web.Response:
    sid = request.match_info["sid"]
    found = await owners.require_owner(request, sid)
    if found.live:
        raise web.HTTPConflict(
            text=json.dumps({"error": "the lecture is still being recorded: stop it first"}),
            content_type="application/json",
        )
    archive = archived.archive_of(request.app)
    if archive is not None:
        await archive.delete(sid)
    r, s = request.app[state.REDIS], request.app[state.SETTINGS]
    # Every per-session Redis key: registry, flags, worker state, events, audio.
    await r.delete(*keys.session_keys(sid), s.events_key(sid), s.audio_key(sid))
    recordings.remove(s, sid)
    log.info("sid=%s deleted by its owner", sid)
    return web.json_response({"deleted": sid})
