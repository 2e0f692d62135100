"""Services started before Redis: one clear log line per attempt, backoff, then they work."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import redis

from shared import keys
from shared.redis_server import start_redis
from tests.util import ROOT, free_port


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)  # polling an external condition with a deadline


@pytest.mark.parametrize("service", ["vad", "alerts"])
def test_service_waits_for_redis_with_backoff(service: str, tmp_path) -> None:
    port = free_port()
    log = tmp_path / "service.log"
    env = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{port}/0", "RETRY_MAX_S": "2"}
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", f"services.{service}"], cwd=ROOT, env=env, stderr=out)
    redis_proc = None
    try:
        t0 = time.monotonic()
        wait_for(lambda: log.read_text().count("redis unreachable") >= 3, 30, "three retry lines")
        elapsed = time.monotonic() - t0
        assert proc.poll() is None, "the service must not exit while Redis is down"
        lines = [ln for ln in log.read_text().splitlines() if "redis unreachable" in ln]
        assert all(f"127.0.0.1:{port}" in ln and "retry_in=" in ln for ln in lines)
        assert len(lines) <= 2 + elapsed / 0.2, "no hot loop: retries back off"
        redis_proc = start_redis(port, tmp_path / "redis")
        client = redis.Redis(port=port)
        wait_for(lambda: bool(client.keys(keys.heartbeat(service, "*"))), 30, "the service's heartbeat")
        assert proc.poll() is None
    finally:
        proc.terminate()
        assert proc.wait(15) == 0, log.read_text()[-2000:]
        if redis_proc:
            redis_proc.terminate()
            redis_proc.wait(10)
