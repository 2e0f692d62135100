"""kill -9 the VAD that owns a voice-locked session while another speaker talks: the replica that takes
the session over has never seen its `session_opened`, so the lock (voice, mode) must come from the
checkpoint; the other speaker stays out of the transcript, the lecturer's words and alerts are there."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.client import finals
from tests.cluster_util import vad_owner, vad_replicas
from tests.faults_util import Cluster
from tests.util import DATA

pytestmark = pytest.mark.slow
OWNER = "takeover-owner-0123456789"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with vad_replicas(tmp_path) as c:
        yield c


async def test_lock_survives_a_vad_takeover(cluster: Cluster) -> None:
    import asyncio

    from tests.client import FRAME_BYTES, collect

    pcm = (DATA / "voice" / "lock.wav").read_bytes()[44:]
    form = aiohttp.FormData()
    form.add_field("file", (DATA / "voice" / "lock.enrol.ogg").read_bytes(), filename="enrol.ogg")
    form.add_field("name", "Dr. Rms")
    got: list[dict] = []
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{cluster.http}/api/voices", data=form, headers={"X-ClassRec-Owner": OWNER}
        ) as resp:
            assert resp.status == 201, await resp.text()
            voice = (await resp.json())["voice"]
        async with http.ws_connect(cluster.ws) as ws:
            await ws.send_str(
                json.dumps({"type": "start", "owner": OWNER, "voice": voice, "timezone": "UTC"})
            )
            sid = json.loads((await ws.receive()).data)["session"]
            reader = asyncio.create_task(collect(ws, got))
            killed = None
            for i in range(0, len(pcm), FRAME_BYTES):
                if killed is None and i >= 17.5 * 32000:  # the LJSpeech reader speaks 14.4-21.9 s
                    killed = vad_owner(cluster, sid)
                    cluster.kill(killed)
                await ws.send_bytes(pcm[i : i + FRAME_BYTES])
                await asyncio.sleep(0.1 / 4)  # pacing like a live client at 4x, not a synchronisation
            await ws.send_str(json.dumps({"type": "stop"}))
            await asyncio.wait_for(reader, 120)
    assert got[-1] == {"type": "end"}
    fs = finals(got)
    assert [f["segment"] for f in fs] == list(range(len(fs)))
    heard = set(re.findall(r"[a-z']+", " ".join(f["text"] for f in fs).lower()))
    assert {"mitochondria", "exam", "december"} <= heard, heard
    assert not heard & {"printing", "battery", "laptop", "movable"}, heard
    assert sorted(a["category"] for a in got if a["type"] == "alert") == ["deadline", "exam"]
    logs = cluster.log("vad-1") + cluster.log("vad-2")
    assert "taken over from checkpoint" in logs
