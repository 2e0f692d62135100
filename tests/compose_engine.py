"""docker-compose.yml on a real container engine, for tests/test_compose_engine.py.

No image registry is reachable, so every image is built here from Debian's packages: the CI base
image of .ci/base-image.sh (Debian bookworm by debootstrap, Python 3.11) is the Dockerfile's
PYTHON_IMAGE (tests/compose/python.Dockerfile adds the host's CA bundle for pip), and Redis and
PostgreSQL images come from Debian's redis-server and postgresql-15 (tests/compose/*.Dockerfile).
An override file points the real compose file's services at them; docker-compose.yml itself is used
as it is. Each run is its own compose project, removed with its volumes at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from tests.util import ROOT

HERE = Path(__file__).parent / "compose"
APP = ["gateway", "vad", "transcriber", "alerts", "archive"]
HOST_CA = Path(os.environ.get("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt"))


def docker_binary() -> str | None:
    """$DOCKER (as .ci/engine.sh sets it), else Debian's client first (/usr/local/bin may hold a newer
    one the daemon does not speak)."""
    if "DOCKER" in os.environ:
        return os.environ["DOCKER"] if os.access(os.environ["DOCKER"], os.X_OK) else None
    for c in ("/usr/bin/docker", shutil.which("docker")):
        if c and os.access(c, os.X_OK):
            return c
    return None


def run(cmd: list[str], timeout: float = 900, check: bool = True, **kw: Any) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and out.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        )
    return out


def engine_problem() -> str | None:
    """Why there is no usable engine and compose here, or None."""
    docker = docker_binary()
    if docker is None:
        return "no docker client (Debian's docker.io; .ci/engine.sh installs and starts it)"
    info = run([docker, "info"], timeout=30, check=False)
    if info.returncode != 0:
        return f"the container engine does not answer: {info.stderr.strip()[-200:]}"
    if compose_command() is None:
        return "no compose: neither `docker compose` nor Debian's docker-compose is installed"
    return None


def compose_command() -> list[str] | None:
    docker = docker_binary()
    if docker and run([docker, "compose", "version"], timeout=30, check=False).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def base_image() -> str:
    """The CI base image: $CLASSREC_BASE_IMAGE, else built (once) by .ci/base-image.sh."""
    if os.environ.get("CLASSREC_BASE_IMAGE"):
        return os.environ["CLASSREC_BASE_IMAGE"]
    return run(["bash", str(ROOT / ".ci" / "base-image.sh")], timeout=3600).stdout.strip().splitlines()[-1]


def build_images(base: str, context: Path) -> dict[str, str]:
    """The three local images: the Dockerfile's PYTHON_IMAGE, Redis and PostgreSQL."""
    docker = docker_binary()
    assert docker
    context.mkdir(parents=True, exist_ok=True)
    for f in HERE.iterdir():
        shutil.copy(f, context / f.name)
    shutil.copy(HOST_CA, context / "host-ca.crt")
    images = {}
    for name in ("python", "redis", "postgres"):
        tag = f"classrec-compose-{name}:{base.rsplit(':', 1)[-1]}"
        run(
            [docker, "build", "--network", "host", "-q", "-t", tag, "--build-arg", f"BASE={base}",
             "-f", str(context / f"{name}.Dockerfile"), str(context)],
            timeout=1800,
        )  # fmt: skip
        images[name] = tag
    return images


def override(images: dict[str, str], app_image: str) -> dict[str, Any]:
    """The override file: local images and the build argument; nothing else of the real file changes
    but Redis's protected mode (Debian's build keeps it on, the official image turns it off)."""
    real = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    redis_cmd = list(real["redis"]["command"]) + ["--protected-mode", "no"]
    build = {"context": str(ROOT), "network": "host", "args": {"PYTHON_IMAGE": images["python"]}}
    services: dict[str, Any] = {
        "redis": {"image": images["redis"], "command": redis_cmd},
        "postgres": {"image": images["postgres"]},
    }
    for name in APP:
        services[name] = {"image": app_image, "build": build}
    return {"services": services}


class Project:
    """One compose project: `docker-compose.yml` plus the override, under its own project name."""

    def __init__(self, name: str, override_file: Path, port: int) -> None:
        compose = compose_command()
        assert compose
        self.docker = docker_binary() or "docker"
        self.name = name
        self.base = [*compose, "-p", name, "-f", str(ROOT / "docker-compose.yml"), "-f", str(override_file)]
        self.env = {**os.environ, "PORT": str(port), "COMPOSE_DOCKER_CLI_BUILD": "0"}

    def compose(self, *args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
        return run([*self.base, *args], timeout=timeout, check=check, env=self.env, cwd=ROOT)

    def containers(self, service: str | None = None, all_states: bool = False) -> list[str]:
        cmd = [
            self.docker,
            "ps",
            "-q",
            "--no-trunc",
            "--filter",
            f"label=com.docker.compose.project={self.name}",
        ]
        if service:
            cmd += ["--filter", f"label=com.docker.compose.service={service}"]
        if all_states:
            cmd.append("-a")
        return run(cmd, timeout=60).stdout.split()

    def leftovers(self) -> dict[str, list[str]]:
        """Containers, networks and volumes of this project still there."""
        label = f"label=com.docker.compose.project={self.name}"
        return {
            "containers": self.containers(all_states=True),
            "networks": run(
                [self.docker, "network", "ls", "-q", "--filter", label], timeout=60
            ).stdout.split(),
            "volumes": run([self.docker, "volume", "ls", "-q", "--filter", label], timeout=60).stdout.split(),
        }

    def hostname(self, container: str) -> str:
        return run(
            [self.docker, "inspect", "-f", "{{.Config.Hostname}}", container], timeout=60
        ).stdout.strip()

    def redis_cli(self, *args: str) -> str:
        (redis,) = self.containers("redis")
        return run([self.docker, "exec", redis, "redis-cli", *args], timeout=60).stdout

    def pending_by_consumer(self, stream: str, group: str) -> dict[str, int]:
        """XPENDING's summary: entries held by each consumer of the group."""
        lines = self.redis_cli("XPENDING", stream, group).split()
        # count, smallest id, largest id, then consumer/count pairs
        pairs = lines[3:] if lines and lines[0] != "0" else []
        return {pairs[i]: int(pairs[i + 1]) for i in range(0, len(pairs) - 1, 2)}

    def logs(self, tail: int = 60) -> str:
        return self.compose("logs", "--no-color", "--tail", str(tail), check=False, timeout=120).stdout[
            -12000:
        ]

    def wait_healthz(self, url: str, transcribers: int, timeout: float) -> dict[str, Any]:
        import urllib.request

        deadline = time.monotonic() + timeout
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=3) as resp:
                    body = json.loads(resp.read())
                    if (
                        body.get("ready")
                        and (body.get("workers") or {}).get("transcriber", 0) >= transcribers
                    ):
                        return body
            except (OSError, ValueError):
                pass
            time.sleep(1)  # polling the containers' start, with a deadline
        raise AssertionError(f"not ready in {timeout:.0f} s: {body}\n{self.logs()}")
