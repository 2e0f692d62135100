"""What a backlog's peak leaves resident, with glibc's mmap threshold as it comes and fixed (shared/malloc.py).

    python -m bench.malloc_peak [--batches 2] [--redis-mb 200]

Transcriber: in a child process, the local backend (WHISPER_MODEL, default base) decodes 3 short
finals, then `--batches` batches of 8 twenty-second finals (what a backlog makes it decode), then 6
short finals and 6 partials again; the resident memory after each stage. Redis: the embedded server
gets `--redis-mb` of stream entries of 50-900 KB (utterances' audio), which are then trimmed away, three
times; its resident memory full and trimmed. Each is run with glibc's default and with the threshold
fixed at 128 KiB; the transcriber also with glibc's default and HeapTrim (what it does by default). The figures are resident sizes, not timings: they hold on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from shared.postgres_server import free_port
from shared.redis_server import find_server

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import asyncio, sys
import numpy as np
from pathlib import Path
from bench.common import load_lecture
from shared.malloc import HeapTrim, return_freed_memory
if sys.argv[1] == "fixed":
    assert return_freed_memory()
trim = HeapTrim(int(sys.argv[3])) if sys.argv[1] == "trim" else (lambda: 0)
from services.transcriber.backends import LocalBackend
from services.transcriber.types import Request
from shared.settings import TranscriberSettings

def rss():
    text = Path("/proc/self/status").read_text()
    return next(int(l.split()[1]) for l in text.splitlines() if l.startswith("VmRSS")) // 1024

async def main():
    pcm = load_lecture(Path("tests/data/lecture1")).pcm.astype(np.float32) / 32768
    def req(i, secs, partial=False):
        start = (i * 16000) % (len(pcm) - secs * 16000)
        return Request(pcm[start : start + secs * 16000], "en", "A lecture.", partial=partial)
    backend = LocalBackend(TranscriberSettings())
    print("loaded", rss(), flush=True)
    for k in range(3):
        await backend.transcribe(req(k * 7, 6))
        trim()
    print("short finals", rss(), flush=True)
    for k in range(int(sys.argv[2])):
        await backend.transcribe_many([req(k * 11 + j * 3, 20 + j % 3) for j in range(8)])
        trim()
        print(f"batch of 8, {k + 1}", rss(), flush=True)
    for k in range(6):
        await backend.transcribe(req(k * 5, 6))
        await backend.transcribe(req(k * 5, 4, partial=True))
        trim()
    print("short finals again", rss(), flush=True)

asyncio.run(main())
"""


def transcriber(mode: str, batches: int, trim_mb: int = 256) -> list[tuple[str, int]]:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_MMAP_THRESHOLD_"}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(batches), str(trim_mb)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    rows = [line.rsplit(" ", 1) for line in out.stdout.splitlines() if line and line[-1].isdigit()]
    return [(stage, int(mb)) for stage, mb in rows]


def rss_mb(pid: int) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    return next(int(line.split()[1]) for line in text.splitlines() if line.startswith("VmRSS")) // 1024


def redis_rounds(mode: str, total_mb: int) -> list[tuple[str, int]]:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_MMAP_THRESHOLD_"}
    if mode == "fixed":
        env["MALLOC_MMAP_THRESHOLD_"] = str(128 * 1024)
    port, rows = free_port(), []
    with tempfile.TemporaryDirectory() as d:
        args = [find_server().path, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", d]
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL)
        r = redis.Redis(port=port)
        try:
            for _ in range(200):
                try:
                    r.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.05)  # waiting for the server's socket
            rows.append(("started", rss_mb(proc.pid)))
            rng = random.Random(1)
            for k in range(3):
                added = 0
                while added < total_mb << 20:
                    n = rng.randint(50_000, 900_000)
                    r.xadd("segments", {"json": "{}", "pcm": os.urandom(n)})
                    added += n
                rows.append((f"filled, {k + 1}", rss_mb(proc.pid)))
                r.xtrim("segments", maxlen=0)
                rows.append((f"trimmed, {k + 1}", rss_mb(proc.pid)))
        finally:
            r.close()
            proc.terminate()
            proc.wait(10)
    return rows


def table(title: str, heads: list[str], *runs: list[tuple[str, int]]) -> None:
    print(f"{title:<24}" + "".join(f"{h:>16}" for h in heads) + "   (resident MB)")
    for row in zip(*runs, strict=True):
        print(f"  {row[0][0]:<22}" + "".join(f"{mb:>16}" for _, mb in row))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batches", type=int, default=2)
    p.add_argument("--redis-mb", type=int, default=200)
    p.add_argument("--trim-mb", type=int, default=256, help="HEAP_TRIM_MB of the trim column")
    args = p.parse_args(argv)
    modes = ("default", "fixed", "trim")
    heads = ["glibc default", "fixed 128 KiB", f"trim > {args.trim_mb} MB"]
    table("transcriber backend", heads, *(transcriber(m, args.batches, args.trim_mb) for m in modes))
    table("embedded Redis", heads[:2], *(redis_rounds(m, args.redis_mb) for m in modes[:2]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
