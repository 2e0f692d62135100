"""Fixtures on real parts: a real Redis server, and the whole stack started by `python -m services`."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from shared.postgres_server import database_url as postgres_url
from shared.postgres_server import start_postgres, stop_postgres
from tests.util import Lecture, Stack, free_port, load_lecture, own_redis, running_stack

# Fixtures that start the whole stack (`python -m services`): a test using one must be marked slow.
WHOLE_STACK_FIXTURES = frozenset({"stack"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuses a whole-stack test without `@pytest.mark.slow` (`-m "not slow"` must skip them all)."""
    unmarked = [
        item.nodeid
        for item in items
        if WHOLE_STACK_FIXTURES & set(getattr(item, "fixturenames", ()))
        and not item.get_closest_marker("slow")
    ]
    if unmarked:
        raise pytest.UsageError("whole-stack tests without @pytest.mark.slow: " + ", ".join(unmarked))


@pytest.fixture(scope="session")
def lecture1() -> Lecture:
    return load_lecture("lecture1")


@pytest.fixture(scope="session")
def lecture1_audio(lecture1: Lecture) -> np.ndarray:
    return np.frombuffer(lecture1.pcm, np.int16)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with own_redis(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(scope="session", autouse=True)
def data_dir() -> Iterator[Path]:
    """The data directory of the whole run (audio files), and no archive unless a test asks for one
    (`database_url`): nothing a test starts writes into the repository or a developer's database."""
    path = Path(tempfile.mkdtemp(prefix="classrec-test-data-"))
    saved = {k: os.environ.get(k) for k in ("DATA_DIR", "DATABASE_URL", "WHISPER_MODEL", "FINAL_CONTEXT_S")}
    os.environ.update(DATA_DIR=str(path), DATABASE_URL="")
    # The suite runs on tiny.en (a third of base's decode time on this 2-core machine) unless told
    # otherwise; tests/test_languages.py runs base, the product's default, through the whole stack.
    os.environ.setdefault("WHISPER_MODEL", "tiny.en")
    # ... and decodes each final alone (the default is 10 s of context, measured with base). Finals
    # in context are tested by tests/test_context.py and, through the whole stack, by test_languages'
    # base stack with the default.
    os.environ.setdefault("FINAL_CONTEXT_S", "0")
    yield path
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A real PostgreSQL (the embedded one of `shared/postgres_server.py`) for the whole run."""
    path = Path(tempfile.mkdtemp(prefix="classrec-test-pg-"))
    path.chmod(0o711)  # run as root, the server runs as `nobody`, which must reach its directory
    port = free_port()
    proc = start_postgres(port, path / "pg")
    yield postgres_url(port)
    stop_postgres(proc)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def fresh_database_url(database_url: str) -> AsyncIterator[str]:
    """An empty database of its own on the session's PostgreSQL, dropped afterwards."""
    import secrets

    import asyncpg

    name = "t_" + secrets.token_hex(6)
    admin = await asyncpg.connect(database_url)
    await admin.execute(f"CREATE DATABASE {name}")
    yield database_url.rsplit("/", 1)[0] + "/" + name
    await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
    await admin.close()


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[TestClient]:
    """The real gateway app in-process (aiohttp's test server) on the real Redis."""
    from services.gateway.app import make_app
    from shared.settings import GatewaySettings

    async with TestClient(TestServer(make_app(GatewaySettings(redis_url=redis_url)))) as c:
        yield c


@pytest.fixture
async def r(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    conn = aioredis.Redis.from_url(redis_url)
    yield conn
    await conn.aclose()


@pytest.fixture(scope="session")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(redis_url, tmp_path_factory.mktemp("stack") / "services.log") as s:
        yield s
