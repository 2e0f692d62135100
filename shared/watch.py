"""`python -m shared.watch` (`classrec-watch`): a live view of ClassRec's Redis streams, for debugging.

Every refresh (`--interval`, 1 s) shows each stream with its length and write rate, each consumer
group with its lag, pending entries and read rate, and each consumer with its pending entries and
idle time. Streams are found with `SCAN TYPE stream`; the per-session streams (`audio:*`,
`events:*`) are summarised per prefix, with the longest few shown one by one. Rates come from the
change of `entries-added` / `entries-read` between two refreshes. On a terminal the table is redrawn
in place; piped, one block is printed per refresh; `--once` prints one snapshot and exits.

`--follow SID` prints one line per message of that session as it passes: its events and audio, and
the entries of the shared streams whose `sid` is SID. Audio is shown as a size and a duration.

Redis and the stream names come from the environment (`REDIS_URL`, ...), as for every service.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.messages import (
    SAMPLE_RATE,
    AlertEvent,
    AlertsDone,
    AudioChunk,
    AudioStop,
    ErrorEvent,
    Msg,
    SegmentJob,
    SessionOpened,
    TranscriptEvent,
    TranscriptRecord,
    VadDone,
    from_fields,
)
from shared.settings import CommonSettings
from shared.streams import connect_sync

LAG_SINCE_MAJOR = 7  # XINFO GROUPS reports lag and entries-read from Redis 7 on
TOP = 3  # per-session streams shown one by one, per prefix
CLEAR = "\x1b[H\x1b[2J"
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)
NAME_WIDTH = 44


# --- figures -------------------------------------------------------------------------------------


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


def _s(v: bytes | str) -> str:
    return v.decode(errors="replace") if isinstance(v, bytes) else str(v)


def _group(info: dict) -> GroupStat:
    read = info.get("entries-read")
    if read is None and _s(info.get("last-delivered-id", b"")) == "0-0":
        read = 0  # a group that has read nothing yet
    return GroupStat(_s(info["name"]), int(info["pending"]), info.get("lag"), read)


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
            g.consumers = [ConsumerStat(_s(c["name"]), int(c["pending"]), int(c["idle"])) for c in res]


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
    keys = sorted(_s(k) for k in r.scan_iter(_type="stream", count=1000))
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


# --- rendering -----------------------------------------------------------------------------------


def _rate(now: int | None, before: int | None, dt: float) -> float | None:
    if now is None or before is None or dt <= 0:
        return None
    return max(0, now - before) / dt


def _sum_rate(now: dict[str, int | None], before: dict[str, int | None] | None, dt: float) -> float | None:
    """Summed rate over keys; a key new since `before` counts from zero (a session that just began)."""
    if before is None or dt <= 0:
        return None
    total = 0
    for k, v in now.items():
        if v is None:
            continue
        prev = before.get(k)
        total += max(0, v - (prev or 0))
    return total / dt


@dataclass
class Rates:
    """The previous snapshot's counters, by stream and by (stream, group)."""

    dt: float
    added: dict[str, int | None]
    read: dict[tuple[str, str], int | None]

    @classmethod
    def between(cls, now: Snapshot, previous: Snapshot | None) -> Rates | None:
        if previous is None:
            return None
        added = {s.key: s.entries_added for s in previous.all_streams()}
        read = {(s.key, g.name): g.entries_read for s in previous.all_streams() for g in s.groups}
        return cls(now.taken - previous.taken, added, read)

    def stream(self, s: StreamStat) -> float | None:
        return _rate(s.entries_added, self.added.get(s.key), self.dt)

    def group(self, s: StreamStat, g: GroupStat) -> float | None:
        return _rate(g.entries_read, self.read.get((s.key, g.name)), self.dt)


Cell = int | float | str | None


def _cell(v: Cell, width: int) -> str:
    if v is None:
        text = "-"
    elif isinstance(v, float):
        text = f"{v:.1f}"
    else:
        text = str(v)
    return text.rjust(width)


def _row(
    name: str,
    length: Cell = None,
    lag: Cell = None,
    pending: Cell = None,
    idle: Cell = None,
    rate: Cell = None,
) -> str:
    if len(name) > NAME_WIDTH:
        name = name[: NAME_WIDTH - 1] + "…"
    cells = [_cell(length, 9), _cell(lag, 7), _cell(pending, 7), _cell(idle, 8), _cell(rate, 8)]
    return name.ljust(NAME_WIDTH) + " ".join(cells)


HEADER = _row("STREAM / GROUP / CONSUMER", "LEN", "LAG", "PENDING", "IDLE", "MSG/S")


