"""A dropped connection is resumed with the session id: nothing missing, nothing duplicated."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from tests.client import FRAME_BYTES, collect, finals, stream
from tests.transcripts import assert_heard
from tests.util import Lecture, Stack

pytestmark = pytest.mark.slow


async def send_audio(ws: aiohttp.ClientWebSocketResponse, pcm: bytes) -> None:
    for i in range(0, len(pcm), FRAME_BYTES):
        await ws.send_bytes(pcm[i : i + FRAME_BYTES])


async def first_part(url: str, pcm: bytes) -> tuple[str, list[dict]]:
    """Stream the first part, wait for its first final, then drop the connection without stop."""
    got: list[dict] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        await ws.send_str(json.dumps({"type": "start", "language": "en"}))
        await send_audio(ws, pcm)
        async for msg in ws:
            got.append(json.loads(msg.data))
            if got[-1]["type"] == "transcript" and got[-1]["final"]:
                break
    return got[0]["session"], got


async def resumed_part(url: str, sid: str, pcm: bytes) -> list[dict]:
    got: list[dict] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        await ws.send_str(json.dumps({"type": "start", "session": sid}))
        await send_audio(ws, pcm)
        await ws.send_str(json.dumps({"type": "stop"}))
        await collect(ws, got)
    return got


def client_view(messages: list[dict]) -> dict[int, str]:
    """What a client shows: the final text per segment (a repeated final must be identical)."""
    shown: dict[int, str] = {}
    for m in finals(messages):
        assert shown.setdefault(m["segment"], m["text"]) == m["text"], "a final changed"
    return shown


async def test_drop_and_resume_loses_nothing(stack: Stack, lecture1: Lecture) -> None:
    cut = 15 * 32000  # in the middle of the third sentence ("...lab report is due...")
    pcm1, pcm2 = lecture1.pcm[:cut], lecture1.pcm[cut : 46 * 32000]
    sid, before = await first_part(stack.ws, pcm1)
    await asyncio.sleep(5.0)  # the outage itself: the client is away for 5 s
    after = await resumed_part(stack.ws, sid, pcm2)
    assert after[0] == {"type": "session", "session": sid, "received": len(pcm1)}  # all of it held
    assert after[-1] == {"type": "end"} and not [m for m in after if m["type"] == "error"]
    shown = client_view(before + after)
    assert sorted(shown) == list(range(len(shown)))
    speech = [s for s in lecture1.speech if s["start"] < 46]
    assert len(shown) == len(speech), shown
    assert_heard([s["text"] for s in speech], [shown[k] for k in sorted(shown)])
    alerts = [m for m in after if m["type"] == "alert"]
    assert sorted(a["category"] for a in alerts) == ["deadline", "exam"]


async def test_resume_of_an_unknown_session_starts_a_new_one(stack: Stack) -> None:
    got = await stream(
        stack.ws, b"\x00\x00" * 16000, start={"type": "start", "session": "no-such-session-123"}
    )
    assert got[0]["type"] == "error" and got[0]["code"] == "unknown_session"
    assert got[1]["type"] == "session" and got[1]["session"] != "no-such-session-123"
    assert got[-1] == {"type": "end"}


async def test_resume_after_the_end_replays_and_ends(stack: Stack, lecture1: Lecture) -> None:
    first = await stream(stack.ws, lecture1.pcm[: 12 * 32000])
    sid = first[0]["session"]
    again = await stream(stack.ws, b"", start={"type": "start", "session": sid})
    assert again[0] == {"type": "session", "session": sid, "received": 12 * 32000}
    assert client_view(again) == client_view(first)
    assert again[-1] == {"type": "end"}
