"""The archive worker: writes every session, final, alert and session end into PostgreSQL.

It has consumer groups of its own ("archive") on `sessions` (`session_opened`: who owns it, its
settings), `transcripts` (`transcript_record`: the finals) and `alerts` (`alert_record`, and
`session_ended` once every alert is out, when the session's flags, `flags:{sid}`, are copied too), so it reads everything the other workers read without
taking anything from them. Each message is written, then acknowledged: a worker that dies in
between leaves the entry pending, another (or the restarted one) reclaims it and writes it again,
and the unique keys of the archive make that second write a no-op. A database outage is waited out
with capped backoff, the entry in hand held, so nothing is dead-lettered for it.
"""

from __future__ import annotations

import asyncio
import logging
import os

import redis.asyncio as aioredis

from shared import keys, metrics
from shared.archive import DB_DOWN, Archive
from shared.messages import (
    AlertRecord,
    FlagEvent,
    Msg,
    SessionEnded,
    SessionOpened,
    TranscriptRecord,
    VadDone,
)
from shared.service import heartbeat
from shared.settings import ArchiveSettings
from shared.worker import Read, StreamWorker

log = logging.getLogger(__name__)


class ArchiveWorker(StreamWorker[ArchiveSettings]):
    group = keys.ARCHIVE_GROUP
    reads = (Read(("sessions_stream", "transcripts_stream", "alerts_stream")),)

    def __init__(
        self, settings: ArchiveSettings, r: aioredis.Redis, archive: Archive, consumer: str | None = None
    ) -> None:
        super().__init__(settings, r, consumer)
        self.archive = archive
        self.written = 0

    async def handle(self, stream: str, msg: Msg) -> None:
        delay = 0.2
        while True:
            try:
                await self.write(msg)
                break
            except DB_DOWN as e:
                log.warning("archive database unreachable error=%r retry_in=%.1fs", e, delay)
                await asyncio.sleep(delay)  # backoff while the database is away, the entry held
                delay = min(delay * 2, self.settings.retry_max_s)
        self.written += 1
        if self.settings.archive_fault_exit_after and self.written >= self.settings.archive_fault_exit_after:
            log.warning("fault injection: exiting after %d writes, before the ack", self.written)
            os._exit(70)  # noqa: SLF001 — a crash between the write and the ack, for the tests

    async def write(self, msg: Msg) -> None:
        if isinstance(msg, SessionOpened):
            await self.archive.open_session(msg.sid, msg.owner, msg.config)
            log.info("sid=%s archived session owner=%s", msg.sid, "yes" if msg.owner else "none")
        elif isinstance(msg, TranscriptRecord):
            t = msg.transcript
            if t.final and await self.archive.add_final(msg.sid, msg.config, t):
                metrics.SEGMENTS.labels("archive", "final").inc()
                log.debug("sid=%s seg=%d archived final", msg.sid, t.segment)
        elif isinstance(msg, AlertRecord):
            if await self.archive.add_alert(msg.sid, msg.alert):
                log.info(
                    "sid=%s seg=%d archived alert category=%s", msg.sid, msg.alert.segment, msg.alert.category
                )
        elif isinstance(msg, SessionEnded):
            flags = await self.archive.add_flags(msg.sid, await self.flags(msg.sid))
            await self.archive.end_session(msg.sid, msg.segments)
            log.info("sid=%s archived session end segments=%d flags=%d", msg.sid, msg.segments, flags)
        elif not isinstance(msg, VadDone):  # the utterance count comes again with session_ended
            log.warning("unexpected message type=%s", msg.type)

    async def flags(self, sid: str) -> list[FlagEvent]:
        """The session's flags as the gateway keeps them (`flags:{sid}`, services/gateway/flags.py)."""
        out = []
        for raw in (await self.r.hgetall(keys.flags(sid))).values():
            try:
                out.append(FlagEvent.model_validate_json(raw))
            except ValueError:
                log.warning("sid=%s malformed flag skipped", sid)
        return out

    async def after_batch(self) -> None:
        await heartbeat(self.r, "archive", self.consumer, {"written": self.written})
