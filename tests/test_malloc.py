"""shared/malloc.py: with the mmap threshold fixed, large freed blocks go back to the system, in a
service's process and in the embedded Redis; without it glibc keeps a backlog's peak resident."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import redis

from shared.malloc import ENV, server_env
from shared.redis_server import start_redis
from tests.util import ROOT, free_port

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator only")

# In a process of its own: one 4 MiB block freed (glibc then raises its threshold to 4 MiB), then
# 100 MiB in blocks of 256 KiB, all but every 20th freed (5 MiB stay in use, as a service's live
# buffers between the freed ones would). Prints how much more is resident than before the 100 MiB.
PEAK = """
import ctypes, sys
from shared.malloc import HeapTrim, return_freed_memory
if sys.argv[1] == "fixed":
    assert return_freed_memory()
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
def rss():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS")) // 1024
big = libc.malloc(4 << 20); ctypes.memset(big, 1, 4 << 20); libc.free(big)
before = rss()
blocks = [libc.malloc(256 << 10) for _ in range(400)]
for b in blocks:
    ctypes.memset(b, 1, 256 << 10)
for i, b in enumerate(blocks):
    if i % 20 != 19:
        libc.free(b)
if sys.argv[1].startswith("trim"):  # the transcriber's way: trim once more than the limit is free
    trim = HeapTrim(int(sys.argv[1][4:]))
    assert trim.free_bytes() >= 90 << 20
    freed = trim()
    assert (freed >= 90 << 20) if trim.limit < 90 << 20 else freed == 0
if sys.argv[1] == "every":  # under the limit, but its interval since the last trim has passed
    now = [0.0]
    trim = HeapTrim(500, every_s=60, clock=lambda: now[0])
    assert trim() == 0  # not yet
    now[0] = 60.0
    assert trim() >= 90 << 20 and trim.last == 60.0
    assert trim() == 0  # just trimmed
print(rss() - before)
"""


def kept_mb(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if k != ENV}
    out = subprocess.run(
        [sys.executable, "-c", PEAK, mode], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return int(out.stdout)


def test_a_service_returns_a_freed_peak() -> None:
    assert kept_mb("default") >= 80  # glibc as it comes: the 100 MiB stays resident
    assert kept_mb("fixed") <= 10  # the 5 MiB in use


def test_a_transcriber_trims_a_freed_peak_past_its_limit() -> None:
    """The transcriber keeps glibc's threshold (its decodes reuse the heap) and trims the heap once
    more than HEAP_TRIM_MB of it is free: the same peak goes back past a 50 MB limit, not under 500."""
    assert kept_mb("trim50") <= 10
    assert kept_mb("trim500") >= 80


def test_a_transcriber_trims_what_is_free_once_a_minute() -> None:
    """Below HEAP_TRIM_MB, the free heap is still trimmed, once every HEAP_TRIM_EVERY_S."""
    assert kept_mb("every") <= 10


def test_an_operators_threshold_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.malloc import return_freed_memory

    monkeypatch.setenv(ENV, "65536")
    assert return_freed_memory() is False
    assert server_env()[ENV] == "65536"
    monkeypatch.delenv(ENV)
    assert server_env({})[ENV] == str(128 * 1024)


def rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return next(int(line.split()[1]) for line in text.splitlines() if line.startswith("VmRSS")) / 1024


def test_the_embedded_redis_returns_trimmed_entries() -> None:
    """80 MB of stream entries the size of utterances, then trimmed: the server's resident memory
    goes back down (libc malloc kept it all before)."""
    port = free_port()
    with tempfile.TemporaryDirectory() as d:
        proc = start_redis(port, d, appendonly=False)
        r = redis.Redis(port=port)
        try:
            assert r.info("memory")["mem_allocator"].startswith("libc") or pytest.skip("not libc malloc")
            start = rss_mb(proc.pid)
            for i in range(200):
                r.xadd("segments", {"json": "{}", "pcm": os.urandom(200_000 + 1000 * i)})
            full = rss_mb(proc.pid)
            r.xtrim("segments", maxlen=0)
            after = rss_mb(proc.pid)
        finally:
            r.close()
            proc.terminate()
            proc.wait(10)
    assert full - start >= 50, (start, full)
    assert after - start <= 15, (start, full, after)
