"""Process entry point shared by every service: logging, SIGTERM/SIGINT to a stop event, heartbeats."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import time
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from shared import keys
from shared.logs import setup_logging
from shared.malloc import MMAP_THRESHOLD, return_freed_memory
from shared.metrics import start_ops_server
from shared.settings import CommonSettings
from shared.streams import REDIS_DOWN, connect, wait_for_redis
from shared.worker import StreamWorker

log = logging.getLogger(__name__)
HEARTBEAT_INTERVAL_S = 1.0
_last_beat: dict[str, float] = {}  # heartbeat key -> when it was last written


def run(
    service: str, level: str, main: Callable[[asyncio.Event], Awaitable[None]], fix_mmap: bool = True
) -> None:
    """Run `main(stop)` until it returns; SIGTERM and SIGINT set `stop` for a graceful exit.
    `fix_mmap`: fix glibc's mmap threshold (shared/malloc.py), unless the service trims its heap."""
    setup_logging(service, level)
    if fix_mmap and return_freed_memory():
        log.info("malloc mmap threshold fixed at %d bytes", MMAP_THRESHOLD)

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info("starting")
        await main(stop)
        log.info("stopped")

    asyncio.run(runner())


async def heartbeat(r: aioredis.Redis, service: str, consumer: str, info: dict, ttl: int = 10) -> None:
    """Say this worker is alive (read by the gateway's /healthz); ignores a Redis outage.

    Called after every read, so at most once per HEARTBEAT_INTERVAL_S is it written: a busy loop
    turns hundreds of times a second."""
    key = keys.heartbeat(service, consumer)
    now = time.monotonic()
    if now - _last_beat.get(key, -HEARTBEAT_INTERVAL_S) < HEARTBEAT_INTERVAL_S:
        return
    try:
        await r.set(key, json.dumps({**info, "at": time.time()}), ex=ttl)
        _last_beat[key] = now
    except REDIS_DOWN:
        pass


async def serve_worker(
    settings: CommonSettings, make: Callable[[aioredis.Redis], StreamWorker], stop: asyncio.Event
) -> None:
    """Connect (waiting for Redis), run the worker loop until `stop`, then let it hand back its work.

    The ops server (`/metrics`, `/healthz`) runs on METRICS_PORT meanwhile, when set.
    """
    r = connect(settings)
    worker: StreamWorker | None = None
    started = time.monotonic()
    ops = await start_ops_server(settings.metrics_port, lambda: worker.last_loop if worker else started)
    try:
        if await wait_for_redis(r, settings, stop):
            worker = make(r)
            await worker.run(stop)  # which hands back its work and leaves its groups, however it ends
    finally:
        if ops is not None:
            await ops.cleanup()
        await r.aclose()
