"""The embedded PostgreSQL (both binary sources) and the schema migrations, on real servers."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from services.__main__ import start_archive_db
from shared import db
from shared.postgres_server import bin_dir, database_url, start_postgres, stop_postgres, wheel_bin_dir
from shared.settings import LauncherSettings
from tests.util import free_port


@pytest.fixture
def pg_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="classrec-pg-test-"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("source", ["path", "wheel"])
async def test_server_keeps_its_data_across_a_restart(pg_dir: Path, source: str) -> None:
    bins = wheel_bin_dir() if source == "wheel" else bin_dir()
    assert (bins / "postgres").exists()
    port = free_port()
    proc = start_postgres(port, pg_dir / "pg", bins)
    try:
        conn = await asyncpg.connect(database_url(port))
        assert await conn.fetchval("SELECT current_database()") == "classrec"
        await conn.execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('lecture')")
        await conn.close()
    finally:
        assert stop_postgres(proc) == 0
    proc = start_postgres(port, pg_dir / "pg", bins)  # no initdb this time: the cluster is there
    try:
        conn = await asyncpg.connect(database_url(port))
        assert await conn.fetchval("SELECT v FROM kept") == "lecture"
        # 127.0.0.1 only: no other address, no Unix socket
        assert await conn.fetchval("SHOW listen_addresses") == "127.0.0.1"
        assert await conn.fetchval("SHOW unix_socket_directories") == ""
        await conn.close()
    finally:
        stop_postgres(proc)


def test_unreachable_data_dir_as_root_is_a_clear_error(tmp_path: Path) -> None:
    import os

    if os.geteuid() != 0:
        pytest.skip("only root hands the data directory to another user")
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    with pytest.raises(RuntimeError, match="cannot enter"):
        start_postgres(free_port(), private / "pg")


async def test_migrations_apply_once_in_order(fresh_database_url: str) -> None:
    conns = [await asyncpg.connect(fresh_database_url) for _ in range(3)]
    try:
        applied = await asyncio.gather(*(db.migrate(c) for c in conns))  # three services starting at once
        versions = [v for v, _ in db.migration_files()]
        assert sorted(sum(applied, [])) == versions  # each applied by exactly one of them
        rows = await conns[0].fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in rows] == versions
        assert await db.migrate(conns[0]) == []
        tables = {
            r["tablename"]
            for r in await conns[0].fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        assert {"sessions", "finals", "alerts", "flags", "shares", "schema_migrations"} <= tables
    finally:
        for c in conns:
            await c.close()


async def test_a_misnamed_migration_is_refused(tmp_path: Path) -> None:
    (tmp_path / "0001_ok.sql").write_text("SELECT 1;")
    (tmp_path / "2_bad.sql").write_text("SELECT 1;")
    with pytest.raises(RuntimeError, match="NNNN_what.sql"):
        db.migration_files(tmp_path)


async def test_pool_migrates_then_serves(fresh_database_url: str) -> None:
    pool = await db.connect_pool(fresh_database_url, max_size=2)
    try:
        assert await pool.fetchval("SELECT count(*) FROM sessions") == 0
    finally:
        await pool.close()


def test_launcher_starts_postgres_only_without_database_url(
    pg_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://elsewhere/db")
    env: dict[str, str] = {}
    assert start_archive_db(LauncherSettings(data_dir=str(pg_dir)), env) is None and env == {}
    monkeypatch.delenv("DATABASE_URL")
    proc = start_archive_db(LauncherSettings(data_dir=str(pg_dir)), env)
    assert proc is not None
    try:
        assert env["DATABASE_URL"].startswith("postgresql://classrec@127.0.0.1:")
        assert (pg_dir / "postgres" / "PG_VERSION").exists()
    finally:
        stop_postgres(proc)
