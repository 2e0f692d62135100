"""One live WebSocket session: the protocol (README, "The WebSocket protocol") between a browser
and the Redis streams.

Incoming audio goes to `audio:{sid}` in order; the session's `events:{sid}` stream is relayed back
(`events.for_client`: client-facing events, the first final of a segment). The session is opened,
stopped and ended through `sessions.py`, as an upload's is. After `stop` the session ends once the
alerts worker says it has scanned every utterance the VAD cut: by then every transcript and alert is
in the stream before that marker. All frames to the client go through one bounded queue and one
sender task (`outbox.py`). Every frame first passes
the connection's limits (`flow.py`: text frames rate-limited, audio paced); audio is written at its
byte offset and acknowledged (`acks.py`), so a resumed client resends what was not acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets

import redis.asyncio as aioredis
from aiohttp import WSCloseCode, WSMsgType, web
from pydantic import ValidationError

from services.gateway import events, languages, owners, security, voices
from services.gateway.acks import Acker, AudioLog
from services.gateway.flags import FlagStore, TooManyFlags
from services.gateway.flow import ConnectionLimits
from services.gateway.outbox import SEND_TIMEOUT_S, Outbox
from services.gateway.sessions import LIVE, SessionStore, config_for, new_sid
from shared import metrics
from shared.messages import (
    AlertsDone,
    EndEvent,
    ErrorEvent,
    FlagMessage,
    Msg,
    SessionEvent,
    StartMessage,
    StopMessage,
    client_message,
    to_client_json,
)
from shared.settings import GatewaySettings
from shared.streams import REDIS_DOWN
from shared.tasks import cancel_and_wait

log = logging.getLogger(__name__)
SEND_QUEUE = 1000


class LiveSession:
    def __init__(
        self,
        ws: web.WebSocketResponse,
        r: aioredis.Redis,
        settings: GatewaySettings,
        background: set[asyncio.Task] | None = None,
        owners: security.ClientLimits | None = None,
    ) -> None:
        self.ws, self.r, self.s = ws, r, settings
        self.store = SessionStore(r, settings)
        self.limits = ConnectionLimits(settings, owners)
        self.conn_id = secrets.token_hex(8)  # who attached to the session last (sessions.py)
        self.audio: AudioLog | None = None
        self.acker: Acker | None = None
        self.background = background if background is not None else set()
        self.sid: str | None = None
        self.seq = 0
        self.stopped = False
        self.outbox = Outbox(ws, SEND_QUEUE)
        self.refused = False  # a start was refused (language_unsupported): audio waits for a new start
        self.finished = asyncio.Event()
        self.tasks: list[asyncio.Task] = []

    async def serve(self) -> None:
        self.tasks.append(asyncio.create_task(self.sender()))
        try:
            async for frame in self.ws:
                if (
                    frame.type in (WSMsgType.BINARY, WSMsgType.TEXT)
                    and len(frame.data) > self.s.max_frame_bytes
                ):
                    log.warning("sid=%s frame of %d bytes over the limit; closing", self.sid, len(frame.data))
                    await self.ws.close(code=WSCloseCode.MESSAGE_TOO_BIG, message=b"frame larger than 1 MiB")
                    break
                if frame.type == WSMsgType.BINARY:
                    await self.limits.pace_audio(len(frame.data))  # not reading the socket meanwhile
                    await self.on_audio(frame.data)
                elif frame.type == WSMsgType.TEXT and self.admit_text():
                    await self.on_text(frame.data)
                elif frame.type == WSMsgType.ERROR:
                    log.warning("sid=%s websocket error: %s", self.sid, self.ws.exception())
        except REDIS_DOWN as e:
            log.error("sid=%s redis unavailable: %r", self.sid, e)
            self.error("unavailable", "the server's storage is unreachable; please retry shortly")
            self.outbox.end()
            await asyncio.gather(*self.tasks[:1], return_exceptions=True)
        finally:
            await self.close()

    async def close(self) -> None:
        self.limits.release()
        with contextlib.suppress(*REDIS_DOWN):
            await self.stop_if_abandoned()
        await cancel_and_wait(self.tasks)

    async def stop_if_abandoned(self) -> None:
        """The client went away without stop: it may resume; if it does not, finish the session."""
        if not self.sid or self.stopped:
            return
        self.stopped = True
        token = await self.store.detach(self.sid, self.conn_id)
        if token is None:
            log.info("sid=%s client disconnected; it has resumed on another connection already", self.sid)
            return
        log.info(
            "sid=%s client disconnected before stop; resumable for %.0fs", self.sid, self.s.resume_grace_s
        )
        task = asyncio.create_task(self.stop_after_grace(self.sid, token))
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def stop_after_grace(self, sid: str, token: str) -> None:
        await asyncio.sleep(self.s.resume_grace_s)  # the grace period itself, not a synchronisation
        if await self.store.stop_if_still_detached(sid, token, self.seq):
            log.info("sid=%s not resumed in %.0fs; stopped", sid, self.s.resume_grace_s)

    def send(self, msg: Msg) -> None:
        if self.outbox.offer(msg) or self.outbox.cut_off:
            return
        # The client does not read: drop what is queued (the session goes on and can be resumed,
        # its events are all in the stream), tell it why, and close; nobody else is slowed.
        log.warning("sid=%s client too slow, send queue full; closing", self.sid)
        metrics.ERRORS.labels("gateway", "slow_client").inc()
        self.outbox.cut("the client did not read its messages; resume the session")

    def admit_text(self) -> bool:
        ok, notice = self.limits.admit_text()
        if notice:
            self.error("rate_limited", notice)
        return ok

    def error(self, code: str, message: str) -> None:
        log.info("sid=%s error code=%s %s", self.sid, code, message)
        metrics.ERRORS.labels("gateway", code).inc()
        self.send(ErrorEvent(code=code, message=message))

    async def sender(self) -> None:
        def slow() -> None:  # the client stopped reading and its socket is full
            log.warning("sid=%s client not reading for %.0fs; closing", self.sid, SEND_TIMEOUT_S)
            metrics.ERRORS.labels("gateway", "slow_client").inc()

        await self.outbox.run(b"client too slow", slow)

    async def open(self, start: StartMessage) -> None:
        owner = owners.digest(start.owner) if start.owner else None
        if start.session:
            info = await self.store.get(start.session)
            if info is not None and (not info.get("owner") or owners.same(owner, info["owner"])):
                return await self.resume(start.session, info, start.offset)
            # Unknown, or another owner's: the same answer, so that an id reveals nothing.
            self.error("unknown_session", "no such session to resume; a new session was started")
        language = (start.language or languages.AUTO).strip().lower() or languages.AUTO
        problem = (await languages.support(self.r)).problem(language)
        if problem:  # never transcribed as another language: the start is refused, say why
            self.refused = True
            return self.error("language_unsupported", problem)
        self.refused = False
        self.sid = new_sid()
        config = config_for(start, language)
        self.take_audio(self.sid, 0, 0)
        language_known = None if language == languages.AUTO else language
        self.send(SessionEvent(session=self.sid, language=language_known, received=0))
        voiceprint = await voices.lock_for(self, start, config)  # after `session`: it may send an error
        await self.store.open(self.sid, config, owner, voiceprint, conn=self.conn_id)
        self.tasks.append(asyncio.create_task(self.relay(self.sid)))
        log.info(
            "sid=%s opened language=%s task=%s keywords=%d",
            self.sid,
            config.language,
            config.task,
            len(config.keywords),
        )

    async def resume(self, sid: str, info: dict[str, str], offset: int | None = None) -> None:
        """Re-attach to a session: replay its events; go on taking audio if it is still live, from
        `offset` (the client's first unacknowledged byte), else from what the server holds."""
        self.sid = sid
        await self.store.attach(sid, self.conn_id)
        received = int(info.get("received", 0))
        # An auto session's detected language is in the replay.
        self.send(SessionEvent(session=sid, received=received))
        self.tasks.append(asyncio.create_task(self.relay(sid)))
        if info.get("status") != LIVE:  # already stopped: the replay ends with its end
            self.stopped = True
            self.tasks.append(asyncio.create_task(self.finish_after_stop()))
        else:
            self.take_audio(sid, received if offset is None else offset, int(info.get("frames", 0)))
        log.info("sid=%s resumed status=%s received=%d offset=%s", sid, info.get("status"), received, offset)

    def take_audio(self, sid: str, pos: int, frames: int) -> None:
        """This connection writes the session's audio from byte `pos` on, and acknowledges it."""
        self.audio = AudioLog(self.r, self.s, sid, pos, frames)
        self.acker = Acker(self.r, self.s, sid, self.send)
        self.tasks.append(asyncio.create_task(self.acker.run()))

    async def on_audio(self, data: bytes) -> None:
        if self.stopped:
            return self.error("audio_after_stop", "audio received after stop; it was ignored")
        if len(data) % 2:
            return self.error("odd_frame", f"binary frame of {len(data)} bytes: PCM16 needs an even length")
        if self.sid is None and self.refused:
            return  # told once already: not transcribed as a language nobody asked for
        if self.sid is None:
            await self.open(StartMessage())
        assert self.audio is not None and self.acker is not None
        if not data:
            return
        out = await self.audio.write(data)
        self.seq = self.audio.frames
        if not out.live:
            return self.error("audio_after_stop", "the session has stopped; the audio was ignored")
        if out.gap_filled:
            self.error(
                "audio_gap",
                f"{out.gap_filled / 32000:.2f} s of audio never reached the server (the client dropped "
                "it before it was acknowledged); it was filled with silence",
            )
        if out.gap_refused:
            self.error(
                "bad_offset",
                f"the audio resumed {out.gap_refused / 32000:.1f} s past what the server holds, more "
                "than can be filled with silence; it goes on from what the server holds",
            )
        self.acker.wrote(out.received)

    async def on_text(self, data: str) -> None:
        try:
            raw = json.loads(data)
        except json.JSONDecodeError as e:
            return self.error("bad_json", f"text frame is not JSON: {e.msg}")
        kind = raw.get("type") if isinstance(raw, dict) else None
        if kind not in ("start", "stop", "flag"):
            return self.error(
                "unknown_type", f"unknown message type {kind!r}: expected 'start', 'stop' or 'flag'"
            )
        try:
            msg = client_message.validate_python(raw)
        except ValidationError as e:
            return self.error("bad_message", f"invalid {kind} message: {e.errors()[0]['msg']}")
        if isinstance(msg, StartMessage):
            if self.sid is not None:
                return self.error("already_started", "start must be the first message of a session")
            if not self.limits.claim_owner(msg.owner):
                return await self.refuse_owner()
            await self.open(msg)
        elif isinstance(msg, StopMessage):
            await self.on_stop()
        elif isinstance(msg, FlagMessage):
            await self.on_flag(msg)

    async def on_flag(self, msg: FlagMessage) -> None:
        """Keep a flag with the session; the relay sends it back as the confirmation (a resend of a
        flag already kept is confirmed here, since its event was relayed before)."""
        if self.sid is None:
            return self.error("bad_message", "flag before the session started: send start or audio first")
        try:
            flag, new = await FlagStore(self.r, self.s).add(self.sid, msg)
        except TooManyFlags as e:
            return self.error("too_many_flags", str(e))
        if not new:
            self.send(flag)
        log.info("sid=%s flag id=%s start=%.2f end=%.2f new=%s", self.sid, flag.id, flag.start, flag.end, new)

    async def refuse_owner(self) -> None:
        n = self.s.max_sessions_per_owner
        log.warning("sid=%s refused: owner has %d live sessions already", self.sid, n)
        metrics.ERRORS.labels("gateway", "too_many_sessions").inc()
        text = f"too many live sessions for this owner key (max {n})"
        with contextlib.suppress(ConnectionError):
            await self.ws.send_str(to_client_json(ErrorEvent(code="too_many_sessions", message=text)))
        await security.refuse(self.ws, text)

    async def on_stop(self) -> None:
        if self.stopped:
            return self.error("already_stopped", "stop was already received")
        if self.sid is None and self.refused:  # nothing was started: nothing to finish
            self.stopped = True
            self.send(EndEvent())
            self.outbox.end()
            return
        if self.sid is None:
            await self.open(StartMessage())
        assert self.sid is not None and self.audio is not None
        self.stopped = True
        await self.audio.stop()
        log.info("sid=%s stop received frames=%d", self.sid, self.seq)
        self.tasks.append(asyncio.create_task(self.finish_after_stop()))

    async def finish_after_stop(self) -> None:
        try:
            await asyncio.wait_for(self.finished.wait(), self.s.end_timeout_s)
        except TimeoutError:
            self.error("timeout", f"pending work not finished within {self.s.end_timeout_s:.0f}s")
        self.send(EndEvent())
        self.outbox.end()
        log.info("sid=%s end sent", self.sid)

    async def relay(self, sid: str) -> None:
        """Forward the session's events; note when every utterance has been transcribed and scanned."""
        async for msg in events.for_client(self.r, self.s, sid, retry=True):
            if isinstance(msg, AlertsDone):
                await self.store.end(sid)
                self.finished.set()
            elif msg is not None:
                self.send(msg)
