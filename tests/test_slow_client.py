"""A client that does not read gets a bounded queue, then `slow_client` and a close; others go on."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
import redis.asyncio as aioredis

from services.gateway.sessions import SessionStore
from shared.messages import SessionConfig, TranscriptEvent, to_fields
from shared.settings import GatewaySettings
from tests.client import stream
from tests.util import Stack

pytestmark = pytest.mark.slow  # the whole stack


async def test_a_client_that_never_reads_is_cut_off_alone(stack: Stack) -> None:
    s = GatewaySettings(redis_url=stack.redis_url)
    r = aioredis.Redis.from_url(stack.redis_url)
    sid = "slowclient-session-0001"
    await SessionStore(r, s).create(sid, SessionConfig())
    text = "word " * 100
    async with r.pipeline(transaction=False) as pipe:  # ~12 MB of events: more than socket buffers hold
        for i in range(24000):
            pipe.xadd(
                s.events_key(sid),
                to_fields(TranscriptEvent(segment=i, start=i, end=i + 1, text=text, final=True)),
            )
        await pipe.execute()
    async with aiohttp.ClientSession() as http, http.ws_connect(stack.ws, max_msg_size=0) as ws:
        await ws.send_str(json.dumps({"type": "start", "session": sid}))
        # Not reading, while another session runs normally beside it.
        other = await asyncio.wait_for(stream(stack.ws, b"\x00\x00" * 16000), 60)
        assert [m["type"] for m in other] == ["session", "end"]
        seen = []
        async for msg in ws:  # now read what was delivered before the cut
            seen.append(json.loads(msg.data))
        assert ws.close_code in (1008, 1006), ws.close_code  # cut off (1006 if the close frame was stuck)
        assert len(seen) < 24000, "the queue was bounded: not everything was delivered"
        assert all(m["type"] == "error" and m["code"] == "slow_client" for m in seen if m["type"] == "error")
    await r.delete(s.events_key(sid))
    await r.aclose()
