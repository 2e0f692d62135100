"""`python -m services.vad`: run one VAD worker."""

from __future__ import annotations

import asyncio

from services.vad.worker import VadWorker
from shared.service import run, serve_worker
from shared.settings import VadSettings


async def main(stop: asyncio.Event) -> None:
    settings = VadSettings()
    await serve_worker(settings, lambda r: VadWorker(settings, r), stop)


if __name__ == "__main__":
    run("vad", VadSettings().log_level, main)
