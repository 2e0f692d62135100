"""Redis without a single point of failure: every service follows a Sentinel failover. A real master,
a replica and three sentinels; the master is killed with SIGKILL in the middle of a lecture."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared import keys
from tests.faults_util import Client, Cluster, alert_categories, check_transcript, finish, wait_for
from tests.sentinel_util import MASTER_NAME, SentinelSet
from tests.util import Lecture

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
RATE = 32000
SPLIT_S = 25.0  # inside the noise stretch after the fourth sentence of lecture1
CUT_S = 60.0  # the first ten sentences: the deadline, the exam and the quiz


@pytest.fixture
def ha(tmp_path: Path) -> Iterator[tuple[SentinelSet, Cluster]]:
    sentinels = SentinelSet(tmp_path / "redis")
    (tmp_path / "redis").mkdir()
    c = Cluster(tmp_path, REDIS_SENTINELS=sentinels.hosts, REDIS_MASTER_NAME=MASTER_NAME)
    try:
        sentinels.start()
        c.r = sentinels.client()  # the cluster's own checks follow the master too
        names = ("gateway", "vad", "transcriber-1", "alerts")
        c.start(*names)
        c.wait_ready(*names)
        yield sentinels, c
    finally:
        c.close()
        sentinels.close()


async def test_sigkill_of_the_master_mid_lecture_loses_no_final(
    ha: tuple[SentinelSet, Cluster], lecture1: Lecture
) -> None:
    sentinels, c = ha
    client = Client(c.ws)
    try:
        await client.connect({"type": "start", "language": "en"})
        await client.send_audio(lecture1.pcm[: int(SPLIT_S * RATE)])
        await client.wait_finals(2)
        before = {
            m["segment"]: m["text"] for m in client.messages if m["type"] == "transcript" and m["final"]
        }
        # Killed while no audio is in flight: what the client sent before is written and replicated.
        # (Audio in the socket when the master dies is what the client resends after `received`.)
        await asyncio.to_thread(sentinels.kill_master)
        await asyncio.to_thread(
            wait_for, lambda: sentinels.master() == sentinels.replica_port, 30, "the failover"
        )
        resumes = await finish(client, lecture1.pcm[int(SPLIT_S * RATE) : int(CUT_S * RATE)], speed=8)
    finally:
        await client.disconnect()
    assert resumes <= 2, client.drops
    assert CUT_S - 1 <= c.audio_seconds(client.sid) <= CUT_S, "the audio after the failover is all there"
    # Every utterance once, in order, the right sentences; finals seen before the kill unchanged.
    shown = check_transcript(client.conns, lecture1, CUT_S, allowed_errors=("unavailable",))
    assert all(shown[seg] == text for seg, text in before.items())
    assert alert_categories(client.conns) == ["deadline", "exam", "quiz"]
    logs = c.logs()
    assert "Traceback" not in logs, logs
    wait_for(lambda: c.r.get(keys.heartbeat("vad", c.consumer("vad"))), 30, "the VAD on the new master")
