"""The limits of one WebSocket connection, as applied by `live.py` (the defaults' reasons: README "Limits").

- **Text frames** (start, stop, flag, and whatever a client invents) pass a token bucket of
  `MAX_MESSAGES_PER_S` sustained, `MAX_MESSAGES_BURST` at once, checked before the frame is even
  parsed. A frame over the rate is not handled: the client gets a `rate_limited` error, at most one
  a second, counting the frames refused since the last one (a flood of errors would be a flood too).
- **Audio** is never refused nor dropped: it is slowed down. Each binary frame costs its duration
  (at least `MIN_FRAME_S`, so that a stream of tiny frames is bounded in frames per second as well)
  from a bucket refilled at `MAX_AUDIO_SPEED` seconds of audio per second and holding
  `AUDIO_BURST_S`; when it is empty the connection's read loop waits before it reads the next frame.
  aiohttp then stops reading the socket once its buffer is full, TCP's window closes, and the
  client's sends block: the client is held to that multiple of real time, and a resumed client's
  backlog beyond the burst catches up at it (`MAX_AUDIO_SPEED` - 1 seconds of backlog per second).
- **Owner key**: live sessions per `owner` of the start message are counted like those per address
  (`security.ClientLimits`, per gateway process); over `MAX_SESSIONS_PER_OWNER` the start is refused
  with `too_many_sessions` and the socket closed with 1008.

Uploads (`uploads.py`) never pass here: they have their own pacing, by the pipeline's backlog.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable

from services.gateway.security import ClientLimits, RateLimiter
from shared.settings import GatewaySettings

BYTES_PER_S = 32_000  # PCM16 mono 16 kHz
MIN_FRAME_S = 0.01  # a binary frame costs at least 10 ms of audio budget
REPORT_EVERY_S = 1.0  # at most one rate_limited error a second


def owner_slot_key(owner: str) -> str:
    """What an owner is counted by in memory (a digest: the key itself is a secret)."""
    return hashlib.sha256(owner.encode()).hexdigest()[:32]


class ConnectionLimits:
    """Text-frame rate, audio pace and the owner's slot of one connection."""

    def __init__(
        self,
        settings: GatewaySettings,
        owners: ClientLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.s, self.owners, self.clock = settings, owners, clock
        self.text_bucket = RateLimiter(settings.max_messages_per_s, settings.max_messages_burst, clock)
        self.audio_bucket = RateLimiter(
            settings.max_audio_speed, max(settings.audio_burst_s, 1.0), clock, sleep
        )
        self.refused = 0  # text frames refused since the last report
        self.refused_total = 0
        self.reported_at = float("-inf")
        self.owner_slot: str | None = None
        self.waited_s = 0.0  # time the read loop was held back for audio

    async def pace_audio(self, nbytes: int) -> None:
        """Waits (not reading the socket meanwhile) while the connection is ahead of its pace."""
        t0 = self.clock()
        await self.audio_bucket.throttle(max(nbytes / BYTES_PER_S, MIN_FRAME_S))
        self.waited_s += self.clock() - t0

    def admit_text(self) -> tuple[bool, str | None]:
        """(handle the frame?, the rate_limited message to send now, if any)."""
        if self.text_bucket.allow():
            return True, None
        self.refused += 1
        self.refused_total += 1
        now = self.clock()
        if now - self.reported_at < REPORT_EVERY_S:
            return False, None
        n, self.refused, self.reported_at = self.refused, 0, now
        return False, (
            f"{n} text frame{'s' if n > 1 else ''} over the limit of {self.s.max_messages_per_s:g} per "
            f"second (burst {self.s.max_messages_burst}) {'were' if n > 1 else 'was'} ignored"
        )

    def claim_owner(self, owner: str | None) -> bool:
        """Counts this connection for `owner` (no owner, or a second claim: nothing to count)."""
        if owner is None or self.owners is None or self.owner_slot is not None:
            return True
        slot = owner_slot_key(owner)
        if not self.owners.acquire(slot):
            return False
        self.owner_slot = slot
        return True

    def release(self) -> None:
        if self.owner_slot is not None and self.owners is not None:
            self.owners.release(self.owner_slot)
            self.owner_slot = None
