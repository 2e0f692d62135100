"""kill -9 the VAD worker that owns a session, mid-utterance, while a second replica runs: the second
takes the session over from its checkpoint; the transcript is complete and nothing is duplicated."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.audio_util import opus_seconds
from tests.client import FRAME_BYTES, collect, finals
from tests.cluster_util import vad_owner, vad_replicas
from tests.faults_util import Cluster, wait_for
from tests.transcripts import assert_heard
from tests.util import Lecture

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with vad_replicas(tmp_path) as c:
        yield c


async def stream_with_kill(c: Cluster, pcm: bytes, kill_at_s: float) -> list[dict]:
    """Stream at 4x real time; SIGKILL the owning VAD when `kill_at_s` of audio has been sent."""
    got: list[dict] = []
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(c.ws) as ws,
    ):
        await ws.send_str(json.dumps({"type": "start", "language": "en"}))
        sid = json.loads((await ws.receive()).data)["session"]
        got.append({"type": "session", "session": sid})
        reader = asyncio.create_task(collect(ws, got))
        killed = None
        for i in range(0, len(pcm), FRAME_BYTES):
            if killed is None and i >= kill_at_s * 32000:
                killed = vad_owner(c, sid)
                c.kill(killed)
            await ws.send_bytes(pcm[i : i + FRAME_BYTES])
            await asyncio.sleep(0.1 / 4)  # pacing the audio like a live client, not a synchronisation
        await ws.send_str(json.dumps({"type": "stop"}))
        await asyncio.wait_for(reader, 120)
    assert killed is not None
    return got


async def test_kill_the_owning_vad_mid_utterance(cluster: Cluster, lecture1: Lecture) -> None:
    pcm = lecture1.pcm[: 40 * 32000]
    got = await stream_with_kill(cluster, pcm, kill_at_s=15.5)  # inside "...lab report is due on Thursday..."
    assert got[-1] == {"type": "end"}
    fs = finals(got)
    assert [f["segment"] for f in fs] == list(range(len(fs))), "every segment exactly once"
    speech = [s for s in lecture1.speech if s["end"] < 40]
    assert len(fs) == len(speech)
    assert_heard([s["text"] for s in speech], [f["text"] for f in fs])
    alerts = [m["category"] for m in got if m["type"] == "alert"]
    assert alerts == [a["category"] for a in lecture1.truth["alerts"] if a["start"] < 40]
    logs = cluster.log("vad-1") + cluster.log("vad-2")
    assert "taken over from checkpoint" in logs
    # The recording too: no gap, nothing twice (the new owner re-read seconds of the utterance the
    # dead one had already appended to the spool), so exactly as long as the audio sent.
    audio = wait_for(lambda: fetch_audio(cluster, got[0]["session"]), 60, "the recorded audio")
    assert abs(opus_seconds(audio) - len(pcm) / 32000) < 0.05


def fetch_audio(c: Cluster, sid: str) -> bytes | None:
    """The session's recorded audio, None while it is still being encoded (409)."""
    try:
        with urllib.request.urlopen(f"{c.http}/api/sessions/{sid}/audio", timeout=10) as resp:
            return resp.read()
    except urllib.error.HTTPError as e:
        if e.code == 409:
            return None
        raise
