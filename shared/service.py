"""Process entry point shared by every service: logging, SIGTERM/SIGINT to a stop event, heartbeats."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import time
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from shared.logs import setup_logging
from shared.streams import REDIS_DOWN

log = logging.getLogger(__name__)
HEARTBEAT_PREFIX = "heartbeat:"


def run(service: str, level: str, main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run `main(stop)` until it returns; SIGTERM and SIGINT set `stop` for a graceful exit."""
    setup_logging(service, level)

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
    """Say this worker is alive (read by the gateway's /healthz); ignores a Redis outage."""
    try:
        key = f"{HEARTBEAT_PREFIX}{service}:{consumer}"
        await r.set(key, json.dumps({**info, "at": time.time()}), ex=ttl)
    except REDIS_DOWN:
        pass
