"""The recorded audio: the spool kept exact across a takeover, its Ogg Opus encoding, and
`GET /api/sessions/{sid}/audio` with Range and owner checks, on a real Redis."""

from __future__ import annotations

import secrets
from pathlib import Path

import numpy as np
from aiohttp.test_utils import TestClient

from services.gateway.owners import OWNER_HEADER, digest
from services.gateway.sessions import SessionStore
from services.vad.recording import Recording, encode, orphan_spools
from shared import keys
from shared.messages import SessionConfig
from shared.recordings import opus_path, spool_path
from shared.settings import GatewaySettings
from tests.audio_util import opus_seconds


def tone(seconds: float, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * 16000)) / 16000
    return (np.sin(2 * np.pi * freq * t) * 8000).astype(np.int16)


def test_takeover_cuts_the_spool_back_to_the_checkpoint(tmp_path: Path) -> None:
    first = Recording(tmp_path, "sid-rec-1")
    first.open_at(0)
    first.append(tone(2.0))
    first.flush()  # checkpoint at 2 s ...
    first.append(tone(1.5))  # ... then 1.5 s more before the worker dies
    first.close()
    second = Recording(tmp_path, "sid-rec-1")
    second.open_at(32000)  # the checkpoint's samples
    second.append(tone(1.5))  # re-read after the checkpoint
    second.close()
    assert first.spool.stat().st_size == (32000 + 24000) * 2  # 3.5 s: no gap, nothing twice
    pcm = np.frombuffer(first.spool.read_bytes(), np.int16)
    assert np.array_equal(pcm, np.concatenate([tone(2.0), tone(1.5)]))


def test_a_lost_spool_is_padded_to_keep_the_timing(tmp_path: Path) -> None:
    rec = Recording(tmp_path, "sid-rec-2")
    rec.open_at(16000)
    rec.append(tone(1.0))
    rec.close()
    assert rec.spool.stat().st_size == 2 * 32000


def test_encoded_as_ogg_opus_of_the_same_length(tmp_path: Path, lecture1_audio: np.ndarray) -> None:
    rec = Recording(tmp_path, "sid-rec-3")
    rec.open_at(0)
    rec.append(lecture1_audio[: int(61.37 * 16000)])
    rec.close()
    assert orphan_spools(tmp_path, live=set()) == [(rec.spool, rec.opus, "sid-rec-3")]
    assert orphan_spools(tmp_path, live={"sid-rec-3"}) == []
    seconds = encode(rec.spool, rec.opus, "sid-rec-3")
    assert seconds == 61.37
    assert not rec.spool.exists()
    data = rec.opus.read_bytes()
    assert data[:4] == b"OggS" and b"OpusHead" in data[:200]
    assert abs(opus_seconds(data) - 61.37) < 0.02
    # Speech at about the 24 kb/s asked for: 16 MB for 90 minutes (22.7 kb/s on lecture1)
    assert len(data) * 5400 / 61.37 < 16.5e6, len(data)


async def test_audio_route_serves_ranges_to_the_owner_only(client: TestClient, r) -> None:  # type: ignore[no-untyped-def]
    s = GatewaySettings()
    key = "owner-" + secrets.token_urlsafe(16)
    sid = "rec" + secrets.token_hex(8)
    await SessionStore(r, s).create(sid, SessionConfig(), digest(key))
    await r.hset(keys.session(sid), "status", "ended")
    rec = Recording(opus_path(s, sid).parent, sid)
    rec.open_at(0)
    rec.append(tone(5.0))
    rec.close()
    encode(rec.spool, rec.opus, sid)
    whole = rec.opus.read_bytes()
    mine = {OWNER_HEADER: key}
    resp = await client.get(f"/api/sessions/{sid}/audio", headers=mine)
    assert resp.status == 200 and resp.headers["Content-Type"] == "audio/ogg"
    assert resp.headers.get("Accept-Ranges") == "bytes"
    assert await resp.read() == whole
    resp = await client.get(f"/api/sessions/{sid}/audio", headers={**mine, "Range": "bytes=100-199"})
    assert resp.status == 206 and await resp.read() == whole[100:200]
    assert resp.headers["Content-Range"] == f"bytes 100-199/{len(whole)}"
    resp = await client.get(f"/api/sessions/{sid}/audio?owner={key}", headers={"Range": "bytes=-50"})
    assert resp.status == 206 and await resp.read() == whole[-50:]
    other = {OWNER_HEADER: "other-" + secrets.token_urlsafe(16)}
    assert (await client.get(f"/api/sessions/{sid}/audio", headers=other)).status == 404
    assert (await client.get(f"/api/sessions/{sid}/audio")).status == 404


async def test_audio_of_a_lecture_still_recording_is_a_409(client: TestClient, r) -> None:  # type: ignore[no-untyped-def]
    s = GatewaySettings()
    sid = "rec" + secrets.token_hex(8)
    await SessionStore(r, s).create(sid, SessionConfig())
    resp = await client.get(f"/api/sessions/{sid}/audio")
    assert resp.status == 409 and "still being recorded" in (await resp.json())["error"]
    await r.hset(keys.session(sid), "status", "ended")
    assert not spool_path(s, sid).exists()
    assert (await client.get(f"/api/sessions/{sid}/audio")).status == 404


async def test_finish_encodes_in_a_child_process(tmp_path: Path) -> None:
    from services.vad.recording import finish

    rec = Recording(tmp_path, "sid-rec-4")
    rec.open_at(0)
    rec.append(tone(3.0))
    rec.close()
    await finish(rec.spool, rec.opus, "sid-rec-4")
    assert not rec.spool.exists() and abs(opus_seconds(rec.opus.read_bytes()) - 3.0) < 0.02
    await finish(rec.spool, rec.opus, "sid-rec-4")  # a second time (the sweep racing the owner): no error
    assert rec.opus.exists()
