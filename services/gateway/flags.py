"""Flags: a student's bookmarks and doubts at moments of a session, kept with the session.

The one place flags are written and read (the archive picks them up through `FlagStore.list`):

- `FlagStore.add(sid, FlagMessage)` keeps a flag and returns it with whether it is new. Its id is
  derived from the session and the flag itself, so a client that sends the same flag again (it could
  not tell whether the first one arrived before its connection dropped) gets the same flag back and
  nothing doubles. A new flag is written, in one transaction, to `flags:{sid}` (hash id -> the
  `FlagEvent` JSON) and to the session's `events:{sid}` stream, where the live socket relays it to
  the client as the confirmation, a resume replays it, and followers see it.
- `FlagStore.list(sid)` is every flag of the session, by time.
- `quote(flag, finals)` is the transcript said during the flag (by word timings when the finals have
  them, else the finals that overlap it), for exports and the lecture view.

Redis key: `flags:{sid}` (hash), kept as long as the session's events (`SESSION_RETENTION_S`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import redis.asyncio as aioredis

from shared import keys
from shared.messages import FlagEvent, FlagMessage, TranscriptEvent, to_fields
from shared.settings import GatewaySettings

QUOTE_SLACK_S = 0.25  # a flag shorter than twice this is a moment: the words this close to it
MAX_QUOTE_WORDS = 60


# Keep the flag and write its event in one step, once per id: KEYS flags, events; ARGV id, json, type,
# limit, ttl, maxlen. 1: new, 0: kept before, -1: the session has too many flags.
_ADD = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[4]) then return -1 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]))
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'type', ARGV[3], 'json', ARGV[2])
return 1
"""


class TooManyFlags(Exception):
    """The session already has `max_flags_per_session` flags."""


def flag_id(sid: str, msg: FlagMessage) -> str:
    """The same flag of the same session always gets the same id."""
    raw = f"{sid}\0{msg.start:.2f}\0{msg.end:.2f}\0{msg.note}".encode()
    return hashlib.sha256(raw).hexdigest()[:16]


class FlagStore:
    """Reads and writes the flags of sessions."""

    def __init__(self, r: aioredis.Redis, settings: GatewaySettings) -> None:
        self.r, self.s = r, settings

    def key(self, sid: str) -> str:
        return keys.flags(sid)

    async def add(self, sid: str, msg: FlagMessage) -> tuple[FlagEvent, bool]:
        """The flag as kept, and True when it was not kept before; raises TooManyFlags."""
        flag = FlagEvent(
            id=flag_id(sid, msg), start=round(msg.start, 2), end=round(msg.end, 2), note=msg.note
        )
        fields = to_fields(flag)
        result = await self.r.eval(
            _ADD,
            2,
            self.key(sid),
            self.s.events_key(sid),
            flag.id,
            fields["json"],
            fields["type"],
            self.s.max_flags_per_session,
            self.s.session_retention_s,
            self.s.stream_maxlen,
        )
        if result == -1:
            raise TooManyFlags(f"a session keeps at most {self.s.max_flags_per_session} flags")
        return flag, result == 1

    async def list(self, sid: str) -> list[FlagEvent]:
        """Every flag of the session, by start time."""
        raw = await self.r.hgetall(self.key(sid))
        flags = [FlagEvent.model_validate_json(v) for v in raw.values()]
        return sorted(flags, key=lambda f: (f.start, f.end, f.id))


def quote(flag: FlagEvent, finals: Iterable[TranscriptEvent]) -> str:
    """What was said during the flag: its words (by word timings), else the finals it overlaps."""
    finals = [f for f in finals if f.text.strip()]
    lo, hi = flag.start, flag.end
    if hi - lo < 2 * QUOTE_SLACK_S:  # a moment rather than a span: the words around it
        lo, hi = lo - QUOTE_SLACK_S, hi + QUOTE_SLACK_S
    words = [w for f in finals if f.words for (s, e, w) in f.words if e > lo and s < hi]
    if words:
        text = " ".join(words[:MAX_QUOTE_WORDS])
        return text + (" …" if len(words) > MAX_QUOTE_WORDS else "")
    around = [f.text.strip() for f in finals if f.end >= lo and f.start <= hi]
    if not around:  # a moment between utterances: the one just before it
        before = [f for f in finals if f.end < lo]
        around = [before[-1].text.strip()] if before else []
    return " ".join(around)
