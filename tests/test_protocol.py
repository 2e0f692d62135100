"""Bad input at the WebSocket gets an error frame (or close 1009) and the server goes on."""

from __future__ import annotations

import json

import aiohttp
import pytest

from tests.client import collect, stream
from tests.util import Stack

pytestmark = pytest.mark.slow  # every test here runs on the whole stack


async def exchange(url: str, frames: list[str | bytes]) -> tuple[list[dict], int | None]:
    """Send frames, then stop; return what came back and the close code."""
    messages: list[dict] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        for f in frames:
            await (ws.send_bytes(f) if isinstance(f, bytes) else ws.send_str(f))
        if not ws.closed:
            await ws.send_str(json.dumps({"type": "stop"}))
        await collect(ws, messages)
        if not ws.closed:
            await ws.receive()
        return messages, ws.close_code


def errors(messages: list[dict]) -> list[str]:
    return [m["code"] for m in messages if m["type"] == "error"]


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        ([b"\x00\x01\x02"], "odd_frame"),
        (["{not json"], "bad_json"),
        ([json.dumps({"type": "hello"})], "unknown_type"),
        ([json.dumps([1, 2])], "unknown_type"),
        ([json.dumps({"type": "start", "keywords": "not a list"})], "bad_message"),
        ([json.dumps({"type": "start"}), json.dumps({"type": "start"})], "already_started"),
    ],
)
async def test_bad_frame_gets_an_error_and_the_session_goes_on(stack: Stack, frames: list, code: str) -> None:
    messages, _ = await exchange(stack.ws, [*frames, b"\x00\x00" * 1600])
    assert code in errors(messages)
    assert messages[-1] == {"type": "end"}, "the session still ends normally"


async def test_audio_after_stop_is_an_error(stack: Stack) -> None:
    messages: list[dict] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(stack.ws) as ws:
        await ws.send_bytes(b"\x00\x00" * 1600)
        await ws.send_str(json.dumps({"type": "stop"}))
        await ws.send_bytes(b"\x00\x00" * 1600)
        await collect(ws, messages)
    assert "audio_after_stop" in errors(messages)
    assert messages[-1] == {"type": "end"}


@pytest.mark.parametrize("frame", [b"\x00" * ((1 << 20) + 2), "x" * ((1 << 20) + 1)])
async def test_oversized_frame_closes_with_1009_and_others_go_on(stack: Stack, frame: bytes | str) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(stack.ws) as ws:
        await ws.send_bytes(b"\x00\x00" * 1600)
        await (ws.send_bytes(frame) if isinstance(frame, bytes) else ws.send_str(frame))
        while (await ws.receive()).type not in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            pass
        assert ws.close_code == 1009
    messages = await stream(stack.ws, b"\x00\x00" * 16000)
    assert [m["type"] for m in messages] == ["session", "end"]


async def test_healthz_reports_every_service(stack: Stack) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{stack.http}/healthz") as resp:
        body = await resp.json()
    assert resp.status == 200 and body["ready"]
    assert set(body["workers"]) >= {"vad", "transcriber", "alerts"}


async def test_page_is_served(stack: Stack) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{stack.http}/") as resp:
        html = await resp.text()
    assert resp.status == 200 and "<html" in html.lower()
