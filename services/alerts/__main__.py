"""`python -m services.alerts`: run one alerts worker."""

from __future__ import annotations

import asyncio

from services.alerts.worker import AlertsWorker
from shared.service import run
from shared.settings import AlertsSettings
from shared.streams import connect, wait_for_redis


async def main(stop: asyncio.Event) -> None:
    settings = AlertsSettings()
    r = connect(settings)
    if await wait_for_redis(r, settings, stop):
        await AlertsWorker(settings, r).run(stop)
    await r.aclose()


if __name__ == "__main__":
    run("alerts", AlertsSettings().log_level, main)
