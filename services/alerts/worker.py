"""The alerts loop: reads final transcripts and end-of-audio markers (consumer group "alerts"), runs
the session's announcement detector over the transcripts in segment order, and writes each alert to
the session's event stream; once every utterance the VAD cut has been scanned, it writes `alerts_done`.

Transcripts can arrive out of order (several transcribers) and more than once (redelivery), so each
session's progress lives in one Redis hash `alerts:{sid}`: the detector state, the next segment to
feed, the count the VAD announced, and the transcripts waiting for an earlier one. Everything a
message changes is written in one transaction, so any alerts worker can carry on after another.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime

import redis.asyncio as aioredis

from services.alerts.detector import Detector
from services.alerts.llm import make_detector, restore_detector
from shared import keys, metrics
from shared.messages import (
    AlertEvent,
    AlertRecord,
    AlertsDone,
    Msg,
    SessionConfig,
    SessionEnded,
    TranscriptRecord,
    VadDone,
)
from shared.service import heartbeat
from shared.settings import AlertsSettings
from shared.streams import stage
from shared.worker import Read, StreamWorker

log = logging.getLogger(__name__)
STATE_TTL_S = 24 * 3600


class AlertsWorker(StreamWorker[AlertsSettings]):
    group = keys.ALERTS_GROUP
    reads = (Read(("transcripts_stream",)),)

    def __init__(self, settings: AlertsSettings, r: aioredis.Redis, consumer: str | None = None) -> None:
        super().__init__(settings, r, consumer)
        self.sent = 0

    async def handle(self, stream: str, msg: Msg) -> None:
        if isinstance(msg, TranscriptRecord):
            seg = msg.transcript.segment
            buf = {**msg.transcript.model_dump(mode="json"), "continues": msg.continues}
            fields = {f"buf:{seg}": json.dumps(buf), "config": msg.config.model_dump_json()}
            await self.r.hset(keys.alerts_state(msg.sid), mapping=fields)
            await self.advance(msg.sid)
        elif isinstance(msg, VadDone):
            await self.r.hset(keys.alerts_state(msg.sid), "expected", msg.segments)
            await self.advance(msg.sid)
        else:
            log.warning("unexpected message type=%s on %s", msg.type, stream)

    async def on_dead(self, stream: str, msg: Msg) -> None:
        """A transcript the detector keeps failing on: scan it as empty, so the session can end."""
        if isinstance(msg, TranscriptRecord):
            empty = msg.transcript.model_copy(update={"text": ""})
            await self.r.hset(keys.alerts_state(msg.sid), f"buf:{empty.segment}", empty.model_dump_json())
            await self.advance(msg.sid)

    def detector(self, h: dict[str, str]) -> Detector:
        if "detector" in h:
            return restore_detector(self.settings, json.loads(h["detector"]))
        config = SessionConfig.model_validate_json(h["config"]) if "config" in h else SessionConfig()
        # The detector resolves the zone (the server's when unknown) and turns `now` into it.
        started = datetime.fromtimestamp(config.started_at, UTC) if config.started_at else None
        return make_detector(
            self.settings, config.keywords, started, config.timezone or self.settings.timezone, config.names
        )

    async def advance(self, sid: str) -> None:
        """Feed every transcript that is next in order; finish the session when all are in."""
        key = keys.alerts_state(sid)
        h = {k.decode(): v.decode() for k, v in (await self.r.hgetall(key)).items()}
        if h.get("done") == "1":  # a redelivery after the end: nothing more to say
            stale = [k for k in h if k.startswith("buf:")]
            if stale:
                await self.r.hdel(key, *stale)
            return
        nxt, fed, alerts = int(h.get("next", 0)), [], []
        det: Detector | None = None  # built only when needed: a VadDone may come before any transcript
        while f"buf:{nxt}" in h:
            t = json.loads(h[f"buf:{nxt}"])
            if t["text"] and t.get("speaker") != "other":  # voice lock: others announce nothing
                det = det or self.detector(h)
                # may call a model
                alerts += await asyncio.to_thread(
                    det.feed, nxt, t["start"], t["text"], t.get("continues", False)
                )
            fed.append(f"buf:{nxt}")
            nxt += 1
        done = "expected" in h and nxt >= int(h["expected"])
        if done and (det is not None or "detector" in h):
            det = det or self.detector(h)
            alerts += await asyncio.to_thread(det.flush)
        await self.write(sid, det, nxt, fed, alerts, done)

    async def write(
        self, sid: str, det: Detector | None, nxt: int, fed: list[str], alerts: list[AlertEvent], done: bool
    ) -> None:
        events = self.settings.events_key(sid)
        async with self.r.pipeline(transaction=True) as pipe:
            maxlen = self.settings.stream_maxlen
            # For the archive worker (only when there is an archive: nobody else reads that stream).
            archive = self.settings.alerts_stream if self.settings.database_url else None
            for a in alerts:
                stage(pipe, events, a, maxlen)
                if archive:
                    stage(pipe, archive, AlertRecord(sid=sid, alert=a), maxlen)
            if done:
                stage(pipe, events, AlertsDone(segments=nxt), maxlen)
                if archive:
                    ended = SessionEnded(sid=sid, segments=nxt)
                    stage(pipe, archive, ended, maxlen)
                pipe.expire(events, self.settings.session_retention_s)  # the transcript is kept this long
            state: dict[str, str | int] = {"next": nxt, "done": int(done)}
            if det is not None:
                state["detector"] = json.dumps(det.state())
            pipe.hset(keys.alerts_state(sid), mapping=state)
            if fed:
                pipe.hdel(keys.alerts_state(sid), *fed)
            pipe.expire(keys.alerts_state(sid), STATE_TTL_S)
            await pipe.execute()
        metrics.SEGMENTS.labels("alerts", "final").inc(len(fed))
        for a in alerts:
            metrics.ALERTS.labels(a.category).inc()
            self.sent += 1
            log.info(
                "sid=%s seg=%d alert category=%s date=%s time=%s", sid, a.segment, a.category, a.date, a.time
            )
        if done:
            log.info("sid=%s all %d segments scanned", sid, nxt)

    async def after_batch(self) -> None:
        await heartbeat(self.r, "alerts", self.consumer, {"alerts": self.sent})
