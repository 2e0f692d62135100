"""The watch view's table: a snapshot (and the one before it, for rates) as text."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

from services.watch.figures import GroupStat, PrefixStat, Snapshot, StreamStat

LAG_SINCE_MAJOR = 7  # XINFO GROUPS reports lag and entries-read from Redis 7 on
TOP = 3  # per-session streams shown one by one, per prefix
CLEAR = "\x1b[H\x1b[2J"
NAME_WIDTH = 44


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
