"""Soak benchmark: a whole lecture, and the sessions of a normal day beside it, through one stack.

    python -m bench.soak [--minutes 90] [--speed 3] [--others 4] [--transcribers 1] [--port 8290]
                         [--env KEY=VALUE ...] [--json OUT]

One long lecture (tests/data/lecture1 and lecture2 back to back until --minutes of audio) is streamed
at --speed x real time while --others ordinary sessions beside it stream the dev lectures at 1x, one
after another, until the long one ends. Every 10 s the script samples the resident memory of every
process of its stack (gateway, vad, transcriber, alerts, launcher, the embedded server), the server's
used memory, resident size and key count, the length of the work streams and the machine's load
average; at each 10 minutes of audio also the server's memory by key prefix (bench/redis_figures.py).
It prints, per 10 minutes of the long lecture's audio: RSS of each process, Redis used and resident
memory and keys, load, the long lecture's final latency p50/p95 and WER over that stretch; then the
growth of each process from minute 10 to the end (short-lived children, the recordings' encoders,
apart), the final p95 of the last whole 10 minutes against the first, Redis's memory by key prefix at
minute 10 and after the load, and whether the work streams hold only unacknowledged entries once
the load stops (checked each second for up to 30 s; how long it took).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import numpy as np
import redis.asyncio as aioredis

from bench.common import Lecture, Span, fmt, load_lecture, percentile, word_errors
from bench.load import Stack, process_name, status_mb
from bench.redis_figures import format_prefixes, memory_by_prefix, settled, stream_states
from bench.session import stream_session
from bench.stream import split_transcripts
from shared import keys

ROOT = Path(__file__).resolve().parent.parent
WINDOW_S = 600.0
SETTLE_WITHIN_S = 30.0
REDIS_USED = "redis used_memory"
TRANSIENT = ("recording",)  # short-lived children (the VAD's encoder of a finished recording)


def long_lecture(parts: list[Lecture], minutes: float) -> Lecture:
    """The parts back to back (their truth shifted) until `minutes` of audio."""
    pcm, spans, at, i = [], [], 0.0, 0
    while at < minutes * 60:
        part = parts[i % len(parts)]
        pcm.append(part.pcm)
        spans += [Span(s.kind, s.start + at, s.end + at, s.text) for s in part.spans]
        at += part.duration
        i += 1
    return Lecture(f"soak{minutes:g}", np.concatenate(pcm), at, spans, [], True)


@dataclass
class Sample:
    audio_s: float  # of the long lecture, when the sample was taken
    rss_mb: dict[str, float]
    redis_mb: float
    keys: int
    streams: dict[str, int]
    redis_rss_mb: float = 0.0
    load1: float = 0.0
    prefixes: dict[str, tuple[int, float, int]] | None = None  # Redis by key prefix (keys, MB, no TTL)
    pss_mb: dict[str, float] = field(default_factory=dict)


@dataclass
class Window:
    minute: int
    sample: Sample | None
    p50: float | None
    p95: float | None
    wer: float | None
    finals: int
    median_mb: dict[str, float] = field(default_factory=dict)  # median PSS over the window's samples


def pss_mb(pid: int) -> float:
    """Proportional set size (MiB): shared pages divided among the processes sharing them, so that
    summed over a service's processes (PostgreSQL's backends and its shared buffers) memory counts once."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


async def sample(stack: Stack, r: aioredis.Redis, audio_s: float) -> Sample:
    by_name: dict[str, float] = {}
    pss: dict[str, float] = {}
    for pid in stack.pids():
        name = process_name(pid)
        by_name[name] = by_name.get(name, 0.0) + status_mb(pid, "VmRSS")
        pss[name] = pss.get(name, 0.0) + pss_mb(pid)
    info = await r.info("memory")
    lengths = {s: int(await r.xlen(s)) for s in keys.WORK_STREAMS}
    return Sample(
        audio_s,
        by_name,
        info["used_memory"] / 2**20,
        int(await r.dbsize()),
        lengths,
        info["used_memory_rss"] / 2**20,
        os.getloadavg()[0],
        pss_mb=pss,
    )


async def sampler(
    stack: Stack, r: aioredis.Redis, t0: float, speed: float, out: list[Sample], stop: asyncio.Event
):
    while not stop.is_set():
        out.append(await sample(stack, r, (time.monotonic() - t0) * speed))
        if len(out) == 1 or out[-1].audio_s // WINDOW_S > out[-2].audio_s // WINDOW_S:
            out[-1].prefixes = await memory_by_prefix(r)
        try:
            await asyncio.wait_for(stop.wait(), 10)
        except TimeoutError:
            pass


