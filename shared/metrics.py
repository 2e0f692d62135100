"""Prometheus metrics of every service, and the small ops HTTP server a worker runs for them.

Each process registers only what it uses; names are shared so that one dashboard covers a fleet.
Workers serve `/metrics` and `/healthz` on `METRICS_PORT` (0: off); the gateway serves both on its
own port.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis.asyncio as aioredis
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

from shared.redis_errors import REDIS_DOWN

log = logging.getLogger(__name__)

SEGMENTS = Counter("classrec_segments_total", "Segments processed", ["service", "kind"])
TRANSCRIBE_SECONDS = Histogram(
    "classrec_transcribe_seconds",
    "Wall time of one transcription",
    ["kind"],
    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10),
)
BATCH_SIZE = Histogram(
    "classrec_transcribe_batch_size", "Finals decoded together in one batch", buckets=(2, 3, 4, 6, 8, 12, 16)
)
FINAL_CONTEXT = Counter(
    "classrec_final_context_total",
    "Finals with FINAL_CONTEXT_S on: decoded in context (used), or alone because finals waited (behind)",
    ["outcome"],
)
EARLY_FINALS = Counter(
    "classrec_early_finals_total",
    "Early finals (services/vad/partials.py): decoded, used by their final, or skipped (stale, or finals wait)",
    ["outcome"],
)
DROPPED_PARTIALS = Counter("classrec_dropped_partials_total", "Partials skipped as stale")
QUEUE_LAG = Gauge("classrec_queue_lag", "Entries not yet delivered to the group", ["stream", "group"])
QUEUE_LAG_SUPPORTED = Gauge(
    "classrec_queue_lag_supported",
    "1 when the server reports stream lag (Redis 7+, Valkey); 0: classrec_queue_lag is not exported",
)
QUEUE_PENDING = Gauge("classrec_queue_pending", "Entries delivered but not acknowledged", ["stream", "group"])
ACTIVE_SESSIONS = Gauge("classrec_active_sessions", "Sessions held by this process", ["service"])
WS_CONNECTIONS = Gauge("classrec_websocket_connections", "Open WebSocket connections")
ERRORS = Counter("classrec_errors_total", "Errors, by code", ["service", "code"])
ALERTS = Counter("classrec_alerts_total", "Alerts raised, by category", ["category"])
DEAD_LETTERS = Counter("classrec_dead_letters_total", "Entries moved to the dead-letter stream", ["service"])


async def update_queue_gauges(r: aioredis.Redis, streams: list[str]) -> None:
    """Lag and pending of every group on these streams (XINFO GROUPS); ignores a Redis outage."""
    for stream in streams:
        try:
            groups = await r.xinfo_groups(stream)
        except REDIS_DOWN:
            return
        except Exception:  # the stream does not exist yet
            continue
        for g in groups:
            name = g["name"].decode() if isinstance(g["name"], bytes) else g["name"]
            QUEUE_PENDING.labels(stream, name).set(g.get("pending") or 0)
            if "lag" not in g:  # Redis 6.2: no lag in XINFO; exporting 0 would say "no backlog"
                _lag_unsupported()
                continue
            QUEUE_LAG_SUPPORTED.set(1)
            if g["lag"] is not None:  # None: entries deleted in the range, Redis cannot tell
                QUEUE_LAG.labels(stream, name).set(g["lag"])


_lag_warned: list[bool] = []


def _lag_unsupported() -> None:
    if not _lag_warned:  # once per process
        _lag_warned.append(True)
        log.warning("queue lag not exported: this server does not report stream lag (needs Redis 7+)")
    QUEUE_LAG_SUPPORTED.set(0)


async def metrics_handler(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def ops_app(alive: Callable[[], float]) -> web.Application:
    """`/metrics`, and `/healthz` answering 200 while the worker loop ran within the last 30 s."""

    async def healthz(request: web.Request) -> web.Response:
        age = time.monotonic() - alive()
        status = 200 if age < 30 else 503
        return web.json_response(
            {"status": "ok" if status == 200 else "stalled", "loop_age_s": round(age, 1)}, status=status
        )

    app = web.Application()
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/healthz", healthz)
    return app


async def start_ops_server(port: int, alive: Callable[[], float]) -> web.AppRunner | None:
    if not port:
        return None
    runner = web.AppRunner(ops_app(alive), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()
    log.info("metrics and health on http://0.0.0.0:%d/metrics", port)
    return runner
