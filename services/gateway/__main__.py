"""`python -m services.gateway`: serve the page and the WebSocket protocol; SIGTERM stops gracefully."""

from __future__ import annotations

from aiohttp import web

from services.gateway.app import make_app
from shared.logs import setup_logging
from shared.malloc import return_freed_memory
from shared.settings import GatewaySettings


def main() -> None:
    settings = GatewaySettings()
    log = setup_logging("gateway", settings.log_level)
    return_freed_memory()  # freed audio buffers go back to the system (shared/malloc.py)
    log.info("listening on http://%s:%d", settings.host, settings.port)
    web.run_app(make_app(settings), host=settings.host, port=settings.port, print=None, shutdown_timeout=10)


if __name__ == "__main__":
    main()
