"""The JSON API's errors: one exception type, rendered by one middleware.

A handler raises `ApiError(status, message)` (with `param`, the form field at fault, and `code`, a
machine-readable reason, when there are any) and the middleware answers `{"error": message}` (plus
`code` and `param` when set) with that status. Storage that does not answer (Redis, or the archive's
PostgreSQL) escaping a handler becomes a 503 `{"error": "storage unavailable, try again", "code":
"unavailable"}`, logged once. The OpenAI-compatible route (`/v1/...`) keeps its own error shape and
renders its errors itself (`uploads/openai_api.py`); the middleware leaves it alone.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from shared.archive import DB_DOWN
from shared.streams import REDIS_DOWN

log = logging.getLogger(__name__)
STORAGE_DOWN = (*REDIS_DOWN, *DB_DOWN)
OWN_SHAPE = ("/v1/",)  # path prefixes whose handlers render their own errors


class ApiError(Exception):
    """A refused request: HTTP status, message, and optionally the field at fault and a code."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message}
        if self.code:
            body["code"] = self.code
        if self.param:
            body["param"] = self.param
        return body

    def response(self) -> web.Response:
        return web.json_response(self.body(), status=self.status)


def unavailable() -> ApiError:
    return ApiError(503, "storage unavailable, try again", None, "unavailable")


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(OWN_SHAPE):
        return await handler(request)
    try:
        return await handler(request)
    except ApiError as e:
        return e.response()
    except STORAGE_DOWN as e:
        log.error("%s %s: storage unavailable: %r", request.method, request.path, e)
        return unavailable().response()


def install(app: web.Application) -> None:
    """Puts the error middleware outermost, so every other middleware's errors are rendered too."""
    app.middlewares.insert(0, error_middleware)
