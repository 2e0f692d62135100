"""A past session read back from Redis: its registry entry and its events.

A transcript is read back from the session's `events:{sid}` stream (`events.read`): finals only (a partial is never
part of a stored transcript), the first final of each segment (a redelivered repeat is dropped), in
segment order, empty texts skipped; alerts with exact repeats dropped. `created` is ISO 8601 UTC
(the registry's, else the time of the first event). `duration` is the end of the last final.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from services.gateway import events
from services.gateway.events import FirstFinals, alert_ident
from services.gateway.sessions import SID_RE, SessionStore
from shared.messages import AlertEvent, FlagEvent, Msg, TranscriptEvent

log = logging.getLogger(__name__)


# --- reading ----------------------------------------------------------------------------------


@dataclass
class Entry:
    """A session's registry entry (`status`, `created`, `config` are None/{} when it expired)."""

    sid: str
    status: str | None = None
    created: float | None = None
    config: dict[str, Any] = field(default_factory=dict)
    owner: str | None = None  # digest of the owner key (owners.py); None: no owner


REGISTRY_FIELDS = ("status", "created", "config", "owner")


def parse_entry(
    sid: str, status: bytes | None, created: bytes | None, config: bytes | None, owner: bytes | None = None
) -> Entry:
    entry = Entry(sid, status.decode() if status else None, owner=owner.decode() if owner else None)
    try:
        entry.created = float(created) if created else None
    except ValueError:
        pass
    try:
        parsed = json.loads(config) if config else {}
        entry.config = parsed if isinstance(parsed, dict) else {}
    except ValueError:
        pass
    return entry


async def read_entry(r: aioredis.Redis, store: SessionStore, sid: str) -> Entry | None:
    row = await r.hmget(store.key(sid), *REGISTRY_FIELDS)
    if all(v is None for v in row):
        return None
    return parse_entry(sid, *row)


async def scan_registry(r: aioredis.Redis, store: SessionStore) -> list[Entry]:
    """Every registry entry, in no particular order (keys that are not session ids are skipped)."""
    prefix = store.key("")
    sids = []
    async for key in r.scan_iter(match=f"{prefix}*", count=1000):
        sid = key.decode()[len(prefix) :]
        if SID_RE.fullmatch(sid):
            sids.append(sid)
    async with r.pipeline(transaction=False) as pipe:
        for sid in sids:
            pipe.hmget(store.key(sid), *REGISTRY_FIELDS)
        rows = await pipe.execute(raise_on_error=False)
    return [
        parse_entry(sid, *row)
        for sid, row in zip(sids, rows, strict=True)
        if isinstance(row, list) and any(v is not None for v in row)
    ]


@dataclass
class Record:
    """A session's stored transcript: the first final of each segment, and its alerts."""

    finals: dict[int, TranscriptEvent] = field(default_factory=dict)
    alerts: list[AlertEvent] = field(default_factory=list)
    first_id: bytes | None = None
    _first_finals: FirstFinals = field(default_factory=FirstFinals)
    _seen_alerts: set[tuple] = field(default_factory=set)
    flags_by_id: dict[str, FlagEvent] = field(default_factory=dict)
    base_url: str | None = None  # the page's address, for links into the playback (Markdown)

    def add(self, entry_id: bytes, msg: Msg | None) -> None:
        self.first_id = self.first_id or entry_id
        if self._first_finals.first(msg):
            assert isinstance(msg, TranscriptEvent)
            self.finals[msg.segment] = msg
        elif isinstance(msg, AlertEvent) and alert_ident(msg) not in self._seen_alerts:
            self._seen_alerts.add(alert_ident(msg))
            self.alerts.append(msg)
        elif isinstance(msg, FlagEvent):
            self.flags_by_id.setdefault(msg.id, msg)

    @property
    def flags(self) -> list[FlagEvent]:
        """The session's flags (bookmarks and doubts), by time."""
        return sorted(self.flags_by_id.values(), key=lambda f: (f.start, f.end, f.id))

    @property
    def lines(self) -> list[TranscriptEvent]:
        """The finals with text, in segment order."""
        return [self.finals[s] for s in sorted(self.finals) if self.finals[s].text.strip()]

    @property
    def duration(self) -> float:
        return max((f.end for f in self.finals.values()), default=0.0)

    @property
    def started(self) -> float | None:
        """Unix time of the first event (its stream id's milliseconds)."""
        return int(self.first_id.split(b"-")[0]) / 1000 if self.first_id else None


async def read_record(r: aioredis.Redis, key: str) -> Record:
    record = Record()
    async for entry_id, msg in events.read(r, key):
        record.add(entry_id, msg)
    return record


def iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds") if ts is not None else None
