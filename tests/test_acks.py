"""Acknowledged audio through the real gateway (in-process) on a real Redis: what `audio:{sid}` holds.

No VAD runs here, so `audio:{sid}` keeps every entry: the test reads back exactly what the session
stored and checks it byte for byte against what the client meant to send, across resumes that
resend too much, too little, or race the old connection.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from services.gateway.acks import entry_json_prefix
from services.gateway.app import make_app
from shared import keys
from shared.messages import AudioChunk, from_fields, to_fields
from shared.redis_server import start_redis
from shared.settings import GatewaySettings
from tests.util import free_port

FRAME = 3200  # 100 ms
AUDIO = os.urandom(FRAME * 30)  # 3 s of noise: any misplaced byte shows


def gateway(redis_url: str, **kw: Any) -> TestServer:
    return TestServer(make_app(GatewaySettings(redis_url=redis_url, ack_interval_s=0.05, **kw)))


@pytest.fixture
async def gw(redis_url: str) -> AsyncIterator[TestClient]:
    async with TestClient(gateway(redis_url)) as c:
        yield c


async def stored(r: aioredis.Redis, sid: str) -> bytes:
    """The session's audio as stored, in order; its entries numbered 0, 1, 2, ..."""
    entries = await r.xrange(keys.audio(sid))
    chunks = [from_fields(f) for _, f in entries]
    audio = [c for c in chunks if isinstance(c, AudioChunk)]
    assert [c.seq for c in audio] == list(range(len(audio)))
    return b"".join(c.pcm for c in audio)


async def next_of(ws: aiohttp.ClientWebSocketResponse, kind: str, within: float = 10) -> dict[str, Any]:
    while True:
        msg = await asyncio.wait_for(ws.receive(), within)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        data = json.loads(msg.data)
        if data["type"] == kind:
            return data


async def acked(ws: aiohttp.ClientWebSocketResponse, upto: int, within: float = 10) -> int:
    """Reads acks until one covers `upto` bytes; every ack must be no larger than what was sent."""
    while True:
        ack = await next_of(ws, "ack", within)
        assert ack["received"] <= upto, ack
        if ack["received"] == upto:
            return upto


async def send(ws: aiohttp.ClientWebSocketResponse, audio: bytes, frame: int = FRAME) -> None:
    for i in range(0, len(audio), frame):
        await ws.send_bytes(audio[i : i + frame])


async def connect(gw: TestClient, **start: Any) -> tuple[aiohttp.ClientWebSocketResponse, dict[str, Any]]:
    """A connection that sent `start` (with `start`'s fields: `session`, `offset`), and the
    `session` message it got."""
    ws = await gw.ws_connect("/ws/transcribe")
    await ws.send_str(json.dumps({"type": "start", **start}))
    return ws, await next_of(ws, "session")


async def first_connection(gw: TestClient, audio: bytes) -> str:
    """A new session; `audio` sent and acknowledged; the connection dropped without stop."""
    ws, session = await connect(gw)
    assert session["received"] == 0
    await send(ws, audio)
    await acked(ws, len(audio))
    await ws.close()
    return session["session"]


async def two_connections(
    gw: TestClient, **resume: Any
) -> tuple[str, aiohttp.ClientWebSocketResponse, aiohttp.ClientWebSocketResponse]:
    """A new session with 5 frames acknowledged on its first connection, which stays open, and a
    second connection resuming it (with `resume`'s fields: `offset`)."""
    ws1, session = await connect(gw)
    sid = session["session"]
    await send(ws1, AUDIO[: FRAME * 5])
    await acked(ws1, FRAME * 5)
    ws2, _ = await connect(gw, session=sid, **resume)
    return sid, ws1, ws2


async def until(read: Callable[[], Awaitable[Any]], value: Any, within: float = 10) -> None:
    """Polls `read()` until it gives `value` (a state in Redis, not a timing)."""
    deadline = asyncio.get_running_loop().time() + within
    while (got := await read()) != value:
        assert asyncio.get_running_loop().time() < deadline, f"still {got!r}, expected {value!r}"
        await asyncio.sleep(0.02)


def test_the_script_writes_entries_as_the_messages_module_does() -> None:
    assert entry_json_prefix() + "7}" == to_fields(AudioChunk(seq=7))["json"]


async def test_audio_is_acknowledged_once_stored(gw: TestClient, r: aioredis.Redis) -> None:
    ws, session = await connect(gw)
    sid = session["session"]
    await send(ws, AUDIO[: FRAME * 10])
    await acked(ws, FRAME * 10)
    assert await stored(r, sid) == AUDIO[: FRAME * 10]
    await send(ws, AUDIO[FRAME * 10 :], frame=1000)  # any frame length, straddling the old frames
    await acked(ws, len(AUDIO))
    assert await stored(r, sid) == AUDIO
    await ws.close()


@pytest.mark.parametrize("back", [0, 1000, FRAME * 3 + 2, FRAME * 12])
async def test_resume_resends_more_than_needed_and_nothing_doubles(
    gw: TestClient, r: aioredis.Redis, back: int
) -> None:
    held = FRAME * 12
    sid = await first_connection(gw, AUDIO[:held])
    ws, session = await connect(gw, session=sid, offset=held - back)
    assert session == {"type": "session", "session": sid, "received": held}
    await send(ws, AUDIO[held - back :])
    await acked(ws, len(AUDIO))
    assert await stored(r, sid) == AUDIO
    await ws.close()


