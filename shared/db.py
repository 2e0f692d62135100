"""The archive's connection pool (asyncpg) and its schema migrations.

Migrations are the numbered SQL files of `shared/migrations/` (`0001_archive.sql`, ...), applied in
order at start by `connect_pool`, each in its own transaction, and recorded in `schema_migrations`.
Processes that start together take a transaction-level advisory lock first, so a migration runs
once; a file already recorded is never run again (edit the schema with a new file, not an old one).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import asyncpg

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATION_RE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
LOCK_ID = 0x636C6173  # advisory lock key of the migrations ("clas")


def migration_files(directory: Path = MIGRATIONS) -> list[tuple[int, Path]]:
    """(version, file) of every migration, in order; a misnamed .sql file is an error."""
    found = []
    for path in sorted(directory.glob("*.sql")):
        m = MIGRATION_RE.match(path.name)
        if not m:
            raise RuntimeError(f"migration {path.name}: name it NNNN_what.sql")
        found.append((int(m.group(1)), path))
    versions = [v for v, _ in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a number in {directory}")
    return found


async def migrate(conn: asyncpg.Connection, directory: Path = MIGRATIONS) -> list[int]:
    """Apply the migrations not yet recorded; return the versions applied now."""
    applied: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_ID)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, applied timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, path in migration_files(directory):
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(path.read_text())
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, path.name
                )
            applied.append(version)
            log.info("migration applied version=%d name=%s", version, path.name)
    return applied


async def connect_pool(url: str, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """A pool on `url`, with the schema brought up to date first."""
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return await asyncpg.create_pool(url, min_size=min_size, max_size=max_size)
