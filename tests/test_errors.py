"""The gateway's error middleware (`services/gateway/errors.py`) on aiohttp's test server: an
`ApiError` becomes its JSON body and status, storage that does not answer becomes a 503, and the
OpenAI-compatible prefix is left to render its own errors."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from redis.exceptions import ConnectionError as RedisConnectionError

from services.gateway import errors
from services.gateway.errors import ApiError


async def refused(request: web.Request) -> web.Response:
    raise ApiError(409, "at most 5 voices per owner", code="too_many_voices")


async def field_at_fault(request: web.Request) -> web.Response:
    raise ApiError(400, "invalid language", "language")


async def redis_down(request: web.Request) -> web.Response:
    raise RedisConnectionError("Connection refused")


async def openai_shape(request: web.Request) -> web.Response:
    raise ApiError(400, "not for the middleware")


def app() -> web.Application:
    a = web.Application()
    errors.install(a)
    a.router.add_get("/api/refused", refused)
    a.router.add_get("/api/field", field_at_fault)
    a.router.add_get("/api/down", redis_down)
    a.router.add_get("/v1/audio/transcriptions", openai_shape)
    return a


async def test_errors_rendered_as_json() -> None:
    async with TestClient(TestServer(app())) as client:
        resp = await client.get("/api/refused")
        assert resp.status == 409
        assert await resp.json() == {"error": "at most 5 voices per owner", "code": "too_many_voices"}
        resp = await client.get("/api/field")
        assert resp.status == 400 and await resp.json() == {"error": "invalid language", "param": "language"}
        resp = await client.get("/api/down")
        assert resp.status == 503
        assert await resp.json() == {"error": "storage unavailable, try again", "code": "unavailable"}
        resp = await client.get("/v1/audio/transcriptions")  # its handlers render their own shape
        assert resp.status == 500
