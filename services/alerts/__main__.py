"""`python -m services.alerts`: run one alerts worker."""

from __future__ import annotations

import asyncio

from services.alerts.worker import AlertsWorker
from shared.service import run, serve_worker
from shared.settings import AlertsSettings


async def main(stop: asyncio.Event) -> None:
    settings = AlertsSettings()
    await serve_worker(settings, lambda r: AlertsWorker(settings, r), stop)


if __name__ == "__main__":
    run("alerts", AlertsSettings().log_level, main)
