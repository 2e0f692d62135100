"""Acknowledged audio of a live session: every byte written once, at its place, then acknowledged.

A session's audio is one byte sequence. Its registry hash `session:{sid}` holds `received` (bytes of it
in `audio:{sid}` so far) and `frames` (entries written: the `seq` of the next one). A connection knows
the byte its next frame starts at (`pos`: 0 for a new session; on resume the client's `offset`, else
the `received` it was told) and writes each frame through one Lua script that compares `pos` with
`received` and appends only what lies past it, in the same step as the counters:

- bytes the server holds already are dropped, and a frame straddling `received` is cut: a resumed
  client may resend more than needed, and the old connection of a client that has resumed may still
  deliver frames the new one resent: whichever comes first is written, never both;
- a frame beyond `received` (the client dropped audio that was never acknowledged, its buffer being
  full) leaves a gap: filled with silence up to `max_audio_gap_s`, so that later times stay the
  lecture's; a larger one is refused and the audio goes on at `received`;
- nothing is written once the session has stopped (its `audio_stop` is in the stream), and the stop
  is written in one step with the status, so no audio can follow it.

A lost reply retried by the client library cannot double audio either: the retry finds its bytes held.

`Acker` sends `{"type":"ack","received":n}` once a write has returned (the audio is in Redis), at
most every `ack_interval_s` while audio flows. `durable` is the hook before every ack: with
`ack_wait_replicas` > 0 it runs `WAIT` on the connection that just wrote the `acked` marker, so the
ack also means "on that many replicas" (replication is one ordered stream: that marker comes after
every write acknowledged); when fewer replicas confirm in `ack_wait_timeout_ms`, no ack is sent and
the client keeps the audio.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

import redis.asyncio as aioredis

from services.gateway.sessions import LIVE, SessionStore
from shared import keys
from shared.messages import AckEvent, AudioChunk, Msg
from shared.settings import GatewaySettings

log = logging.getLogger(__name__)
BYTES_PER_S = 32_000  # PCM16 mono 16 kHz
FILL_CHUNK = BYTES_PER_S  # a gap is filled one second per entry

# KEYS: session hash, audio stream. ARGV: pos, pcm, maxlen, the live status, the entry's json prefix.
# Returns {code, received, frames, new bytes}: code 1 written, 2 nothing new (all held already),
# 3 gap (pos is past received), 0 the session is not live.
APPEND_LUA = """
local h = redis.call('HMGET', KEYS[1], 'status', 'received', 'frames')
local received = tonumber(h[2]) or 0
local frames = tonumber(h[3]) or 0
if h[1] ~= ARGV[4] then return {0, received, frames, 0} end
local pos = tonumber(ARGV[1])
local data = ARGV[2]
if pos > received then return {3, received, frames, 0} end
local skip = received - pos
if skip >= #data then return {2, received, frames, 0} end
if skip > 0 then data = string.sub(data, skip + 1) end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*',
  'type', 'audio', 'json', ARGV[5] .. frames .. '}', 'pcm', data)
