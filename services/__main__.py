"""`python -m services`: the local run. Starts the embedded Redis (unless REDIS_URL is set) and every
service as a child process, restarts a child that dies, and stops them all cleanly on Ctrl-C/SIGTERM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from shared.logs import setup_logging
from shared.redis_server import start_redis
from shared.settings import LauncherSettings

GRACE_S = 15
MAX_BACKOFF_S = 30.0


def service_commands(transcribers: int) -> list[tuple[str, list[str]]]:
    py = sys.executable
    cmds = [("gateway", [py, "-m", "services.gateway"]), ("vad", [py, "-m", "services.vad"])]
    cmds += [(f"transcriber-{i + 1}", [py, "-m", "services.transcriber"]) for i in range(transcribers)]
    cmds.append(("alerts", [py, "-m", "services.alerts"]))
    return cmds


def main() -> None:
    s = LauncherSettings()
    log = setup_logging("launcher", s.log_level)
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    env = dict(os.environ)
    redis_proc = None
    if "REDIS_URL" not in os.environ:
        redis_proc = start_redis(s.redis_port, os.path.join(s.data_dir, "redis"))
        env["REDIS_URL"] = f"redis://127.0.0.1:{s.redis_port}/0"
        log.info("embedded redis on port %d (data in %s)", s.redis_port, s.data_dir)
    env["PORT"] = str(s.port)
    cmds = dict(service_commands(s.transcribers))
    procs = {name: subprocess.Popen(cmd, env=env, start_new_session=True) for name, cmd in cmds.items()}
    backoff = dict.fromkeys(cmds, 1.0)
    due: dict[str, float] = {}
    log.info("serving http://localhost:%d with %d transcriber(s); Ctrl-C stops", s.port, s.transcribers)
    while not stopping:
        time.sleep(0.2)
        now = time.monotonic()
        for name, p in procs.items():
            if p.poll() is None or stopping:
                continue
            if name not in due:  # restart with backoff, so a broken service does not spin
                log.warning("service=%s exited code=%s; restart in %.0fs", name, p.returncode, backoff[name])
                due[name] = now + backoff[name]
                backoff[name] = min(backoff[name] * 2, MAX_BACKOFF_S)
            elif now >= due.pop(name):
                procs[name] = subprocess.Popen(cmds[name], env=env, start_new_session=True)
    log.info("stopping services")
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + GRACE_S
    for name, p in procs.items():
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("service=%s did not stop in %ds; killed", name, GRACE_S)
            p.kill()
    if redis_proc is not None:
        redis_proc.terminate()
        redis_proc.wait(10)
    log.info("stopped")


if __name__ == "__main__":
    main()
