"""A cluster of real processes for the fault-injection tests: Redis and every service, each of which
can be stopped, killed and restarted on its own, with waits on external conditions (a health check,
a heartbeat key, a log line) under a deadline; nothing sleeps to synchronise.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis

from shared import keys
from shared.redis_server import start_redis
from tests.util import ROOT, free_port

POLL_S = 0.1  # how often an external condition is polled while waiting for it
GROUPS = {"vad": keys.VAD_GROUP, "transcriber": keys.TRANSCRIBER_GROUP, "alerts": keys.ALERTS_GROUP}


def service_of(name: str) -> str:
    """`transcriber-2` -> `transcriber`."""
    return name.split("-")[0]


def wait_for(cond: Callable[[], Any], timeout: float, what: str, log: Callable[[], str] | None = None) -> Any:
    """Poll `cond` until it returns something truthy; fail after `timeout` seconds saying `what`."""
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f}s waiting for {what}" + (log() if log else "")
            )
        time.sleep(POLL_S)  # polling an external condition, with a deadline


class Cluster:
    """Redis (AOF on) and each service as a separate process, on free ports, one log file per service.

    Services are named `gateway`, `vad`, `alerts`, `transcriber-1`, `transcriber-2`, ...; a restarted
    service appends to its log, after a `=== start` line.
    """

    def __init__(self, workdir: Path, **env: str) -> None:
        self.dir = workdir
        self.redis_port = free_port()
        self.redis_dir = workdir / "redis"
        self.port = free_port()
        self.env = {
            **os.environ,
            "REDIS_URL": self.redis_url,
            "PORT": str(self.port),
            "CLAIM_IDLE_MS": "2000",
            "LOG_LEVEL": "INFO",
            **env,
        }
        self.procs: dict[str, subprocess.Popen] = {}
        self.redis_proc: subprocess.Popen | None = None
        self.r = redis.Redis(port=self.redis_port, socket_connect_timeout=1, socket_timeout=5)

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/transcribe"

    # --- Redis -------------------------------------------------------------------------------------

    def start_redis(self) -> None:
        self.redis_proc = start_redis(self.redis_port, self.redis_dir, appendonly=True)

    def stop_redis(self, timeout: float = 20) -> int:
        """SIGTERM Redis (it writes its append-only file and exits) and wait; its exit code."""
        assert self.redis_proc is not None
        self.redis_proc.send_signal(signal.SIGTERM)
        code = self.redis_proc.wait(timeout)
        self.r.connection_pool.disconnect()
        return code

    # --- services ----------------------------------------------------------------------------------

    def log_path(self, name: str) -> Path:
        return self.dir / f"{name}.log"

    def start(self, *names: str, **env: str) -> None:
        """Start services (in parallel); `wait_ready` waits for them."""
        for name in names:
            assert name not in self.procs or self.procs[name].poll() is not None, f"{name} is running"
            with self.log_path(name).open("a") as out:
                out.write(f"=== start {name}\n")
                out.flush()
                self.procs[name] = subprocess.Popen(
                    [sys.executable, "-m", f"services.{service_of(name)}"],
                    cwd=ROOT,
                    env={**self.env, **env},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )

    def pid(self, name: str) -> int:
        return self.procs[name].pid

    def consumer(self, name: str) -> str:
        """The consumer name the service uses in its group (see shared.streams.consumer_name)."""
        return f"{GROUPS[service_of(name)]}-{socket.gethostname()}-{self.pid(name)}"

    def name_of_consumer(self, consumer: str) -> str | None:
        for name, p in self.procs.items():
            if p.poll() is None and service_of(name) in GROUPS and self.consumer(name) == consumer:
                return name
        return None

    def log(self, name: str) -> str:
        return self.log_path(name).read_text(errors="replace")

    def logs(self, tail: int = 3000) -> str:
        """The end of every log, for an assertion message."""
        return "".join(f"\n--- {n}.log\n{self.log(n)[-tail:]}" for n in sorted(self.procs))

    def _ready(self, name: str) -> bool:
        p = self.procs[name]
        if p.poll() is not None:
            raise AssertionError(f"{name} exited with {p.returncode}:\n{self.log(name)[-4000:]}")
        if service_of(name) == "gateway":
            try:
                with urllib.request.urlopen(f"{self.http}/healthz", timeout=2) as resp:
                    return resp.status == 200
            except OSError:
                return False
        try:
            return bool(self.r.exists(keys.heartbeat(service_of(name), self.consumer(name))))
        except redis.RedisError:
            return False

    def wait_ready(self, *names: str, timeout: float = 120) -> None:
        """Wait until each service answers: the gateway its /healthz, a worker its heartbeat key."""
        names = names or tuple(self.procs)
        for name in names:
            wait_for(lambda n=name: self._ready(n), timeout, f"{name} to be ready")  # type: ignore[misc]

    def stop(self, name: str, timeout: float = 15) -> tuple[int, float]:
        """SIGTERM a service; its exit code and how long it took (fails if it outlives `timeout`)."""
        p = self.procs[name]
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        try:
            code = p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)
            raise AssertionError(
                f"{name} did not exit within {timeout}s of SIGTERM:\n{self.log(name)[-4000:]}"
            ) from None
        return code, time.monotonic() - t0

    def kill(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait(10)

    def wait_log(self, name: str, pattern: str, timeout: float = 60) -> re.Match:
        rx = re.compile(pattern)
        return wait_for(lambda: rx.search(self.log(name)), timeout, f"{pattern!r} in {name}.log")

    def audio_seconds(self, sid: str) -> float:
        """Seconds of the session's audio the VAD took, from its `audio ended` log line."""
        m = self.wait_log("vad", rf"sid={re.escape(sid)} audio ended segments=\d+ audio_s=([0-9.]+)", 10)
        return float(m.group(1))

    def pending(self, stream: str, group: str) -> dict[str, int]:
        """Entries delivered but not acknowledged, per consumer."""
        try:
            info = self.r.xpending(stream, group)
        except redis.ResponseError:  # no such group yet
            return {}
        return {c["name"].decode(): int(c["pending"]) for c in info.get("consumers", [])}

    def close(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
        if self.redis_proc is not None and self.redis_proc.poll() is None:
            self.redis_proc.terminate()
            self.redis_proc.wait(20)
        self.r.close()


def start_cluster(workdir: Path, transcribers: int = 1, **env: str) -> Cluster:
    c = Cluster(workdir, **env)
    c.start_redis()
    names = ["gateway", "vad", *(f"transcriber-{i + 1}" for i in range(transcribers)), "alerts"]
    try:
        c.start(*names)
        c.wait_ready(*names)
    except BaseException:
        c.close()
        raise
    return c


@contextmanager
def vad_replicas(workdir: Path) -> Iterator[Cluster]:
    """The takeover tests' cluster: gateway, two VAD replicas on 2 s leases (reclaiming after 3 s),
    one transcriber, alerts; closed on exit."""
    c = Cluster(workdir, VAD_LEASE_S="2", CLAIM_IDLE_MS="3000")
    try:
        c.start_redis()
        names = ("gateway", "vad-1", "vad-2", "transcriber-1", "alerts")
        c.start(*names)
        c.wait_ready(*names)
        yield c
    finally:
        c.close()


def vad_owner(c: Cluster, sid: str) -> str:
    """The name of the VAD process holding the session's lease."""
    lease = c.r.get(keys.vad_lease(sid))
    assert lease is not None, "the session has an owner"
    pid = int(lease.decode().rsplit("-", 1)[1])
    return next(n for n in c.procs if n.startswith("vad") and c.pid(n) == pid)
