"""kill -9 the VAD worker that owns a session, mid-utterance, while a second replica runs: the second
takes the session over from its checkpoint; the transcript is complete and nothing is duplicated."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import redis

from shared.redis_server import start_redis
from tests.client import FRAME_BYTES, collect, finals
from tests.conftest import ROOT, Lecture, free_port, wait_ready

pytestmark = pytest.mark.slow


class Procs:
    """The services as separate processes on their own Redis, each with its own log."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.port, self.redis_port = tmp, free_port(), free_port()
        self.redis = start_redis(self.redis_port, tmp / "redis")
        self.env = {
            **os.environ,
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "PORT": str(self.port),
            "VAD_LEASE_S": "2",
            "CLAIM_IDLE_MS": "3000",
        }
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, module: str) -> None:
        log = (self.tmp / f"{name}.log").open("w")
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", module], cwd=ROOT, env=self.env, stderr=log
        )

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        self.redis.terminate()
        self.redis.wait(10)


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    p = Procs(tmp_path)
    try:
        for name, module in [
            ("gateway", "services.gateway"),
            ("vad-a", "services.vad"),
            ("vad-b", "services.vad"),
            ("transcriber", "services.transcriber"),
            ("alerts", "services.alerts"),
        ]:
            p.start(name, module)
        wait_ready(f"http://127.0.0.1:{p.port}", p.procs["gateway"], tmp_path / "gateway.log")
        yield p
    finally:
        p.stop()


def owner_pid(p: Procs, sid: str) -> int:
    owner = redis.Redis(port=p.redis_port).get(f"vadlease:{sid}")
    assert owner is not None, "the session has an owner"
    return int(owner.decode().rsplit("-", 1)[1])


async def stream_with_kill(p: Procs, pcm: bytes, kill_at_s: float) -> list[dict]:
    """Stream at 4x real time; SIGKILL the owning VAD when `kill_at_s` of audio has been sent."""
    got: list[dict] = []
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"ws://127.0.0.1:{p.port}/ws/transcribe") as ws,
    ):
        await ws.send_str(json.dumps({"type": "start", "language": "en"}))
        sid = json.loads((await ws.receive()).data)["session"]
        got.append({"type": "session", "session": sid})
        reader = asyncio.create_task(collect(ws, got))
        killed = None
        for i in range(0, len(pcm), FRAME_BYTES):
            if killed is None and i >= kill_at_s * 32000:
                killed = owner_pid(p, sid)
                os.kill(killed, signal.SIGKILL)
            await ws.send_bytes(pcm[i : i + FRAME_BYTES])
            await asyncio.sleep(0.1 / 4)  # pacing the audio like a live client, not a synchronisation
        await ws.send_str(json.dumps({"type": "stop"}))
        await asyncio.wait_for(reader, 120)
    assert killed is not None
    return got


async def test_kill_the_owning_vad_mid_utterance(procs: Procs, lecture1: Lecture) -> None:
    pcm = lecture1.pcm[: 40 * 32000]
    got = await stream_with_kill(procs, pcm, kill_at_s=15.5)  # inside "...lab report is due on Thursday..."
    assert got[-1] == {"type": "end"}
    fs = finals(got)
    assert [f["segment"] for f in fs] == list(range(len(fs))), "every segment exactly once"
    speech = [s for s in lecture1.speech if s["end"] < 40]
    assert len(fs) == len(speech)
    text = " ".join(f["text"] for f in fs).lower()
    for w in ("protein", "membrane", "report is due on thursday", "natural selection", "photosynthesis"):
        assert w in text, (w, text)
    logs = "".join((procs.tmp / f"{n}.log").read_text() for n in ("vad-a", "vad-b"))
    assert "taken over from checkpoint" in logs
