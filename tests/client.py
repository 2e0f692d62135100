"""A protocol client for tests: streams PCM through /ws/transcribe and collects what comes back."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp

FRAME_BYTES = 3200  # 100 ms of PCM16 at 16 kHz


async def stream(
    url: str,
    pcm: bytes,
    start: dict[str, Any] | None = None,
    speed: float | None = None,
    wait_s: float = 300,
) -> list[dict[str, Any]]:
    """Send `pcm` (paced at `speed`× real time, or as fast as possible), then stop; return all messages."""
    messages: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        if start is not None:
            await ws.send_str(json.dumps(start))
        t0 = time.monotonic()
        reader = asyncio.create_task(collect(ws, messages))
        for i in range(0, len(pcm), FRAME_BYTES):
            if speed:
                due = t0 + i / 32000 / speed
                await asyncio.sleep(max(0.0, due - time.monotonic()))
            await ws.send_bytes(pcm[i : i + FRAME_BYTES])
        await ws.send_str(json.dumps({"type": "stop"}))
        await asyncio.wait_for(reader, wait_s)
    return messages


async def collect(
    ws: aiohttp.ClientWebSocketResponse, messages: list[dict[str, Any]], acks: bool = False
) -> None:
    """Every message until `end`; `ack`s only when asked for (tests/test_acks.py checks them)."""
    async for msg in ws:
        if msg.type == aiohttp.WSMsgType.TEXT:
            data = json.loads(msg.data)
            if data["type"] == "ack" and not acks:
                continue
            messages.append(data)
            if data["type"] == "end":
                return


def finals(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(
        (m for m in messages if m["type"] == "transcript" and m["final"]), key=lambda m: m["segment"]
    )
