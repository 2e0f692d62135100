"""The gateway's aiohttp application: the page, `/ws/transcribe`, `/healthz`; Redis in app state."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import WSCloseCode, web

from services.gateway import (
    archived,
    audio,
    calendar,
    deletion,
    errors,
    follow,
    languages,
    search,
    security,
    share,
    voices,
)
from services.gateway.history import routes as history_routes
from services.gateway.live import LiveSession
from services.gateway.state import BACKGROUND, CLIENT_LIMITS, OWNER_LIMITS, REDIS, SETTINGS, SOCKETS
from services.gateway.uploads import routes as upload_routes
from shared import keys, metrics
from shared.settings import GatewaySettings
from shared.streams import REDIS_DOWN, connect
from shared.tasks import cancel_and_wait

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
REQUIRED = ("vad", "transcriber", "alerts")


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    app[REDIS] = connect(app[SETTINGS])
    yield
    # Grace timers; the VAD's idle timeout covers those sessions. Each has ended before Redis closes.
    await cancel_and_wait(list(app[BACKGROUND]))
    await app[REDIS].aclose()


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


async def healthz(request: web.Request) -> web.Response:
    """200 with the live workers per service when Redis answers; `ready` once every service is up."""
    r = request.app[REDIS]
    try:
        await r.ping()
        workers: dict[str, int] = {}
        async for key in r.scan_iter(match=f"{keys.HEARTBEAT_PREFIX}*", count=100):
            service = key.decode().split(":")[1]
            workers[service] = workers.get(service, 0) + 1
    except REDIS_DOWN as e:
        return web.json_response({"status": "redis unreachable", "error": repr(e)}, status=503)
    ready = all(workers.get(s) for s in REQUIRED)
    return web.json_response({"status": "ok", "ready": ready, "workers": workers})


async def transcribe_ws(request: web.Request) -> web.WebSocketResponse:
    s = request.app[SETTINGS]
    # Frames a little over the limit are read whole and refused with a clean close 1009 (an abrupt
    # close with unread data would reset the connection); far larger ones aiohttp cuts off itself.
    ws = web.WebSocketResponse(max_msg_size=4 * s.max_frame_bytes, heartbeat=20.0)
    await ws.prepare(request)
    limits, client = request.app[CLIENT_LIMITS], security.client_key(request, s.trust_forwarded_for)
    if not limits.acquire(client):
        await security.refuse(ws, f"too many sessions from this address (max {s.max_sessions_per_client})")
        return ws
    metrics.WS_CONNECTIONS.inc()
    request.app[SOCKETS].add(ws)
    try:
        owners = request.app[OWNER_LIMITS]
        await LiveSession(ws, request.app[REDIS], s, request.app[BACKGROUND], owners).serve()
    finally:
        metrics.WS_CONNECTIONS.dec()
        request.app[SOCKETS].discard(ws)
        limits.release(client)
    return ws


async def close_sockets(app: web.Application) -> None:
    """SIGTERM: tell every client we are going away (1001); each resumes its session elsewhere."""
    for ws in list(app[SOCKETS]):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server restarting; resume the session")


def make_app(settings: GatewaySettings | None = None) -> web.Application:
    s = settings or GatewaySettings()
    app = web.Application()
    app[SETTINGS] = s
    app[BACKGROUND] = set()
    app[SOCKETS] = set()
    app.on_shutdown.append(close_sockets)
    errors.install(app)  # ApiError and storage down rendered as JSON (outermost)
    security.install(app, s)  # token, Origin allowlist, sessions per client
    app.cleanup_ctx.append(redis_ctx)
    archived.install(app)  # the archive's pool, when DATABASE_URL is set
    app.router.add_get("/", index)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics.metrics_handler)
    app.router.add_get("/ws/transcribe", transcribe_ws)
    app.router.add_static("/static/", STATIC)
    calendar.add_routes(app)
    history_routes.add_routes(app)
    audio.add_routes(app)
    deletion.add_routes(app)
    search.add_routes(app)
    share.add_routes(app)
    follow.add_routes(app)
    upload_routes.add_routes(app)
    voices.add_routes(app)  # the voice lock's enrolled voices
    languages.add_routes(app)
    return app
