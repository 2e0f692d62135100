"""`python -m services.transcriber`: load the model once, warm it up, then run the worker loop."""

from __future__ import annotations

import asyncio
import logging
import os
import time

# CTranslate2's OpenMP threads would otherwise spin while waiting for work, burning CPU that the
# VAD and gateway need on a loaded machine (12% less CPU per decoded second, bench/finals.py).
# Set before CTranslate2 is loaded; an operator's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np

from services.transcriber.backends import Request, make_backend
from services.transcriber.worker import TranscriberWorker
from shared.service import run, serve_worker
from shared.settings import TranscriberSettings

log = logging.getLogger("transcriber")


async def main(stop: asyncio.Event) -> None:
    settings = TranscriberSettings()
    t0 = time.perf_counter()
    backend = make_backend(settings)
    if backend.name == "local":
        await backend.transcribe(Request(np.zeros(16000, np.float32), "en", ""))
    log.info("backend=%s ready in %.1fs", backend.name, time.perf_counter() - t0)
    await serve_worker(settings, lambda r: TranscriberWorker(settings, r, backend), stop)


if __name__ == "__main__":
    settings = TranscriberSettings()
    # A transcriber that trims its heap keeps glibc's own threshold (shared/malloc.py).
    run("transcriber", settings.log_level, main, fix_mmap=settings.heap_trim_mb <= 0)