async def others(url: str, lectures: list[Lecture], k: int, stop: asyncio.Event, done: list[int]) -> None:
    """One ordinary session after another at 1x until `stop`."""
    async with aiohttp.ClientSession() as http:
        i = k
        while not stop.is_set():
            run = await stream_session(http, url, lectures[i % len(lectures)].pcm.tobytes(), 1.0, 300.0)
            done.append(int(run.completed))
            i += 1


def windows(
    messages: list[tuple[float, dict]], lecture: Lecture, speed: float, samples: list[Sample]
) -> list[Window]:
    finals = [(t, m) for t, m in split_transcripts(messages)[0]]
    out = []
    for w in range(int(np.ceil(lecture.duration / WINDOW_S))):
        lo, hi = w * WINDOW_S, (w + 1) * WINDOW_S
        mine = [(t, m) for t, m in finals if lo <= m["start"] < hi]
        lat = [t - m["end"] / speed for t, m in mine]
        truth = " ".join(s.text for s in lecture.spans if s.kind == "speech" and lo <= s.start < hi)
        heard = " ".join(m["text"].strip() for _, m in mine)
        wer = word_errors(truth, heard).wer if truth else None
        in_window = [s for s in samples if lo <= s.audio_s < hi]
        out.append(
            Window(
                w * 10,
                in_window[-1] if in_window else None,
                percentile(lat, 50),
                percentile(lat, 95),
                wer,
                len(mine),
                {
                    n: float(np.median([x.pss_mb.get(n, 0.0) for x in in_window]))
                    for n in {n for x in in_window for n in x.pss_mb}
                }
                | ({REDIS_USED: float(np.median([x.redis_mb for x in in_window]))} if in_window else {}),
            )
        )
    return out


def print_table(ws: list[Window], names: list[str]) -> None:
    head = (
        f"{'min':>5} "
        + "".join(f"{n[:11]:>12}" for n in names)
        + f"{'used MB':>9}{'rss MB':>8}{'keys':>6}{'load':>6}{'p50':>7}{'p95':>7}{'WER':>8}"
    )
    print(
        head + "   (per process: median PSS in MB over the window; used/rss: the Redis server's, at its end)"
    )
    for w in ws:
        s = w.sample
        rss = "".join(f"{w.median_mb.get(n, 0.0):>12.0f}" for n in names)
        mem = (
            f"{s.redis_mb:>9.1f}{s.redis_rss_mb:>8.1f}{s.keys:>6}{s.load1:>6.1f}"
            if s
            else f"{'-':>9}{'-':>8}{'-':>6}{'-':>6}"
        )
        print(
            f"{w.minute:>3}-{w.minute + 10:<2}{rss}{mem}{fmt(w.p50, '.2f'):>7}{fmt(w.p95, '.2f'):>7}{fmt(w.wer, '.1%'):>8}"
        )


async def main_async(args: argparse.Namespace) -> dict:
    parts = [load_lecture(ROOT / "tests/data/lecture1"), load_lecture(ROOT / "tests/data/lecture2")]
    lecture = long_lecture(parts, args.minutes)
    env = dict(kv.split("=", 1) for kv in args.env)
    async with Stack(args.port, args.transcribers, env) as stack:
        r = aioredis.Redis(port=args.port + 1)
        stop, samples, done = asyncio.Event(), [], []
        t0 = time.monotonic()
        tasks = [asyncio.create_task(sampler(stack, r, t0, args.speed, samples, stop))]
        tasks += [asyncio.create_task(others(stack.ws_url, parts, k, stop, done)) for k in range(args.others)]
        async with aiohttp.ClientSession() as http:
            run = await stream_session(http, stack.ws_url, lecture.pcm.tobytes(), args.speed, 600.0)
        stop.set()
        await asyncio.gather(*tasks)
        wall = time.monotonic() - t0
        quiet = time.monotonic()  # the load stopped: the work streams should settle within seconds
        while True:
            states = await stream_states(r)
            settle_s = time.monotonic() - quiet
            if settled(states) or settle_s > SETTLE_WITHIN_S:
                break
            await asyncio.sleep(1.0)  # polling the server, not synchronising
        after = await sample(stack, r, lecture.duration)
        after.prefixes = await memory_by_prefix(r)
        await r.aclose()
    ws = windows(run.messages, lecture, args.speed, samples)
    names = sorted({n for s in samples for n in s.rss_mb if n != "other"})
    print(
        f"soak: {lecture.duration / 60:.0f} min lecture at {args.speed:g}x + {args.others} sessions at 1x "
        f"({len(done)} run, {sum(done)} completed); long lecture completed: {run.completed}; wall {wall:.0f} s"
    )
    print_table(ws, names)
    report(ws, samples, names, after, states, settle_s, lecture.duration)
    return {
        "windows": [w.__dict__ | {"sample": w.sample.__dict__ if w.sample else None} for w in ws],
        "samples": [s.__dict__ for s in samples],
        "after": after.__dict__,
        "streams_after": {k: v.__dict__ for k, v in states.items()},
        "settled_after_s": settle_s if settled(states) else None,
        "completed": run.completed,
    }


