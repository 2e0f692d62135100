"""Reading a session's events (`events:{sid}`), in one place: every route and socket reads them here.

The stream holds what the session was sent (transcripts, partials among them, alerts, flags,
errors) and `alerts_done` at its end. Three ways to read it:

- `read`: what is there now, paged XRANGE (the history, the calendar, the OpenAI-compatible route);
- `follow`: from the start and then live, XREAD blocking (the live socket, followers, an upload
  waiting for its end); with `retry`, Redis going away is waited out with backoff;
- `progress`: back from the end, the newest final and whether the session has ended (upload progress).

`FirstFinals` is the rule that a final never changes: the first final of a segment wins, and a
redelivered repeat or a late partial after it is dropped. `for_client` is `follow` with that rule and
only what a client is sent, plus `alerts_done`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import redis.asyncio as aioredis

from shared.messages import CLIENT_EVENTS, AlertEvent, AlertsDone, Msg, TranscriptEvent, from_fields
from shared.settings import GatewaySettings
from shared.streams import REDIS_DOWN

log = logging.getLogger(__name__)
XRANGE_PAGE = 500
STORED_TYPES = (b"transcript", b"alert", b"flag")  # what a stored transcript is read from
BACK_PAGE, BACK_PAGES = 200, 5  # `progress` reads at most this far back


def decode(key: str, fields: dict[bytes, bytes], types: tuple[bytes, ...] | None = None) -> Msg | None:
    """The entry as its message; None for a type not in `types` (any, when None) or a malformed one."""
    if types is not None and fields.get(b"type") not in types:
        return None
    try:
        return from_fields(fields)
    except ValueError as e:
        log.warning("skipping malformed event key=%s error=%s", key, e)
        return None


@dataclass
class FirstFinals:
    """The segments whose final has been seen: the first final of a segment wins."""

    done: set[int] = field(default_factory=set)

    def admit(self, msg: Msg | None) -> bool:
        """Whether a relay passes `msg` on: not a transcript of a segment whose final was passed."""
        if not isinstance(msg, TranscriptEvent):
            return True
        if msg.segment in self.done:
            return False
        if msg.final:
            self.done.add(msg.segment)
        return True

    def first(self, msg: Msg | None) -> bool:
        """Whether `msg` is the first final of its segment (and count it)."""
        return isinstance(msg, TranscriptEvent) and msg.final and self.admit(msg)


async def read(
    r: aioredis.Redis, key: str, after: bytes | None = None, types: tuple[bytes, ...] | None = STORED_TYPES
) -> AsyncIterator[tuple[bytes, Msg | None]]:
    """(id, message or None) for every entry of the stream after `after`, paged; see `decode`."""
    cursor = "-" if after is None else "(" + after.decode()
    while True:
        entries = await r.xrange(key, min=cursor, max="+", count=XRANGE_PAGE)
        for entry_id, fields in entries:
            yield entry_id, decode(key, fields, types)
        if len(entries) < XRANGE_PAGE:
            return
        cursor = "(" + entries[-1][0].decode()


async def newest_ids(r: aioredis.Redis, keys: list[str]) -> list[bytes | None]:
    """The id of each stream's newest entry (None: empty or gone), in one round trip."""
    async with r.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.xrevrange(key, count=1)
        newest = await pipe.execute()
    return [top[0][0] if top else None for top in newest]


async def follow(
    r: aioredis.Redis,
    s: GatewaySettings,
    sid: str,
    count: int = 100,
    block_ms: Callable[[], int] | None = None,
    retry: bool = False,
) -> AsyncIterator[Msg | None]:
    """Every event of the session from its start, then live as it comes; None after a wait that
    brought nothing (the caller decides whether to go on). `block_ms` gives each wait's length
    (default `s.block_ms`); with `retry`, a lost Redis is retried with backoff up to `s.retry_max_s`,
    else its error is raised."""
    key, last, delay = s.events_key(sid), "0-0", 0.2
    while True:
        try:
            resp = await r.xread({key: last}, count=count, block=block_ms() if block_ms else s.block_ms)
            delay = 0.2
        except REDIS_DOWN as e:
            if not retry:
                raise
            log.warning("sid=%s relay lost redis error=%r retry_in=%.1fs", sid, e, delay)
            await asyncio.sleep(delay)  # backoff before the next attempt, not a synchronisation
            delay = min(delay * 2, s.retry_max_s)
            continue
        if not resp:
            yield None
        for _, entries in resp or []:
            for entry_id, fields in entries:
                last = entry_id
                msg = decode(key, fields)
                if msg is not None:
                    yield msg


async def for_client(
    r: aioredis.Redis, s: GatewaySettings, sid: str, count: int = 100, retry: bool = False
) -> AsyncIterator[Msg | None]:
    """`follow`, keeping what a client is sent (the first final of a segment wins), `alerts_done`,
    and the None of a wait that brought nothing."""
    finals = FirstFinals()
    async for msg in follow(r, s, sid, count, retry=retry):
        if msg is None or isinstance(msg, AlertsDone):
            yield msg
        elif msg.type in CLIENT_EVENTS and finals.admit(msg):
            yield msg


def alert_ident(a: AlertEvent) -> tuple:
    """What makes two alerts the same alert (an exact repeat, written twice, is dropped)."""
    return (a.segment, a.category, a.text, a.date, a.time)


def final_of(key: str, fields: dict[bytes, bytes]) -> TranscriptEvent | None:
    msg = decode(key, fields, (b"transcript",))
    return msg if isinstance(msg, TranscriptEvent) and msg.final else None


async def progress(r: aioredis.Redis, key: str) -> tuple[float, bool]:
    """(end of the newest final, whether `alerts_done` is there), reading back from the stream's end."""
    ended, top = False, "+"
    for _ in range(BACK_PAGES):
        entries = await r.xrevrange(key, max=top, min="-", count=BACK_PAGE)
        ended = ended or any(f.get(b"type") == b"alerts_done" for _, f in entries)
        ends = [m.end for _, f in entries if (m := final_of(key, f))]
        if ends:
            return max(ends), ended
        if len(entries) < BACK_PAGE:
            break
        top = "(" + entries[-1][0].decode()
    return 0.0, ended
