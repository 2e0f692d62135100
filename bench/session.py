"""One session over the WebSocket protocol, as a client would run it: `start`, the audio paced at
`speed` times real time in 0.1-s frames, `stop`, and every message received with its arrival time."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

import aiohttp

from bench.common import SAMPLE_RATE

FRAME_S = 0.1


@dataclass
class SessionRun:
    """What one session saw: messages as (seconds since the first audio frame, message)."""

    messages: list[tuple[float, dict]] = field(default_factory=list)
    stop_at: float | None = None  # when stop was sent, same clock
    completed: bool = False
    error: str | None = None
    t0: float | None = None  # monotonic time of the first audio frame


async def _receive(ws: aiohttp.ClientWebSocketResponse, raw: list[tuple[float, dict]]) -> bool:
    """Collect text frames with their monotonic arrival time until "end"; False if closed before."""
    async for m in ws:
        if m.type != aiohttp.WSMsgType.TEXT:
            continue
        try:
            obj = json.loads(m.data)
        except ValueError:
            obj = {"type": "unparsable", "data": m.data}
        raw.append((time.monotonic(), obj))
        if obj.get("type") == "end":
            return True
    return False


async def _send_audio(ws: aiohttp.ClientWebSocketResponse, pcm: bytes, speed: float, run: SessionRun) -> None:
    """Send `pcm` in FRAME_S frames paced at real time x speed, from run.t0 on."""
    frame = int(FRAME_S * SAMPLE_RATE) * 2
    run.t0 = t0 = time.monotonic()
    for i, off in enumerate(range(0, len(pcm), frame)):
        delay = t0 + i * FRAME_S / speed - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if ws.closed:
            return
        await ws.send_bytes(pcm[off : off + frame])


async def _session_io(
    ws: aiohttp.ClientWebSocketResponse,
    pcm: bytes,
    speed: float,
    end_wait_s: float,
    run: SessionRun,
    raw: list[tuple[float, dict]],
    start: dict | None = None,
) -> None:
    await ws.send_str(json.dumps(start or {"type": "start", "language": "en"}))
    receiver = asyncio.create_task(_receive(ws, raw))
    try:
        await _send_audio(ws, pcm, speed, run)
        if not ws.closed:
            await ws.send_str(json.dumps({"type": "stop"}))
        run.stop_at = time.monotonic()
        run.completed = await asyncio.wait_for(receiver, end_wait_s)
    except TimeoutError:
        run.error = f"no {{'type': 'end'}} within {end_wait_s:g} s of stop"
        return
    finally:
        receiver.cancel()
    if not run.completed:
        run.error = "connection closed before {'type': 'end'}"


async def stream_session(
    http: aiohttp.ClientSession,
    url: str,
    pcm: bytes,
    speed: float,
    end_wait_s: float,
    start: dict | None = None,
) -> SessionRun:
    """Stream one session (`start`: the start message, default English); never raises for connection
    or protocol trouble (see .error)."""
    run, raw = SessionRun(), []
    try:
        async with http.ws_connect(url, max_msg_size=0) as ws:
            await _session_io(ws, pcm, speed, end_wait_s, run, raw, start)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        run.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    t0 = run.t0 if run.t0 is not None else (raw[0][0] if raw else 0.0)
    run.messages = [(t - t0, m) for t, m in raw]
    run.stop_at = None if run.stop_at is None else run.stop_at - t0
    return run
