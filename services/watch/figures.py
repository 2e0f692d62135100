"""The figures of the watch view: every stream, group and consumer of the Redis in use, in one snapshot."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import redis

from shared.settings import CommonSettings

LAG_SINCE_MAJOR = 7  # XINFO GROUPS reports lag and entries-read from Redis 7 on
TOP = 3  # per-session streams shown one by one, per prefix
CLEAR = "\x1b[H\x1b[2J"
NAME_WIDTH = 44


@dataclass
class ConsumerStat:
    name: str
    pending: int
    idle_ms: int


@dataclass
class GroupStat:
    name: str
    pending: int
    lag: int | None  # None: Redis cannot tell (entries deleted in the range)
    entries_read: int | None
    consumers: list[ConsumerStat] = field(default_factory=list)


@dataclass
class StreamStat:
    key: str
    length: int
    entries_added: int | None  # every entry ever added (trimmed ones too)
    groups: list[GroupStat] = field(default_factory=list)

    @property
    def lag(self) -> int | None:
        lags = [g.lag for g in self.groups]
        return None if None in lags else sum(lags)  # type: ignore[arg-type]

    @property
    def pending(self) -> int:
        return sum(g.pending for g in self.groups)


@dataclass
class PrefixStat:
    """The per-session streams of one prefix (`audio:`, `events:`), longest first."""

    prefix: str
    streams: list[StreamStat]

    @property
    def length(self) -> int:
        return sum(s.length for s in self.streams)

    def groups(self) -> dict[str, list[GroupStat]]:
        """Every group of these streams, by group name."""
        out: dict[str, list[GroupStat]] = {}
        for s in self.streams:
            for g in s.groups:
                out.setdefault(g.name, []).append(g)
        return out


@dataclass
class Snapshot:
    taken: float  # time.monotonic(), for rates
    wall: float  # time.time(), for the header
    streams: list[StreamStat]  # shared streams, one by one
    prefixes: list[PrefixStat]
    server: str = ""  # "valkey 8.1.8"
    lag_supported: bool = True  # XINFO GROUPS reports lag (Redis 7 and newer)

    def all_streams(self) -> Iterator[StreamStat]:
        yield from self.streams
        for p in self.prefixes:
            yield from p.streams


def as_str(v: bytes | str) -> str:
    return v.decode(errors="replace") if isinstance(v, bytes) else str(v)


def _group(info: dict) -> GroupStat:
    read = info.get("entries-read")
    if read is None and as_str(info.get("last-delivered-id", b"")) == "0-0":
        read = 0  # a group that has read nothing yet
    return GroupStat(as_str(info["name"]), int(info["pending"]), info.get("lag"), read)


def _added_from_groups(groups: list[GroupStat]) -> int | None:
    """entries-added is entries-read + lag of any group that knows both (saves an XINFO STREAM)."""
    for g in groups:
        if g.lag is not None and g.entries_read is not None:
            return g.entries_read + g.lag
    return None


def stream_stats(r: redis.Redis, keys: list[str]) -> list[StreamStat]:
    """Length, groups and entries-added of each stream; streams deleted meanwhile are left out."""
    pipe = r.pipeline(transaction=False)
    for k in keys:
        pipe.xlen(k)
        pipe.xinfo_groups(k)
    res = pipe.execute(raise_on_error=False)
    stats = []
    for i, k in enumerate(keys):
        length, groups = res[2 * i], res[2 * i + 1]
        if isinstance(groups, Exception) or isinstance(length, Exception):
            continue
        gs = [_group(g) for g in groups]
        stats.append(StreamStat(k, int(length), _added_from_groups(gs), gs))
    _fill_entries_added(r, [s for s in stats if s.entries_added is None])
    return stats


def _fill_entries_added(r: redis.Redis, stats: list[StreamStat]) -> None:
    pipe = r.pipeline(transaction=False)
    for s in stats:
        pipe.xinfo_stream(s.key)
    for s, info in zip(stats, pipe.execute(raise_on_error=False), strict=True):
        if isinstance(info, dict):
            s.entries_added = info.get("entries-added")


def fill_consumers(r: redis.Redis, stats: Iterable[StreamStat]) -> None:
    """XINFO CONSUMERS of every group of `stats`."""
    pairs = [(s, g) for s in stats for g in s.groups]
    pipe = r.pipeline(transaction=False)
    for s, g in pairs:
        pipe.xinfo_consumers(s.key, g.name)
    for (_, g), res in zip(pairs, pipe.execute(raise_on_error=False), strict=True):
        if isinstance(res, list):
            g.consumers = [ConsumerStat(as_str(c["name"]), int(c["pending"]), int(c["idle"])) for c in res]


def shared_order(settings: CommonSettings, keys: Iterable[str]) -> list[str]:
    """The configured shared streams first, in pipeline order, then any other stream by name."""
    known = [
        settings.sessions_stream,
        settings.segments_stream,
        settings.partials_stream,
        settings.transcripts_stream,
    ]
    keys = set(keys)
    return [k for k in known if k in keys] + sorted(keys - set(known))


def snapshot(r: redis.Redis, settings: CommonSettings | None = None, top: int = TOP) -> Snapshot:
    """Every stream's figures now; consumers for the shared streams and the `top` longest per prefix."""
    settings = settings or CommonSettings()
    prefixes = (settings.audio_prefix, settings.events_prefix)
    keys = sorted(as_str(k) for k in r.scan_iter(_type="stream", count=1000))
    by_key = {s.key: s for s in stream_stats(r, keys)}
    shared = [by_key[k] for k in shared_order(settings, by_key) if not k.startswith(prefixes)]
    per_prefix = []
    for p in prefixes:
        streams = sorted((s for k, s in by_key.items() if k.startswith(p)), key=lambda s: (-s.length, s.key))
        per_prefix.append(PrefixStat(p, streams))
    fill_consumers(r, shared + [s for p in per_prefix for s in p.streams[:top]])
    server, major = server_version(r)
    return Snapshot(time.monotonic(), time.time(), shared, per_prefix, server, major >= LAG_SINCE_MAJOR)


def server_version(r: redis.Redis) -> tuple[str, int]:
    """The server's name and version ("valkey 8.1.8") and its Redis-compatible major version."""
    info = r.info("server")
    version = str(info.get("redis_version", "0"))
    name = "valkey" if "valkey_version" in info or info.get("server_name") == "valkey" else "redis"
    shown = str(info.get("valkey_version", version))
    return f"{name} {shown}", int(version.split(".")[0] or 0)
