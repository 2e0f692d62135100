"""Redis Streams plumbing shared by every service: the client (`connect`, following a Sentinel
failover), waiting for Redis, consumer groups (BUSYGROUP tolerated), consumer names, and `stage`,
the one way an entry is added to a stream. The worker loop built on it is `shared/worker.py`;
what "Redis is down" means is `shared/redis_errors.py` (re-exported here as REDIS_DOWN).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import Any

import redis
import redis.asyncio as aioredis
import redis.sentinel
from redis.asyncio.client import Pipeline
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff
from redis.connection import parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.messages import Msg, to_fields
from shared.redis_errors import REDIS_DOWN
from shared.settings import CommonSettings

log = logging.getLogger(__name__)


def connect(settings: CommonSettings) -> aioredis.Redis:
    """A client whose dead connections are noticed within seconds; a command that meets a stale
    pooled connection (e.g. after a Redis restart) is retried on a fresh one.

    With REDIS_SENTINELS the client asks the sentinels for the master of REDIS_MASTER_NAME and asks
    again whenever a connection fails, so it follows a failover (REDIS_URL then gives only the
    database and the password)."""
    options: dict = dict(
        socket_connect_timeout=5,
        socket_timeout=settings.block_ms / 1000 + 10,
        socket_keepalive=True,
        health_check_interval=10,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.1), 3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        max_connections=settings.redis_max_connections,
    )
    if not settings.redis_sentinels:
        return aioredis.Redis.from_url(settings.redis_url, **options)
    url = parse_url(settings.redis_url)
    sentinel = Sentinel(
        settings.sentinel_hosts(),
        sentinel_kwargs={"socket_connect_timeout": 2, "socket_timeout": 2},
        socket_connect_timeout=options["socket_connect_timeout"],
    )
    return sentinel.master_for(
        settings.redis_master_name, db=url.get("db", 0), password=url.get("password"), **options
    )


def connect_sync(settings: CommonSettings, socket_timeout: float = 30) -> redis.Redis:
    """A blocking client for tools (the watch view), following the sentinels like `connect`."""
    if not settings.redis_sentinels:
        return redis.Redis.from_url(
            settings.redis_url, socket_connect_timeout=5, socket_timeout=socket_timeout
        )
    url = parse_url(settings.redis_url)
    sentinel = redis.sentinel.Sentinel(settings.sentinel_hosts(), sentinel_kwargs={"socket_timeout": 2})
    return sentinel.master_for(
        settings.redis_master_name,
        db=url.get("db", 0),
        password=url.get("password"),
        socket_connect_timeout=5,
        socket_timeout=socket_timeout,
    )


async def wait_for_redis(r: aioredis.Redis, settings: CommonSettings, stop: asyncio.Event) -> bool:
    """Ping until Redis answers; one log line per failed attempt, capped exponential backoff."""
    delay = 0.2
    while not stop.is_set():
        try:
            await r.ping()
            return True
        except REDIS_DOWN as e:
            log.warning("redis unreachable url=%s error=%r retry_in=%.1fs", settings.redis_url, e, delay)
            await sleep_or_stop(stop, delay)
            delay = min(delay * 2, settings.retry_max_s)
    return False


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass


async def ensure_group(r: aioredis.Redis, stream: str, group: str, start_id: str = "0") -> None:
    try:
        await r.xgroup_create(stream, group, id=start_id, mkstream=True)
    except ResponseError as e:
        if "BUSYGROUP" not in str(e):
            raise


def stage(
    r: aioredis.Redis | Pipeline,
    stream: str,
    msg: Msg | dict,
    maxlen: int,
    *,
    exact: bool = False,
    nomkstream: bool = False,
) -> Any:
    """The one way an entry is added to a stream: XADD of `msg` (a model, or entry fields as they
    are, for the dead-letter stream) trimmed to about `maxlen` (`MAXLEN ~`: Redis drops whole
    nodes of entries, which costs nothing). On a pipeline the command is staged (queued with the
    rest of its transaction); on a client it returns the awaitable.

    `exact=True` trims to exactly `maxlen` (entry by entry inside a node: slower). Only for a bound
    near or below a node's size (`stream-node-max-entries`, 100 by default): `~` keeps up to a
    node more than the bound, and never trims a stream shorter than one node.

    `nomkstream=True` adds nothing when the stream does not exist (NOMKSTREAM): for an entry that
    is only meaningful while the stream's owner keeps it (a sentence cut into a session's audio)."""
    fields = to_fields(msg) if isinstance(msg, Msg) else msg
    return r.xadd(stream, fields, maxlen=maxlen, approximate=not exact, nomkstream=nomkstream)


async def xadd(r: aioredis.Redis, stream: str, msg: Msg, maxlen: int) -> None:
    """`stage` on a client, awaited."""
    await stage(r, stream, msg, maxlen)


def consumer_name(service: str) -> str:
    return f"{service}-{socket.gethostname()}-{os.getpid()}"
