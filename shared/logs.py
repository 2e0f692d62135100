"""Logging set-up: one line per event, `key=value` pairs so a session can be followed with grep."""

from __future__ import annotations

import logging
import sys


def setup_logging(service: str, level: str = "INFO") -> logging.Logger:
    logging.basicConfig(
        stream=sys.stderr,
        level=level.upper(),
        format=f"%(asctime)s %(levelname)s {service} %(message)s",
        force=True,
    )
    for noisy in ("httpx", "openai", "faster_whisper", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return logging.getLogger(service)
