"""The worker loop every stream consumer runs (vad, transcriber, alerts, archive), as in arq and taskiq-redis.

A worker declares its consumer `group` and its `reads`, in order: each turn makes them (XREADGROUP
COUNT n BLOCK ms), hands each message to `handle`, which writes its result, then XACKs it. Entries
left pending by a dead consumer are reclaimed with XAUTOCLAIM, following its cursor to the end; an
entry delivered MAX_DELIVERIES times, or malformed, goes to the dead-letter stream. Group creation
tolerates BUSYGROUP; a lost connection or a missing group (Redis restarted) is retried with capped
backoff. Handlers get decoded messages, never Redis IDs. Tests turn a worker with `run_once`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from shared import housekeeping, metrics
from shared.messages import Msg, from_fields
from shared.redis_errors import REDIS_DOWN
from shared.settings import CommonSettings
from shared.streams import consumer_name, ensure_group, sleep_or_stop, stage

log = logging.getLogger(__name__)
GAUGE_INTERVAL_S = 5.0
HOUSEKEEPING_INTERVAL_S = 2.0  # acknowledged entries leave the work streams within about this
S = TypeVar("S", bound=CommonSettings)


# A read's count or block: a number, or a function of the worker and the entries this turn took so far.
Amount = int | None | Callable[[Any, int], int | None]


def read_count(worker: StreamWorker, taken: int) -> int:
    """READ_COUNT, the default count of a read."""
    return worker.settings.read_count


def block_ms(worker: StreamWorker, taken: int) -> int:
    """BLOCK_MS, the default block of a read."""
    return worker.settings.block_ms


@dataclass(frozen=True)
class Read:
    """One XREADGROUP of a worker's loop turn; a worker lists its reads, in order, in `reads`.

    `streams`: the settings fields naming the streams read (in priority order: Redis answers from
    the first that has entries first). `count`: at most this many entries (default READ_COUNT).
    `block`: milliseconds to wait for one (default BLOCK_MS; None: do not wait). `when`: whether the
    read is made, given the worker and how many entries the turn took before it (default: always).
    A count or a block may be a function of the worker and that number too.
    """

    streams: tuple[str, ...]
    count: Amount = read_count
    block: Amount = block_ms
    when: Callable[[Any, int], bool] | None = None

    def names(self, settings: CommonSettings) -> list[str]:
        return [getattr(settings, f) for f in self.streams]

    @staticmethod
    def amount(value: Amount, worker: StreamWorker, taken: int) -> int | None:
        return value(worker, taken) if callable(value) else value


class StreamWorker(Generic[S]):
    """Consumer-group loop: each turn makes the worker's `reads` in order, then processes what they
    took, stream by stream (entries of one stream from several reads together, as one batch).
    Subclasses declare `group` and `reads` and implement `handle`."""

    group: str = "worker"
    reads: tuple[Read, ...] = ()

    def __init__(self, settings: S, r: aioredis.Redis, consumer: str | None = None) -> None:
        self.settings = settings
        self.r = r
        self.consumer = consumer or consumer_name(self.group)
        self.stream_names = list(dict.fromkeys(n for read in self.reads for n in read.names(settings)))
        self._known_groups: set[str] = set()
        self._last_claim = 0.0
        self._last_gauges = 0.0
        self._last_housekeeping = 0.0
        self.last_loop = time.monotonic()  # for the health endpoint: the loop is turning

    def streams(self) -> list[str]:
        """The streams this worker reads: those of its reads, each once, in order."""
        return self.stream_names

    async def handle(self, stream: str, msg: Msg) -> None:
        """Process one message and write its results; raise to leave it pending for a retry."""
        raise NotImplementedError

    async def before_reads(self) -> None:
        """Hook run at the start of each turn, before its reads (e.g. to size them)."""

    async def on_taken(self, stream: str, entries: list) -> None:
        """Hook: the entries this turn's reads took from `stream`, before they are processed."""

    async def after_batch(self) -> None:
        """Hook run after each turn, also when it took nothing (timers, heartbeats)."""

    async def shutdown(self) -> None:
        """Hook run once the loop has stopped (SIGTERM, or an error): hand back what this worker holds."""

    async def run(self, stop: asyncio.Event) -> None:
        """Turn until `stop`, riding out Redis outages; then, whatever ended the loop, `shutdown` and
        leave the groups."""
        delay = 0.2
        try:
            while not stop.is_set():
                try:
                    await self.run_once()
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
        finally:
            try:
                await self.shutdown()
            finally:
                await self.leave()

    async def run_once(self, reclaim: bool = False) -> int:
        """One turn: groups made, idle entries reclaimed now and then (`reclaim=True`: now), the
        reads made and what they took processed, then `after_batch`. Returns how many were taken."""
        if reclaim:
            self._last_claim = 0.0
        streams = await self.prepare()
        taken: dict[str, list] = {}
        n = 0
        if streams:
            await self.before_reads()
            for read in self.reads:
                if read.when is not None and not read.when(self, n):
                    continue
                count, block = read.amount(read.count, self, n), read.amount(read.block, self, n)
                for stream, entries in await self.fetch(read.names(self.settings), count, block):
                    taken.setdefault(stream, []).extend(entries)
                    n += len(entries)
            for stream, entries in taken.items():
                await self.on_taken(stream, entries)
                await self.process(stream, entries)
        await self.after_batch()
        return n

    async def prepare(self) -> list[str]:
        """The streams, with their groups made and idle entries reclaimed now and then."""
        self.last_loop = time.monotonic()
        streams = self.streams()
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
                log.exception("handler failed stream=%s type=%s; left pending for a retry", stream, msg.type)
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
