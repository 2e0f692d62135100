"""`python -m services.archive`: the archive worker (see worker.py)."""

from __future__ import annotations

import asyncio
import logging

from services.archive.worker import ArchiveWorker
from shared.archive import DB_DOWN, Archive
from shared.db import connect_pool
from shared.service import run, serve_worker
from shared.settings import ArchiveSettings
from shared.streams import sleep_or_stop

log = logging.getLogger(__name__)


async def main(stop: asyncio.Event) -> None:
    s = ArchiveSettings()
    if not s.database_url:
        raise SystemExit("DATABASE_URL is not set: the archive worker has no database to write")
    delay = 0.2
    while not stop.is_set():
        try:
            pool = await connect_pool(s.database_url)
            break
        except DB_DOWN as e:
            log.warning("archive database unreachable error=%r retry_in=%.1fs", e, delay)
            await sleep_or_stop(stop, delay)
            delay = min(delay * 2, s.retry_max_s)
    else:
        return
    try:
        await serve_worker(s, lambda r: ArchiveWorker(s, r, Archive(pool)), stop)
    finally:
        await pool.close()


if __name__ == "__main__":
    run("archive", ArchiveSettings().log_level, main)
