"""Load benchmark: N concurrent real-time lectures against a stack this script starts and stops.

    python -m bench.load [--sessions 1,4,8,16,24,32] [--transcribers 1,2] [--env KEY=VALUE ...]
                         [--lectures tests/data/lecture1,tests/data/lecture2] [--stagger 6] [--burst]
                         [--port 8190] [--json OUT]

For each transcriber count T, the script starts `python -m services` (embedded Redis, TRANSCRIBERS=T,
plus every --env setting, e.g. TRANSCRIBE_BATCH=1 or PARTIALS=0) on its own ports and data
directory, waits until /healthz reports T live transcribers, then for each N runs N sessions at
once: session i streams lecture i mod L (bench.stream's client: 100 ms frames paced at 1x real
time), starting i * stagger / N seconds after the first, so that utterances do not all end at the
same instant as they would with N copies started together. `--burst` runs each N a second time
with every session starting on the same second (a department's lectures start on the hour), and
`--stagger 0` runs only that. Per (T, N, stagger) it prints: sessions
completed (got `end`), final latency p50/p95 (bench.stream's definition, pooled over sessions),
WER pooled over sessions, CPU seconds of all service processes per audio second, and the same
per service with each service's peak resident memory (what deploy/k8s sizes its requests on).
Finally the largest N with every session completed and final p95 <= 3 s, per T and stagger.

The machine is shared: repeat runs and compare rows of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.common import CpuMeter, Lecture, _cmdline, fmt, load_lecture, percentile, pooled_wer, service_name
from bench.session import SessionRun, stream_session
from bench.stream import analyse

ROOT = Path(__file__).resolve().parent.parent
P95_LIMIT_S = 3.0


@dataclass
class Row:
    transcribers: int
    sessions: int
    completed: int
    p50: float | None
    p95: float | None
    wer: float | None
    cpu_per_audio_s: float | None
    partials: int
    wall_s: float
    stagger_s: float = 0.0
    cpu_by_service: dict[str, float] = field(default_factory=dict)  # CPU s per audio s, by service
    peak_rss_mb: dict[str, float] = field(default_factory=dict)  # VmHWM, by service (largest replica)

    def ok(self) -> bool:
        return self.completed == self.sessions and self.p95 is not None and self.p95 <= P95_LIMIT_S


class Stack:
    """`python -m services` on its own ports and data directory, stopped with SIGINT."""

    def __init__(self, port: int, transcribers: int, env: dict[str, str]) -> None:
        self.port, self.transcribers = port, transcribers
        self.dir = tempfile.mkdtemp(prefix="classrec-load-")
        os.chmod(self.dir, 0o711)  # the embedded PostgreSQL, run as nobody under root, must enter it
        self.env = {
            **os.environ,
            "PORT": str(port),
            "REDIS_PORT": str(port + 1),
            "DATA_DIR": self.dir,
            "TRANSCRIBERS": str(transcribers),
            "MAX_SESSIONS_PER_CLIENT": "1000",
            "LOG_LEVEL": "WARNING",
            **env,
        }
        self.proc: subprocess.Popen | None = None

    def spawn(self) -> None:
        with open(Path(self.dir) / "stack.log", "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "services"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    async def __aenter__(self) -> Stack:
        self.spawn()
        await self.wait_ready()
        return self

    async def wait_ready(self, timeout_s: float = 180.0) -> None:
        deadline = time.monotonic() + timeout_s
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if self.proc and self.proc.poll() is not None:
                    raise RuntimeError(f"the stack exited; see {self.dir}/stack.log")
                try:
                    async with http.get(f"http://127.0.0.1:{self.port}/healthz") as resp:
                        body = await resp.json()
                        workers = body.get("workers") or {}
                        if body.get("ready") and workers.get("transcriber", 0) >= self.transcribers:
                            return
                except (aiohttp.ClientError, ValueError):
                    pass
                await asyncio.sleep(0.5)  # polling a process we started, not synchronising a test
        raise RuntimeError(f"the stack was not ready within {timeout_s:g} s; see {self.dir}/stack.log")

    async def __aexit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)

    def pids(self) -> list[int]:
        """The launcher and every service it started (not another stack's processes)."""
        assert self.proc is not None
        found, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            for task in Path(f"/proc/{pid}/task").glob("*/children"):
                todo += [int(c) for c in task.read_text().split()]
        return found

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/transcribe"


async def delayed(delay: float, http: aiohttp.ClientSession, url: str, pcm: bytes) -> SessionRun:
    await asyncio.sleep(delay)  # the stagger between session starts, part of the workload
    return await stream_session(http, url, pcm, 1.0, 300.0)


def process_name(pid: int) -> str:
    """ "transcriber" for `python -m services.transcriber`, "launcher", "redis", or "other"."""
    argv = _cmdline(pid)
    mod = service_name(argv)
    if mod:
        return "launcher" if mod == "services" else mod.removeprefix("services.")
    if argv and ("redis-server" in argv[0] or "valkey-server" in argv[0]):
        return "redis"
    return "postgres" if argv and "postgres" in argv[0] else "other"


def status_mb(pid: int, key: str) -> float:
    """A memory figure of a process from /proc/PID/status (`VmHWM`: peak resident, `VmRSS`: resident
    now), in MiB; 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


async def run_n(stack: Stack, n: int, lectures: list[Lecture], stagger: float) -> Row:
    pids = stack.pids()
    names = {pid: process_name(pid) for pid in pids}
    meter = CpuMeter(pids)
    meter.start()
    wall = time.monotonic()
    plan = [lectures[i % len(lectures)] for i in range(n)]
    async with aiohttp.ClientSession() as http:
        runs = await asyncio.gather(
            *(delayed(i * stagger / n, http, stack.ws_url, lec.pcm.tobytes()) for i, lec in enumerate(plan))
        )
    wall = time.monotonic() - wall
    used = meter.stop()
    cpu = sum(used.values())
    audio_s = sum(lec.duration for lec in plan)
    by_service: dict[str, float] = {}
    rss: dict[str, float] = {}
    for pid, secs in used.items():
        name = names.get(pid, "other")
        by_service[name] = by_service.get(name, 0.0) + secs / audio_s
        rss[name] = max(rss.get(name, 0.0), status_mb(pid, "VmHWM"))
    figs = [
        analyse(r.messages, lec, 1.0, r.stop_at)
        for r, lec in zip(runs, plan, strict=True)
        if r.t0 is not None
    ]
    lat = [x for f in figs for x in f.final_latency]
    return Row(
        transcribers=stack.transcribers,
        sessions=n,
        completed=sum(1 for r in runs if r.completed),
        p50=percentile(lat, 50),
        p95=percentile(lat, 95),
        wer=pooled_wer(f.wer for f in figs if f.wer),
        cpu_per_audio_s=cpu / audio_s,
        partials=sum(f.partials for f in figs),
        wall_s=wall,
        stagger_s=stagger,
        cpu_by_service=by_service,
        peak_rss_mb=rss,
    )


def print_row(r: Row) -> None:
    print(
        f"{r.transcribers:>4} {r.sessions:>4} {r.completed:>5}/{r.sessions:<4}{fmt(r.p50, '.2f'):>8}"
        f"{fmt(r.p95, '.2f'):>8}{fmt(r.wer, '.2%'):>9}{fmt(r.cpu_per_audio_s, '.3f'):>9}{r.partials:>9}"
        f"{r.wall_s:>8.0f}{r.stagger_s:>8.1f}",
        flush=True,
    )
    per = ", ".join(
        f"{name} {r.cpu_by_service[name]:.3f} / {r.peak_rss_mb.get(name, 0):.0f} MiB"
        for name in sorted(r.cpu_by_service)
    )
    print(f"          CPU s per audio s / peak RSS by service: {per}", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m bench.load", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sessions", default="1,4,8,16,24,32")
    ap.add_argument("--transcribers", default="1,2")
    ap.add_argument("--lectures", default="tests/data/lecture1,tests/data/lecture2")
    ap.add_argument("--stagger", type=float, default=6.0, help="seconds over which session starts spread")
    ap.add_argument(
        "--burst",
        action="store_true",
        help="after each staggered run, run the same N again with every session starting on the same second",
    )
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="stack setting")
    ap.add_argument("--port", type=int, default=8190)
    ap.add_argument(
        "--stop-above",
        type=float,
        default=10.0,
        help="skip larger N once final p95 exceeds this many seconds",
    )
    ap.add_argument("--json", type=Path)
    return ap.parse_args(argv)


async def main_async(args: argparse.Namespace) -> list[Row]:
    lectures = [load_lecture(ROOT / p if not Path(p).is_absolute() else p) for p in args.lectures.split(",")]
    env = dict(kv.split("=", 1) for kv in args.env)
    rows: list[Row] = []
    print(f"settings: {env or 'defaults'}; lectures: {', '.join(lec.name for lec in lectures)}")
    print("   T    N  completed  p50 s   p95 s      WER  CPU/s  partials  wall s stagger")
    for t in (int(x) for x in args.transcribers.split(",")):
        async with Stack(args.port, t, env) as stack:
            staggers = [args.stagger, 0.0] if args.burst and args.stagger else [args.stagger]
            for n in (int(x) for x in args.sessions.split(",")):
                done = [await run_n(stack, n, lectures, stagger) for stagger in staggers]
                for row in done:
                    rows.append(row)
                    print_row(row)
                if all(row.p95 is None or row.p95 > args.stop_above for row in done):
                    break
        for stagger in sorted({r.stagger_s for r in rows}, reverse=True):
            best = max(
                (r.sessions for r in rows if r.transcribers == t and r.stagger_s == stagger and r.ok()),
                default=0,
            )
            print(
                f"   T={t}, starts over {stagger:g} s: largest N with all sessions completed"
                f" and final p95 <= {P95_LIMIT_S:g} s: {best}"
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows = asyncio.run(main_async(args))
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in rows], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
