"""The enrolled-voice routes on a real Redis: enrol (any format PyAV reads), list, delete, per owner,
and clear refusals of what is no voice."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest
import redis.asyncio as aioredis
from aiohttp import FormData
from aiohttp.test_utils import TestClient

from services.gateway import voices
from shared import keys
from tests.util import DATA

OWNER_A = {"X-ClassRec-Owner": "owner-a-0123456789abcdef"}
OWNER_B = {"X-ClassRec-Owner": "owner-b-0123456789abcdef"}


def form(data: bytes, name: str | None = "Prof. Reader", filename: str = "enrol.ogg") -> FormData:
    f = FormData()
    f.add_field("file", data, filename=filename, content_type="application/octet-stream")
    if name is not None:
        f.add_field("name", name)
    return f


def wav_bytes(x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
    return buf.getvalue()


async def test_enrol_list_delete_per_owner(client: TestClient, r: aioredis.Redis) -> None:
    ogg = (DATA / "voice" / "lj.enrol.ogg").read_bytes()
    resp = await client.post("/api/voices", data=form(ogg), headers=OWNER_A)
    assert resp.status == 201, await resp.text()
    got = await resp.json()
    assert got["name"] == "Prof. Reader" and 15 < got["seconds"] < 17 and got["voice"]
    voice = got["voice"]
    listed = await (await client.get("/api/voices", headers=OWNER_A)).json()
    assert [v["voice"] for v in listed["voices"]] == [voice]
    assert "embedding" not in listed["voices"][0]
    assert (await (await client.get("/api/voices", headers=OWNER_B)).json())["voices"] == []
    # the embedding is kept under the hashed owner key, never the key itself
    stored = [k.decode() async for k in r.scan_iter(match=keys.voices("*"))]
    assert voices.voices_key(OWNER_A["X-ClassRec-Owner"]) in stored
    assert not any(OWNER_A["X-ClassRec-Owner"] in k for k in stored)
    assert await voices.voice_for(r, OWNER_A["X-ClassRec-Owner"], voice) is not None
    assert await voices.voice_for(r, OWNER_B["X-ClassRec-Owner"], voice) is None
    assert (await client.delete(f"/api/voices/{voice}", headers=OWNER_B)).status == 404
    assert (await client.delete(f"/api/voices/{voice}", headers=OWNER_A)).status == 200
    assert (await (await client.get("/api/voices", headers=OWNER_A)).json())["voices"] == []
    assert (await client.delete(f"/api/voices/{voice}", headers=OWNER_A)).status == 404


@pytest.mark.parametrize(
    "make, code",
    [
        (lambda: wav_bytes(np.zeros(16000 * 3)), "too_short"),
        (lambda: wav_bytes(np.zeros(16000 * 8)), "silence"),
        (lambda: wav_bytes(np.random.default_rng(1).standard_normal(16000 * 8) * 0.1), "no_speech"),
        (lambda: b"this is not audio at all" * 100, "invalid_audio"),
    ],
)
async def test_refusals(client: TestClient, make, code: str) -> None:
    resp = await client.post("/api/voices", data=form(make(), filename="x.wav"), headers=OWNER_A)
    assert resp.status == 400
    body = await resp.json()
    assert body["code"] == code and body["error"]


async def test_owner_and_form_required(client: TestClient) -> None:
    ogg = (DATA / "voice" / "lj.enrol.ogg").read_bytes()
    resp = await client.post("/api/voices", data=form(ogg))
    assert resp.status == 400 and (await resp.json())["code"] == "no_owner"
    assert (await client.get("/api/voices", headers={"X-ClassRec-Owner": "short"})).status == 400
    resp = await client.post("/api/voices", data=form(ogg, name=None), headers=OWNER_A)
    assert resp.status == 400 and (await resp.json())["code"] == "bad_name"
    resp = await client.post("/api/voices", data=b"{}", headers=OWNER_A)
    assert resp.status == 400 and (await resp.json())["code"] == "bad_form"
