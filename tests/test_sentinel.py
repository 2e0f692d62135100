"""Redis without a single point of failure: every service follows a Sentinel failover. A real master,
a replica and three sentinels; the master is killed with SIGKILL in the middle of a lecture."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from shared import keys
from tests.faults_util import Client, Cluster, alert_categories, check_transcript, finish, wait_for
from tests.sentinel_util import MASTER_NAME, AudioTap, SentinelSet
from tests.util import Lecture

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
RATE = 32000
SPLIT_S = 25.0  # inside the noise stretch after the fourth sentence of lecture1
CUT_S = 60.0  # the first ten sentences: the deadline, the exam and the quiz
SPEED = 2.0  # the audio after SPLIT_S, paced (the master dies while it streams)
KILL_S = 35.0  # the master is killed once audio up to here is acknowledged


@pytest.fixture
def ha(tmp_path: Path) -> Iterator[tuple[SentinelSet, Cluster]]:
    sentinels = SentinelSet(tmp_path / "redis")
    (tmp_path / "redis").mkdir()
    # No sentence finals: the segments are then the lecture's utterances whatever the pacing, and
    # check_transcript compares them with the truth one by one.
    c = Cluster(
        tmp_path,
        REDIS_SENTINELS=sentinels.hosts,
        REDIS_MASTER_NAME=MASTER_NAME,
        ACK_WAIT_REPLICAS="1",
        SENTENCE_FINALS="0",
    )
    try:
        sentinels.start()
        for port in (sentinels.master_port, sentinels.replica_port):
            # Stream nodes of 100 entries whatever their size (the default closes a node at 4 KB, one
            # audio entry): the VAD's approximate trim behind its checkpoint then removes whole
            # blocks of 100, and the tap, reading beside the VAD, misses none.
            with redis.Redis(port=port) as server:
                server.config_set("stream-node-max-bytes", 0)
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
    """The master dies while audio streams in (2x real time, acks flowing): the client resumes and
    resends from the `received` the new master reports, as the page does. Nothing acknowledged is
    lost (the gateway acks only after a replica confirmed, ACK_WAIT_REPLICAS=1), the stored audio is
    byte for byte what the client sent, and every final of the lecture comes, once."""
    sentinels, c = ha
    client = Client(c.ws)
    try:
        await client.connect({"type": "start", "language": "en"})
        tap = AudioTap(sentinels, f"audio:{client.sid}")
        tap.start()
        await client.send_audio(lecture1.pcm[: int(SPLIT_S * RATE)])
        await client.wait_finals(2)
        before = {
            m["segment"]: m["text"] for m in client.messages if m["type"] == "transcript" and m["final"]
        }
        sender = asyncio.create_task(
            finish(client, lecture1.pcm[int(SPLIT_S * RATE) : int(CUT_S * RATE)], speed=SPEED)
        )
        # Killed in the middle of the stream: acks up to KILL_S have come, and frames keep going.
        await client.wait_until(lambda: client.acked() >= KILL_S * RATE, 60, f"the ack of {KILL_S:g} s")
        dying = len(client.conns)
        acked = client.acked()
        await asyncio.to_thread(sentinels.kill_master)
        await asyncio.to_thread(
            wait_for, lambda: sentinels.master() == sentinels.replica_port, 30, "the failover"
        )
        resumes = await sender
        stored = await asyncio.to_thread(tap.finish, 30)
    finally:
        await client.disconnect()
    assert 1 <= resumes <= 3, client.drops
    # No acknowledged audio is lost: the first resume after the kill found at least what was acked
    # before it on the new master, and each later resume at least what any connection before it was told.
    held = {
        i: m["received"]
        for i, conn in enumerate(client.conns)
        for m in conn
        if i >= dying and m["type"] == "session"
    }
    assert held, "no resume after the kill"
    assert held[min(held)] >= acked > SPLIT_S * RATE, (held, acked)
    # ... and audio was in flight: the client had sent more than the new master held, and resent it.
    assert client.drops and client.drops[0] > held[min(held)], (client.drops, held)
    for i, n in held.items():
        assert n >= client.acked(client.conns[:i]), (i, n, client.acked(client.conns[:i]))
    assert len(client.audio) == int(CUT_S * RATE)
    assert len(stored) == len(client.audio), f"stored {len(stored)} bytes, sent {len(client.audio)}"
    assert stored == bytes(client.audio), "the stored audio differs from what the client sent"
    assert c.audio_seconds(client.sid) == CUT_S, "the VAD took all of the audio"
    # Every utterance once, in order, the right sentences; finals seen before the kill unchanged.
    shown = check_transcript(client.conns, lecture1, CUT_S, allowed_errors=("unavailable",))
    assert all(shown[seg] == text for seg, text in before.items())
    assert alert_categories(client.conns) == ["deadline", "exam", "quiz"]
    logs = c.logs()
    assert "Traceback" not in logs, logs
    wait_for(lambda: c.r.get(keys.heartbeat("vad", c.consumer("vad"))), 30, "the VAD on the new master")
