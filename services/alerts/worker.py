"""The alerts loop: reads final transcripts (consumer group "alerts"), runs the session's announcement
detector over them, and writes each alert and then a `scanned` marker to the session's event stream.

The detector's per-session state is checkpointed in Redis after every segment, so any alerts worker
can carry on a session where another left it.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import redis.asyncio as aioredis

from services.alerts.detector import Detector
from shared.messages import Msg, Scanned, SessionConfig, TranscriptRecord, to_fields
from shared.service import heartbeat
from shared.settings import AlertsSettings
from shared.streams import StreamWorker

log = logging.getLogger(__name__)
STATE_TTL_S = 6 * 3600
MAX_CACHED = 1000


def session_now(config: SessionConfig, default_tz: str | None) -> tuple[datetime, str | None]:
    """The session's start as an aware datetime in its time zone (the server's when unknown)."""
    tz_name = config.timezone or default_tz
    try:
        tz = ZoneInfo(tz_name) if tz_name else None
    except (ZoneInfoNotFoundError, ValueError):
        tz, tz_name = None, None
    started = datetime.fromtimestamp(config.started_at, tz) if config.started_at else datetime.now(tz)
    return (started if tz else started.astimezone()), tz_name


class AlertsWorker(StreamWorker):
    group = "alerts"

    def __init__(self, settings: AlertsSettings, r: aioredis.Redis, consumer: str | None = None) -> None:
        super().__init__(settings, r, consumer)
        self.cfg = settings
        self.detectors: OrderedDict[str, Detector] = OrderedDict()
        self.sent = 0

    def streams(self) -> Iterable[str]:
        return [self.cfg.transcripts_stream]

    def state_key(self, sid: str) -> str:
        return f"alerts_state:{sid}"

    async def detector(self, sid: str, config: SessionConfig) -> Detector:
        det = self.detectors.pop(sid, None)
        if det is None:
            raw = await self.r.get(self.state_key(sid))
            if raw:
                det = Detector.from_state(json.loads(raw))
            else:
                now, tz = session_now(config, self.cfg.timezone)
                det = Detector(keywords=config.keywords, now=now, tz=tz)
        self.detectors[sid] = det
        while len(self.detectors) > MAX_CACHED:
            self.detectors.popitem(last=False)
        return det

    async def handle(self, stream: str, msg: Msg) -> None:
        if not isinstance(msg, TranscriptRecord):
            log.warning("unexpected message type=%s on %s", msg.type, stream)  # type: ignore[attr-defined]
            return
        t = msg.transcript
        det = await self.detector(msg.sid, msg.config)
        alerts = det.feed(t.segment, t.start, t.text) if t.text else []
        key = self.cfg.events_key(msg.sid)
        async with self.r.pipeline(transaction=True) as pipe:
            for a in alerts:
                pipe.xadd(key, to_fields(a), maxlen=self.cfg.stream_maxlen)
            pipe.xadd(key, to_fields(Scanned(segment=t.segment)), maxlen=self.cfg.stream_maxlen)
            pipe.set(self.state_key(msg.sid), json.dumps(det.state()), ex=STATE_TTL_S)
            await pipe.execute()
        for a in alerts:
            self.sent += 1
            log.info(
                "sid=%s seg=%d alert category=%s date=%s time=%s",
                msg.sid,
                t.segment,
                a.category,
                a.date,
                a.time,
            )

    async def after_batch(self) -> None:
        await heartbeat(self.r, "alerts", self.consumer, {"alerts": self.sent})