def render_stream(s: StreamStat, rates: Rates | None, indent: str = "") -> list[str]:
    lines = [_row(indent + s.key, s.length, rate=rates and rates.stream(s))]
    for g in s.groups:
        lag = "?" if g.lag is None else g.lag
        lines.append(
            _row(f"{indent}  group {g.name}", None, lag, g.pending, rate=rates and rates.group(s, g))
        )
        for c in g.consumers:
            lines.append(_row(f"{indent}    {c.name}", pending=c.pending, idle=f"{c.idle_ms / 1000:.1f}s"))
    return lines


def render_prefix(p: PrefixStat, rates: Rates | None, top: int) -> list[str]:
    """One row for the prefix, one per group name (summed over its streams), then the `top` longest."""
    n = len(p.streams)
    head = f"{p.prefix}*  ({n} stream{'' if n == 1 else 's'})"
    has_groups = any(s.groups for s in p.streams)
    lag = sum(s.lag or 0 for s in p.streams) if has_groups else None
    pending = sum(s.pending for s in p.streams) if has_groups else None
    added = {s.key: s.entries_added for s in p.streams}
    rate = None if rates is None else _sum_rate(added, rates.added, rates.dt)
    lines = [_row(head, p.length, lag, pending, rate=rate)]
    for name, groups in sorted(p.groups().items()):
        read = {s.key: g.entries_read for s in p.streams for g in s.groups if g.name == name}
        rate = (
            None if rates is None else _sum_rate(read, {k: rates.read.get((k, name)) for k in read}, rates.dt)
        )
        g_lag = sum(g.lag or 0 for g in groups)
        lines.append(_row(f"  group {name} (all)", None, g_lag, sum(g.pending for g in groups), rate=rate))
    for s in p.streams[:top]:
        lines.extend(render_stream(s, rates, indent="  "))
    return lines


def render(snap: Snapshot, previous: Snapshot | None = None, url: str = "", top: int = TOP) -> str:
    """The snapshot as a text table; rates need the previous snapshot."""
    rates = Rates.between(snap, previous)
    when = datetime.fromtimestamp(snap.wall).strftime("%H:%M:%S")
    lines = ["  ".join(x for x in ("classrec-watch", redact(url), snap.server, when) if x), ""]
    if not snap.lag_supported:
        lines += [
            f"LAG: not reported by {snap.server}: stream lag needs Redis {LAG_SINCE_MAJOR} or newer",
            "",
        ]
    lines.append(HEADER)
    for s in snap.streams:
        lines.extend(render_stream(s, rates))
    for p in snap.prefixes:
        lines.extend(render_prefix(p, rates, top))
    if not snap.streams and not any(p.streams for p in snap.prefixes):
        lines.append("(no streams)")
    lines.append("")
    lines.append(
        "MSG/S: entries written (stream) or delivered (group) per second; IDLE: since the consumer's last read"
    )
    return "\n".join(lines) + "\n"


def redact(url: str) -> str:
    """The URL without its password."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


# --- follow --------------------------------------------------------------------------------------


def _text(text: str, limit: int = 120) -> str:
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return json.dumps(text, ensure_ascii=False)


def _audio(pcm: bytes) -> str:
    ms = len(pcm) / 2 / SAMPLE_RATE * 1000
    return f"{len(pcm)} B {ms:.0f} ms"


def _transcript(t: TranscriptEvent) -> str:
    kind = "final" if t.final else "partial"
    stable = f" stable={_text(t.stable, 60)}" if t.stable else ""
    return f"seg={t.segment} {kind} {t.start:.2f}-{t.end:.2f}s {_text(t.text)}{stable}"


def describe(msg: Msg) -> str:
    """One line for a stream message: its type and key fields; audio as its size and duration only."""
    kind = getattr(msg, "type", type(msg).__name__)
    match msg:
        case TranscriptEvent():
            detail = _transcript(msg)
        case TranscriptRecord():
            detail = _transcript(msg.transcript)
        case AlertEvent():
            detail = f"seg={msg.segment} {msg.category} date={msg.date} time={msg.time} {_text(msg.text)}"
        case AudioChunk():
            detail = f"seq={msg.seq} {_audio(msg.pcm)}"
        case AudioStop():
            detail = f"seq={msg.seq}"
        case SegmentJob():
            kind_ = "final" if msg.final else f"partial rev={msg.rev}"
            detail = f"seg={msg.segment} {kind_} {msg.start:.2f}-{msg.end:.2f}s {_audio(msg.pcm)}"
        case SessionOpened():
            c = msg.config
            detail = f"language={c.language} timezone={c.timezone} keywords={len(c.keywords)}"
        case VadDone() | AlertsDone():
            detail = f"segments={msg.segments}"
        case ErrorEvent():
            detail = f"{msg.code} {_text(msg.message)}"
        case _:
            detail = msg.model_dump_json(exclude={"type", "pcm"})
    return f"{kind} {detail}"


def follow_keys(settings: CommonSettings, sid: str) -> dict[str, bool]:
    """The streams to follow for a session; True where entries must be filtered by `sid`."""
    shared = [
        settings.sessions_stream,
        settings.segments_stream,
        settings.partials_stream,
        settings.transcripts_stream,
    ]
    return {settings.events_key(sid): False, settings.audio_key(sid): False} | dict.fromkeys(shared, True)


def last_id(r: redis.Redis, key: str) -> str:
    """Where `$` is now: the stream's last generated id, or 0-0 if it does not exist yet."""
    try:
        return _s(r.xinfo_stream(key)["last-generated-id"])
    except ResponseError:
        return "0-0"


