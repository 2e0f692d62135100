"""Helpers the tests share (plain functions and types; the fixtures are in conftest.py): paths,
a free port, a Redis of its own, a fake clock, a local HTTP server (`serving`: fake upstream APIs), the dev lectures
with their ground truth, the whole stack's handle and readiness."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import wave
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from shared.redis_server import start_redis

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"


class FakeClock:
    """A clock for the rate limiters' tests: `now` moves only when they sleep."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def own_redis(folder: Path) -> Iterator[str]:
    """A Redis server of its own (the embedded one) on a free port, its data in `folder`, as its
    URL; stopped on exit."""
    port = free_port()
    proc = start_redis(port, folder)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """`app` served on 127.0.0.1 at a free port, as its base URL; stopped on exit."""
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@dataclass
class Lecture:
    pcm: bytes
    truth: dict

    @property
    def speech(self) -> list[dict]:
        return [s for s in self.truth["segments"] if s["kind"] == "speech"]

    @property
    def noise(self) -> list[dict]:
        return [s for s in self.truth["segments"] if s["kind"] == "noise"]


def load_lecture(name: str) -> Lecture:
    with wave.open(str(DATA / f"{name}.wav")) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        pcm = w.readframes(w.getnframes())
    return Lecture(pcm, json.loads((DATA / f"{name}.json").read_text()))


@dataclass
class Stack:
    http: str
    ws: str
    redis_url: str
    log: Path


def wait_ready(http: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"stack exited early:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{http}/healthz", timeout=2) as resp:
                if json.loads(resp.read()).get("ready"):
                    return
        except OSError:
            pass
        time.sleep(0.2)  # polling for readiness, not synchronising on an event
    raise RuntimeError(f"stack not ready in {timeout}s:\n{log.read_text()[-4000:]}")


@contextlib.contextmanager
def running_stack(redis_url: str, log: Path, **env: str) -> Iterator[Stack]:
    """`python -m services` on a free port against `redis_url` (one transcriber, `env` on top), its
    output in `log`; yields once it is ready, stopped with SIGTERM (then killed) afterwards."""
    port = free_port()
    full = {**os.environ, "REDIS_URL": redis_url, "PORT": str(port), "TRANSCRIBERS": "1", "LOG_LEVEL": "INFO"}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services"], cwd=ROOT, env={**full, **env}, stdout=out, stderr=out
        )
    http = f"http://127.0.0.1:{port}"
    try:
        wait_ready(http, proc, log)
        yield Stack(http, f"ws://127.0.0.1:{port}/ws/transcribe", redis_url, log)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
