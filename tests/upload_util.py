"""Uploads through the gateway's HTTP API, for the tests: the multipart form, and following an
upload's progress until it is done."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

DEADLINE_S = 90.0  # an upload in the tests is done within this


def form(data: bytes, filename: str, **fields: str) -> aiohttp.FormData:
    f = aiohttp.FormData()
    f.add_field("file", data, filename=filename, content_type="application/octet-stream")
    for name, value in fields.items():
        f.add_field(name, value)
    return f


async def until_done(http: aiohttp.ClientSession, sid: str) -> list[dict[str, Any]]:
    """Every progress report until `done` (polling the gateway, which is the external condition)."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        async with http.get(f"/api/uploads/{sid}") as resp:
            assert resp.status == 200
            seen.append(await resp.json())
        assert seen[-1]["status"] in ("feeding", "transcribing", "done"), seen[-1]
        if seen[-1]["status"] == "done":
            return seen
        await asyncio.sleep(0.25)
    raise AssertionError(f"upload {sid} not done in {DEADLINE_S}s: {seen[-1]}")