async def test_resume_without_offset_goes_on_from_received(gw: TestClient, r: aioredis.Redis) -> None:
    held = FRAME * 7
    sid = await first_connection(gw, AUDIO[:held])
    ws, session = await connect(gw, session=sid)
    received = session["received"]
    await send(ws, AUDIO[received:])
    await acked(ws, len(AUDIO))
    assert await stored(r, sid) == AUDIO
    await ws.close()


async def test_old_and_new_connection_racing_write_each_byte_once(gw: TestClient, r: aioredis.Redis) -> None:
    """The old connection still delivers frames while the resumed one resends them: interleaved."""
    sid, ws1, ws2 = await two_connections(gw, offset=FRAME * 5)
    for i in range(5, 30):  # old one frame ahead of the new one, each frame sent on both
        await ws1.send_bytes(AUDIO[i * FRAME : (i + 1) * FRAME])
        await ws2.send_bytes(AUDIO[(i - 1) * FRAME : i * FRAME] if i > 5 else b"")
    await ws2.send_bytes(AUDIO[29 * FRAME :])
    await acked(ws2, len(AUDIO))
    assert await stored(r, sid) == AUDIO
    await ws1.close()
    await ws2.close()


async def test_a_gap_is_filled_with_silence_and_told(gw: TestClient, r: aioredis.Redis) -> None:
    held, gap = FRAME * 10, FRAME * 5
    sid = await first_connection(gw, AUDIO[:held])
    ws, _ = await connect(gw, session=sid, offset=held + gap)
    await send(ws, AUDIO[held + gap :])
    error = await next_of(ws, "error")
    assert error["code"] == "audio_gap" and "0.50 s" in error["message"], error
    await acked(ws, len(AUDIO))
    assert await stored(r, sid) == AUDIO[:held] + bytes(gap) + AUDIO[held + gap :]
    await ws.close()


async def test_a_gap_too_large_is_refused(redis_url: str, r: aioredis.Redis) -> None:
    async with TestClient(gateway(redis_url, max_audio_gap_s=0.2)) as gw:
        held = FRAME * 10
        sid = await first_connection(gw, AUDIO[:held])
        ws, _ = await connect(gw, session=sid, offset=held + FRAME * 5)
        await send(ws, AUDIO[held:])
        assert (await next_of(ws, "error"))["code"] == "bad_offset"
        await acked(ws, held + len(AUDIO[held:]))
        assert await stored(r, sid) == AUDIO
        await ws.close()


async def test_no_audio_after_the_stop(gw: TestClient, r: aioredis.Redis) -> None:
    """The resumed connection stops; the old one's late frames are not written after the stop."""
    sid, ws1, ws2 = await two_connections(gw)
    await send(ws2, AUDIO[FRAME * 5 : FRAME * 10])
    await ws2.send_str(json.dumps({"type": "stop"}))
    await until(lambda: r.hget(keys.session(sid), "status"), b"stopping")
    await ws1.send_bytes(AUDIO[FRAME * 10 : FRAME * 11])
    assert (await next_of(ws1, "error"))["code"] == "audio_after_stop"
    entries = await r.xrange(keys.audio(sid))
    assert [from_fields(f).type for _, f in entries][-1] == "audio_stop"
    assert await stored(r, sid) == AUDIO[: FRAME * 10]
    await ws1.close()
    await ws2.close()


@pytest.fixture
async def replica(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[aioredis.Redis]:
    """A real replica of the test Redis; detached again afterwards."""
    port = free_port()
    proc = start_redis(port, tmp_path_factory.mktemp("replica"), appendonly=False)
    conn = aioredis.Redis(port=port)
    master = redis_url.rsplit(":", 1)[1].split("/")[0]
    await conn.execute_command("REPLICAOF", "127.0.0.1", master)
    try:
        yield conn
    finally:
        await conn.aclose()
        proc.terminate()
        proc.wait(10)


async def test_with_wait_no_ack_until_a_replica_has_it(redis_url: str, r: aioredis.Redis) -> None:
    async with TestClient(gateway(redis_url, ack_wait_replicas=1, ack_wait_timeout_ms=100)) as gw:
        ws, session = await connect(gw)
        sid = session["session"]
        await send(ws, AUDIO[: FRAME * 5])
        with pytest.raises(TimeoutError):  # no replica: stored, but never acknowledged
            await next_of(ws, "ack", within=1.5)
        assert await stored(r, sid) == AUDIO[: FRAME * 5]
        await ws.close()


async def test_with_wait_acks_come_once_the_replica_has_the_audio(
    redis_url: str, replica: aioredis.Redis
) -> None:
    async with TestClient(gateway(redis_url, ack_wait_replicas=1, ack_wait_timeout_ms=2000)) as gw:
        ws, session = await connect(gw)
        sid = session["session"]
        await send(ws, AUDIO)
        await acked(ws, len(AUDIO), within=30)
        assert await stored(replica, sid) == AUDIO  # on the replica when it was acknowledged
        await ws.close()


async def test_only_the_connection_attached_last_detaches(r: aioredis.Redis, redis_url: str) -> None:
    """A client resumed on a new connection; its old one, noticed dead later, must not start the grace
    timer that would stop the session under the new one."""
    from services.gateway.sessions import SessionStore
    from shared.messages import SessionConfig

    store = SessionStore(r, GatewaySettings(redis_url=redis_url))
    sid = "detach-" + os.urandom(6).hex()
    await store.create(sid, SessionConfig())
    await store.attach(sid, "old")
    await store.attach(sid, "new")
    assert await store.detach(sid, "old") is None
    assert await r.hget(keys.session(sid), "detached") is None
    token = await store.detach(sid, "new")
    assert token is not None and await r.hget(keys.session(sid), "detached") == token.encode()
    assert await store.stop_if_still_detached(sid, token, 0)
