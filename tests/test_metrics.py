"""Prometheus metrics and health endpoints: the workers' ops server and the gateway's /metrics."""

from __future__ import annotations

import time

import aiohttp
import pytest
import redis.asyncio as aioredis

from shared import metrics
from shared.messages import SegmentJob, SessionConfig
from shared.streams import ensure_group, xadd
from tests.client import stream
from tests.util import Stack, free_port


async def test_ops_server_serves_metrics_and_health() -> None:
    port = free_port()
    beat = {"at": time.monotonic()}
    runner = await metrics.start_ops_server(port, lambda: beat["at"])
    assert runner is not None
    try:
        metrics.SEGMENTS.labels("transcriber", "final").inc()
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                body = await resp.text()
            assert (
                resp.status == 200 and 'classrec_segments_total{kind="final",service="transcriber"}' in body
            )
            async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                assert resp.status == 200
            beat["at"] = time.monotonic() - 60  # the loop has not turned for a minute
            async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                assert resp.status == 503 and (await resp.json())["status"] == "stalled"
    finally:
        await runner.cleanup()


async def test_queue_gauges_read_lag_and_pending(redis_url: str) -> None:
    r = aioredis.Redis.from_url(redis_url)
    stream_name = "segments:metrics-test"
    await ensure_group(r, stream_name, "transcriber")
    job = SegmentJob(sid="m", segment=0, start=0, end=1, config=SessionConfig(), pcm=b"\x00\x00")
    for _ in range(3):
        await xadd(r, stream_name, job, 100)
    await r.xreadgroup("transcriber", "c1", {stream_name: ">"}, count=1)
    await metrics.update_queue_gauges(r, [stream_name])
    assert metrics.QUEUE_LAG_SUPPORTED._value.get() == 1  # the embedded server is Redis 7+ compatible
    assert metrics.QUEUE_LAG.labels(stream_name, "transcriber")._value.get() == 2
    assert metrics.QUEUE_PENDING.labels(stream_name, "transcriber")._value.get() == 1
    await r.aclose()


@pytest.mark.slow
async def test_gateway_metrics_count_errors_and_connections(stack: Stack) -> None:
    await stream(stack.ws, b"\x00\x01\x02")  # an odd frame: error odd_frame
    async with aiohttp.ClientSession() as http, http.get(f"{stack.http}/metrics") as resp:
        body = await resp.text()
    assert resp.status == 200
    assert 'classrec_errors_total{code="odd_frame",service="gateway"}' in body
    assert "classrec_websocket_connections" in body
