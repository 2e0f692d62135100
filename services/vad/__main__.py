"""`python -m services.vad`: run one VAD worker."""

from __future__ import annotations

import asyncio

from services.vad.worker import VadWorker
from shared.service import run
from shared.settings import VadSettings
from shared.streams import connect, wait_for_redis


async def main(stop: asyncio.Event) -> None:
    settings = VadSettings()
    r = connect(settings)
    if await wait_for_redis(r, settings, stop):
        worker = VadWorker(settings, r)
        await worker.run(stop)
        await worker.hand_back()
    await r.aclose()


if __name__ == "__main__":
    s = VadSettings()
    run("vad", s.log_level, main)
