"""`GET /api/sessions/{sid}/audio`: the lecture's recorded audio (Ogg Opus), with HTTP Range.

Readable by whoever may read the session (owner or share link, `owners.py`). The file is the one
the VAD worker wrote when the session's audio ended (`services/vad/recording.py`); while the
lecture is still being recorded the answer is 409, for a session kept without audio 404. aiohttp's
FileResponse answers `Range: bytes=a-b` with 206 and the part, so a player can seek.
"""

from __future__ import annotations

from aiohttp import web

from services.gateway import owners, state
from services.gateway.errors import ApiError
from shared.recordings import opus_path, spool_path


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/sessions/{sid}/audio", session_audio)


async def session_audio(request: web.Request) -> web.StreamResponse:
    sid = request.match_info["sid"]
    found = await owners.require_reader(request, sid)
    s = request.app[state.SETTINGS]
    path = opus_path(s, sid)
    if not path.is_file():
        if found.live or spool_path(s, sid).exists():
            raise ApiError(409, "the lecture's audio is still being recorded; try again after it ends")
        raise ApiError(404, "no audio was kept for this session")
    return web.FileResponse(
        path,
        headers={
            "Content-Type": "audio/ogg",
            "Cache-Control": "private, no-cache",
            "Content-Disposition": f'inline; filename="classrec-{sid}.opus"',
        },
    )