received = received + #data
redis.call('HSET', KEYS[1], 'received', received, 'frames', frames + 1)
return {1, received, frames + 1, #data}
"""
WRITTEN, HELD, GAP, NOT_LIVE = 1, 2, 3, 0


def entry_json_prefix() -> str:
    """The `json` field of an audio entry up to its seq (the script appends the seq and the brace)."""
    text = AudioChunk(seq=0).model_dump_json()
    assert text.endswith('"seq":0}'), text
    return text[: -len("0}")]


@dataclass
class Outcome:
    """What became of one frame."""

    received: int = 0  # bytes of the session's audio held after it
    written: int = 0  # bytes of the frame that were new (the rest was held already)
    live: bool = True  # False: the session had stopped, nothing was written
    gap_filled: int = 0  # bytes of silence written before it
    gap_refused: int = 0  # bytes of a gap too large to fill (the frame went in at `received`)


class AudioLog:
    """One connection's writer of a session's audio (see the module's doc)."""

    def __init__(
        self, r: aioredis.Redis, settings: GatewaySettings, sid: str, pos: int, frames: int = 0
    ) -> None:
        self.r, self.s, self.sid, self.pos = r, settings, sid, pos
        self.store = SessionStore(r, settings)
        self.keys = [self.store.key(sid), settings.audio_key(sid)]
        self.frames = frames  # entries the session's audio has (the seq of the next), as last seen
        self._script = r.register_script(APPEND_LUA)
        self._prefix = entry_json_prefix()

    async def _append(self, pos: int, data: bytes) -> tuple[int, int, int]:
        """(code, received, new bytes) of one script call."""
        code, received, frames, new = await self._script(
            keys=self.keys, args=[pos, data, self.s.stream_maxlen, LIVE, self._prefix]
        )
        self.frames = int(frames)
        return int(code), int(received), int(new)

    async def write(self, data: bytes) -> Outcome:
        """Writes the part of `data` (the frame at `self.pos`) that the session does not hold yet."""
        out = Outcome()
        code, received, new = await self._append(self.pos, data)
        if code == GAP:
            gap = self.pos - received
            if gap <= self.s.max_audio_gap_s * BYTES_PER_S:
                code = await self._fill(received, self.pos, out)
            else:
                out.gap_refused, self.pos = gap, received
            if code != NOT_LIVE:
                code, received, new = await self._append(self.pos, data)
        self.pos += len(data)
        out.received, out.written, out.live = received, new, code != NOT_LIVE
        return out

    async def _fill(self, received: int, upto: int, out: Outcome) -> int:
        """Silence from `received` up to `upto`, a second per entry; NOT_LIVE if the session stopped."""
        while received < upto:
            code, received, new = await self._append(received, bytes(min(FILL_CHUNK, upto - received)))
            if code == NOT_LIVE:
                return code
            out.gap_filled += new
        return WRITTEN

    async def stop(self) -> None:
        """The end of the session's audio, in one step with its status: no audio can follow it."""
        await self.store.stop(self.sid, self.frames)


class Acker:
    """Sends acks of what a connection's writes left in Redis (see the module's doc)."""

    def __init__(
        self, r: aioredis.Redis, settings: GatewaySettings, sid: str, send: Callable[[Msg], None]
    ) -> None:
        self.r, self.s, self.sid, self.send = r, settings, sid, send
        self.written = 0  # the session's `received` after this connection's latest write
        self.acked = 0
        self.pending = asyncio.Event()

    def wrote(self, received: int) -> None:
        if received > self.written:
            self.written = received
        self.pending.set()

    async def run(self) -> None:
        while True:
            await self.pending.wait()
            self.pending.clear()
            n = self.written
            if n <= self.acked:
                continue
            if await self.durable(n):
                self.send(AckEvent(received=n))
                self.acked = n
            else:
                self.pending.set()  # try again after the interval
            await asyncio.sleep(self.s.ack_interval_s)  # acks at most this often, not a synchronisation

    async def durable(self, n: int) -> bool:
        """The hook before an ack: True when audio up to `n` is as safe as configured.

        Written to Redis already (the script returned); with `ack_wait_replicas` > 0, also confirmed by
        that many replicas: WAIT on the connection that wrote the `acked` marker just before it."""
        want = self.s.ack_wait_replicas
        if want <= 0:
            return True
        async with self.r.pipeline(transaction=False) as pipe:
            pipe.hset(keys.session(self.sid), "acked", n)
            pipe.wait(want, self.s.ack_wait_timeout_ms)
            _, replicas = await pipe.execute()
        if int(replicas) < want:
            log.warning("sid=%s ack held: %d of %d replicas confirmed byte %d", self.sid, replicas, want, n)
            return False
        return True