def follow_line(key: str, entry_id: bytes | str, fields: dict, sid: str | None) -> str | None:
    """The line for one entry, or None when it belongs to another session (`sid` given)."""
    try:
        msg = from_fields(fields)
    except ValueError as e:
        return (
            f"{_entry_time(entry_id)} {key:<16} malformed entry fields={sorted(_s(f) for f in fields)}: {e}"
        )
    if sid is not None and getattr(msg, "sid", None) != sid:
        return None
    return f"{_entry_time(entry_id)} {key:<16} {describe(msg)}"


def _entry_time(entry_id: bytes | str) -> str:
    ms = int(_s(entry_id).split("-")[0])
    return datetime.fromtimestamp(ms / 1000).strftime("%H:%M:%S.%f")[:-3]


def follow(r: redis.Redis, settings: CommonSettings, sid: str, out: TextIO) -> int:
    """Print the session's messages as they pass, until interrupted; a Redis outage is retried."""
    keys = follow_keys(settings, sid)
    ids = {k: last_id(r, k) for k in keys}
    print(f"following sid={sid} on {', '.join(keys)} (Ctrl-C quits)", file=out, flush=True)
    while True:
        try:
            resp = r.xread(ids, count=100, block=settings.block_ms)
        except REDIS_DOWN as e:
            print(f"redis unreachable at {redact(settings.redis_url)}: {e}", file=sys.stderr, flush=True)
            time.sleep(1)
            continue
        for key, entries in resp or []:
            k = _s(key)
            for entry_id, fields in entries:
                ids[k] = _s(entry_id)
                label = k if keys[k] else k.removesuffix(sid).rstrip(":")  # "events", "audio"
                line = follow_line(label, entry_id, fields, sid if keys[k] else None)
                if line is not None:
                    print(line, file=out, flush=True)


# --- command line --------------------------------------------------------------------------------


def watch(r: redis.Redis, settings: CommonSettings, args: argparse.Namespace, out: TextIO) -> int:
    """Refresh until interrupted (or once); a Redis outage is shown and retried, not fatal."""
    tty = out.isatty()
    previous: Snapshot | None = None
    while True:
        try:
            snap = snapshot(r, settings, args.top)
            text = render(snap, previous, settings.redis_url, args.top)
            previous = snap
        except REDIS_DOWN as e:
            if args.once:
                print(f"redis unreachable at {redact(settings.redis_url)}: {e}", file=sys.stderr)
                return 1
            text = f"redis unreachable at {redact(settings.redis_url)}: {e}\n"
        out.write((CLEAR + text) if tty else (text + "\n"))
        out.flush()
        if args.once:
            return 0
        time.sleep(args.interval)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="classrec-watch", description=__doc__.split("\n\n")[0])
    p.add_argument("--interval", type=float, default=1.0, help="seconds between refreshes (1)")
    p.add_argument("--once", action="store_true", help="print one snapshot and exit")
    p.add_argument("--top", type=int, default=TOP, help=f"per-session streams shown one by one ({TOP})")
    p.add_argument("--follow", metavar="SESSION", help="print a session's messages as they pass")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = CommonSettings()
    r = connect_sync(settings)
    try:
        if args.follow:
            return follow(r, settings, args.follow, sys.stdout)
        return watch(r, settings, args, sys.stdout)
    except KeyboardInterrupt:
        return 0
    finally:
        r.close()


if __name__ == "__main__":
    sys.exit(main())
