"""Redis Streams plumbing shared by every worker.

A worker is a small loop, as in arq and taskiq-redis: read a batch with `XREADGROUP COUNT n BLOCK ms`,
hand each message to `handle`, which writes its result, then `XACK`. Entries left pending by a dead
consumer are reclaimed with `XAUTOCLAIM`, following its cursor to the end. Group creation tolerates
BUSYGROUP; a lost connection or a missing group (Redis restarted) is retried with capped backoff.
Handlers get decoded messages, never Redis IDs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Iterable
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

from shared import housekeeping, metrics
from shared.messages import Msg, from_fields, to_fields
from shared.redis_errors import REDIS_DOWN
from shared.settings import CommonSettings

log = logging.getLogger(__name__)
GAUGE_INTERVAL_S = 5.0
HOUSEKEEPING_INTERVAL_S = 2.0  # acknowledged entries leave the work streams within about this


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


class StreamWorker:
    """Consumer-group loop; subclasses implement `handle` and may override `streams`."""

    group: str = "worker"

    def __init__(self, settings: CommonSettings, r: aioredis.Redis, consumer: str | None = None) -> None:
        self.settings = settings
        self.r = r
        self.consumer = consumer or consumer_name(self.group)
        self._known_groups: set[str] = set()
        self._last_claim = 0.0
        self._last_gauges = 0.0
        self._last_housekeeping = 0.0
        self.last_loop = time.monotonic()  # for the health endpoint: the loop is turning

    def streams(self) -> Iterable[str]:
        """The streams this worker reads now (may change while running)."""
        raise NotImplementedError

    async def handle(self, stream: str, msg: Msg) -> None:
        """Process one message and write its results; raise to leave it pending for a retry."""
        raise NotImplementedError

    async def after_batch(self) -> None:
        """Hook run after each read, also when it returned nothing (timers, heartbeats)."""

    async def shutdown(self) -> None:
        """Hook run once the loop has stopped (SIGTERM): hand back what this worker holds."""

    async def run(self, stop: asyncio.Event) -> None:
        delay = 0.2
        while not stop.is_set():
            try:
                await self.step()
                delay = 0.2
            except REDIS_DOWN as e:
                self._known_groups.clear()
                log.warning("redis connection lost error=%r retry_in=%.1fs", e, delay)
                await sleep_or_stop(stop, delay)
                delay = min(delay * 2, self.settings.retry_max_s)
            except ResponseError as e:
                if "NOGROUP" not in str(e):
                    raise
                log.warning("consumer group missing, recreating: %s", e)
                self._known_groups.clear()
                await sleep_or_stop(stop, delay)
                delay = min(delay * 2, self.settings.retry_max_s)

    async def step(self) -> None:
        streams = await self.prepare()
        if streams:
            await self.read(streams, self.settings.read_count, self.settings.block_ms)
        await self.after_batch()

    async def prepare(self) -> list[str]:
        """The current streams, with their groups made and idle entries reclaimed now and then."""
        self.last_loop = time.monotonic()
        streams = list(self.streams())
        if self.last_loop - self._last_gauges > GAUGE_INTERVAL_S:
            self._last_gauges = self.last_loop
            await metrics.update_queue_gauges(self.r, streams)
        for s in streams:
            if s not in self._known_groups:
                await ensure_group(self.r, s, self.group)
                self._known_groups.add(s)
        if time.monotonic() - self._last_claim > self.settings.claim_idle_ms / 2000:
            self._last_claim = time.monotonic()
            for s in streams:
                await self.reclaim(s)
            for s in streams:  # as often as reclaiming: both are about consumers that died
                await housekeeping.forget_gone_consumers(
                    self.r, s, self.group, self.settings.consumer_gone_ms, keep=self.consumer
                )
        if (
            self.settings.trim_acknowledged
            and self.last_loop - self._last_housekeeping > HOUSEKEEPING_INTERVAL_S
        ):
            self._last_housekeeping = self.last_loop
            for s in streams:
                await housekeeping.trim_acknowledged(self.r, s)
        return streams

    async def leave(self) -> None:
        """After the loop: leave every group this worker holds nothing in (a restarted worker is a new
        consumer; the old name would stay in the group for good)."""
        try:
            for s in self.streams():
                await housekeeping.leave_group(self.r, s, self.group, self.consumer)
        except REDIS_DOWN + (ResponseError,) as e:
            log.warning("could not leave the groups: %r", e)

    async def read(self, streams: list[str], count: int, block: int | None) -> int:
        """One XREADGROUP over `streams` (in that order); process what came; return how many."""
        n = 0
        for stream, entries in await self.fetch(streams, count, block):
            n += len(entries)
            await self.process(stream, entries)
        return n

    async def fetch(self, streams: list[str], count: int, block: int | None) -> list[tuple[str, list]]:
        """One XREADGROUP over `streams`: (stream, entries) for each stream that had any."""
        resp = await self.r.xreadgroup(
            self.group, self.consumer, {s: ">" for s in streams}, count=count, block=block
        )
        return [(stream.decode(), entries) for stream, entries in resp or []]

    async def reclaim(self, stream: str) -> None:
        """Take over entries idle past `claim_idle_ms` (their consumer died), following the cursor."""
        cursor = "0-0"
        while True:
            res = await self.r.xautoclaim(
                stream,
                self.group,
                self.consumer,
                self.settings.claim_idle_ms,
                cursor,
                count=self.settings.read_count,
            )
            cursor, entries = res[0], res[1]
            if entries:
                log.info("reclaimed stream=%s entries=%d", stream, len(entries))
                await self.process(stream, entries, await self.deliveries(stream, entries))
            if cursor in (b"0-0", "0-0"):
                return

    async def deliveries(self, stream: str, entries: list) -> dict[bytes, int]:
        """How many times each of these pending entries has been delivered."""
        ids = [e[0] for e in entries]
        rows = await self.r.xpending_range(
            stream, self.group, min=min(ids), max=max(ids), count=len(ids) + 100
        )
        return {row["message_id"]: int(row["times_delivered"]) for row in rows}

    async def before_handling(self, stream: str, msgs: list[Msg]) -> None:
        """Hook: every message of one read, before each is handled (e.g. to work on them as a batch)."""

    async def process(self, stream: str, entries: list, deliveries: dict[bytes, int] | None = None) -> None:
        ready: list[tuple[bytes, Msg]] = []
        for entry_id, fields in entries:
            if fields is None:  # deleted while pending
                await self.r.xack(stream, self.group, entry_id)
                continue
            try:
                msg = from_fields(fields)
            except ValueError as e:
                await self.bury(stream, entry_id, fields, f"malformed entry: {e}", None)
                continue
            if deliveries and deliveries.get(entry_id, 0) > self.settings.max_deliveries:
                await self.bury(stream, entry_id, fields, f"failed {self.settings.max_deliveries} times", msg)
                continue
            ready.append((entry_id, msg))
        if ready:
            await self.before_handling(stream, [msg for _, msg in ready])
        for entry_id, msg in ready:
            try:
                await self.handle(stream, msg)
            except REDIS_DOWN:
                raise
            except Exception:
                log.exception("handler failed stream=%s type=%s; left pending for a retry", stream, msg.type)  # type: ignore[attr-defined]
                continue
            await self.r.xack(stream, self.group, entry_id)

    async def bury(self, stream: str, entry_id: bytes, fields: dict, reason: str, msg: Msg | None) -> None:
        """Move an entry that cannot be handled to the dead-letter stream, so it is kept, not lost."""
        dead = {**fields, "origin": stream, "origin_id": entry_id, "group": self.group, "reason": reason}
        async with self.r.pipeline(transaction=True) as pipe:
            stage(pipe, self.settings.deadletter_stream, dead, self.settings.stream_maxlen)
            pipe.xack(stream, self.group, entry_id)
            await pipe.execute()
        log.error("dead-lettered stream=%s id=%s reason=%s", stream, entry_id.decode(), reason)
        metrics.DEAD_LETTERS.labels(self.group).inc()
        if msg is not None:
            await self.on_dead(stream, msg)

    async def on_dead(self, stream: str, msg: Msg) -> None:
        """Hook: a message was dead-lettered (tell its session, let it complete)."""