def report(
    ws: list[Window],
    samples: list[Sample],
    names: list[str],
    after: Sample,
    states: dict,
    settle_s: float,
    duration_s: float,
) -> None:
    """Growth from minute 10-20 to the last whole 10 minutes (medians of PSS: a transcriber's memory
    rises and falls with each batch now that freed buffers go back), RSS from the sample at minute 10
    to the last, p95 of the last whole 10 minutes / the first, Redis by prefix, the work streams."""
    steady = [n for n in names if not any(t in n for t in TRANSIENT)]
    whole = [w for w in ws if (w.minute + 10) * 60 <= duration_s + 1]
    if len(whole) >= 2:
        first, end = whole[1], whole[-1]  # minute 10-20 and the last whole 10 minutes
        growth = {n: end.median_mb.get(n, 0) - first.median_mb.get(n, 0) for n in [*steady, REDIS_USED]}
        worst = max(growth.values())
        print(
            f"growth, median PSS of minute {first.minute}-{first.minute + 10} to minute {end.minute}-"
            f"{end.minute + 10} (MB): "
            + ", ".join(f"{k} {v:+.1f}" for k, v in growth.items())
            + f"; largest {worst:+.1f} ({'within' if worst <= 50 else 'OVER'} the 50 MB bound)"
        )
    at10 = next((s for s in samples if s.audio_s >= WINDOW_S), None)
    last = samples[-1] if samples else None
    if at10 and last and last is not at10:
        rss = {n: last.rss_mb.get(n, 0) - at10.rss_mb.get(n, 0) for n in steady}
        rss["redis rss (server)"] = last.redis_rss_mb - at10.redis_rss_mb
        print(
            f"RSS from minute {at10.audio_s / 60:.0f} to {last.audio_s / 60:.0f}, single samples (MB): "
            + ", ".join(f"{k} {v:+.1f}" for k, v in rss.items())
        )
        peaks = {n: max(s.rss_mb.get(n, 0) for s in samples) for n in names if n not in steady}
        if peaks:
            print(
                "short-lived children, peak RSS (MB): " + ", ".join(f"{n} {v:.0f}" for n, v in peaks.items())
            )
    if len(whole) >= 2 and whole[0].p95 and whole[-1].p95:
        ratio = whole[-1].p95 / whole[0].p95
        print(
            f"final p95 of minute {whole[-1].minute}-{whole[-1].minute + 10} / minute {whole[0].minute}-"
            f"{whole[0].minute + 10}: {whole[-1].p95:.2f} / {whole[0].p95:.2f} s = {ratio:.2f}"
            f" ({'within' if ratio <= 1.2 else 'OVER'} 1.20)"
        )
    if at10 and at10.prefixes:
        print(f"redis by key prefix at minute {at10.audio_s / 60:.0f}: {format_prefixes(at10.prefixes)}")
    if after.prefixes is not None:
        print(f"redis by key prefix after the load: {format_prefixes(after.prefixes)}")
    streams = ", ".join(f"{k} {v.held} held/{v.unacked} unacknowledged" for k, v in states.items())
    verdict = (
        f"only unacknowledged entries {settle_s:.0f} s after the load stopped"
        if settled(states)
        else f"NOT settled within {SETTLE_WITHIN_S:g} s"
    )
    print(
        f"work streams: {streams}: {verdict}; keys {after.keys}, redis used {after.redis_mb:.1f} MB, rss {after.redis_rss_mb:.1f} MB"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=90.0)
    p.add_argument("--speed", type=float, default=3.0)
    p.add_argument("--others", type=int, default=4)
    p.add_argument("--transcribers", type=int, default=1)
    p.add_argument("--port", type=int, default=8290)
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--json")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = asyncio.run(main_async(args))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, default=str))
    return 0 if result["completed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
