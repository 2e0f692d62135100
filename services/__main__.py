"""`python -m services`: the local run. Starts the embedded Redis (unless REDIS_URL is set), the
embedded PostgreSQL of the archive (unless DATABASE_URL is set; set empty, there is no archive) and
every service as a child process, restarts a child that dies (with backoff), and stops them all cleanly on
Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time

from shared.logs import setup_logging
from shared.postgres_server import database_url, free_port, start_postgres, stop_postgres
from shared.redis_server import start_redis
from shared.settings import LauncherSettings

GRACE_S = 15
MAX_BACKOFF_S = 30.0
HEALTHY_AFTER_S = 60.0  # a child that ran this long gets its backoff reset
log = logging.getLogger("launcher")


def service_commands(transcribers: int, archive: bool = False) -> dict[str, list[str]]:
    py = sys.executable
    cmds = {"gateway": [py, "-m", "services.gateway"], "vad": [py, "-m", "services.vad"]}
    cmds |= {f"transcriber-{i + 1}": [py, "-m", "services.transcriber"] for i in range(transcribers)}
    cmds["alerts"] = [py, "-m", "services.alerts"]
    if archive:  # there is a database to write
        cmds["archive"] = [py, "-m", "services.archive"]
    return cmds


class Supervisor:
    """Child processes by name; each is restarted when it exits, after a doubling delay."""

    def __init__(
        self,
        cmds: dict[str, list[str]],
        env: dict[str, str],
        metrics_base_port: int = 0,
        nice: dict[str, int] | None = None,
    ) -> None:
        self.cmds, self.env = cmds, env
        self.nice = nice or {}  # child name -> niceness added at start (lower CPU priority)
        self.metrics_port = (
            {n: metrics_base_port + i for i, n in enumerate(cmds)} if metrics_base_port else {}
        )
        self.procs: dict[str, subprocess.Popen] = {}
        self.started: dict[str, float] = {}
        self.backoff = dict.fromkeys(cmds, 1.0)
        self.due: dict[str, float] = {}
        for name in cmds:
            self.start(name)

    def start(self, name: str) -> None:
        # A session of its own: Ctrl-C reaches only the launcher, which then stops children in order.
        env = {**self.env, "METRICS_PORT": str(self.metrics_port.get(name, 0))}
        niceness = self.nice.get(name, 0)
        self.procs[name] = subprocess.Popen(
            self.cmds[name],
            env=env,
            start_new_session=True,
            preexec_fn=(lambda: os.nice(niceness)) if niceness else None,  # the launcher has no threads
        )
        self.started[name] = time.monotonic()

    def poll(self) -> None:
        now = time.monotonic()
        for name, p in self.procs.items():
            if p.poll() is None:
                continue
            if name not in self.due:
                if now - self.started[name] > HEALTHY_AFTER_S:
                    self.backoff[name] = 1.0
                log.warning(
                    "service=%s exited code=%s; restart in %.0fs", name, p.returncode, self.backoff[name]
                )
                self.due[name] = now + self.backoff[name]
                self.backoff[name] = min(self.backoff[name] * 2, MAX_BACKOFF_S)
            elif now >= self.due[name]:
                del self.due[name]
                self.start(name)

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + GRACE_S
        for name, p in self.procs.items():
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("service=%s did not stop in %ds; killed", name, GRACE_S)
                p.kill()


def start_archive_db(s: LauncherSettings, env: dict[str, str]) -> subprocess.Popen | None:
    """The embedded PostgreSQL, unless DATABASE_URL names a server (or, empty, no archive at all)."""
    if "DATABASE_URL" in os.environ:
        return None
    port = s.postgres_port or free_port()
    proc = start_postgres(port, os.path.join(s.data_dir, "postgres"))
    env["DATABASE_URL"] = database_url(port)
    log.info("embedded postgresql at %s (data in %s)", env["DATABASE_URL"], s.data_dir)
    return proc


def main() -> None:
    s = LauncherSettings()
    setup_logging("launcher", s.log_level)
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    env = {**os.environ, "PORT": str(s.port)}
    redis_proc = None
    if "REDIS_URL" not in os.environ:
        redis_proc = start_redis(s.redis_port, os.path.join(s.data_dir, "redis"))
        env["REDIS_URL"] = f"redis://127.0.0.1:{s.redis_port}/0"
        log.info("embedded server on port %d (data in %s)", s.redis_port, s.data_dir)
    try:
        postgres_proc = start_archive_db(s, env)
    except Exception:
        if redis_proc is not None:  # nothing is left running behind a failed start
            redis_proc.terminate()
            redis_proc.wait(10)
        raise
    cmds = service_commands(s.transcribers, archive=bool(env.get("DATABASE_URL", "").strip()))
    # TRANSCRIBER_NICE > 0: transcribers yield the CPU to the VAD and the gateway, whose audio cannot wait.
    nice = {name: s.transcriber_nice for name in cmds if name.startswith("transcriber")}
    children = Supervisor(cmds, env, s.metrics_base_port, nice)
    log.info("serving http://localhost:%d with %d transcriber(s); Ctrl-C stops", s.port, s.transcribers)
    while not stopping:
        time.sleep(0.2)
        children.poll()
    log.info("stopping services")
    children.stop()
    if redis_proc is not None:
        redis_proc.terminate()
        redis_proc.wait(10)
    if postgres_proc is not None:
        stop_postgres(postgres_proc)
    log.info("stopped")


if __name__ == "__main__":
    main()
