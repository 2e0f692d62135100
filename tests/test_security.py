"""Access control and hostile input: the real gateway app on aiohttp's test server, a real Redis."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from aiohttp import WSServerHandshakeError, web
from aiohttp.test_utils import TestClient, TestServer

from services.gateway import security
from services.gateway.app import make_app
from services.gateway.security import (
    ClientLimits,
    RateLimiter,
    client_key,
    origin_netloc,
    refuse,
)
from services.gateway.state import CLIENT_LIMITS
from shared.messages import TranscriptEvent
from shared.settings import GatewaySettings
from shared.streams import xadd
from tests.util import FakeClock

TOKEN = "s3cret"
OTHER_SITE = "https://evil.example"
PARTNER = "https://lms.example.edu"


def app_with_security(settings: GatewaySettings) -> web.Application:
    """The gateway app with the security middleware, whether or not `make_app` already adds it."""
    app = make_app(settings)
    security.install(app, settings)
    return app


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[TestClient]:
    settings = GatewaySettings(redis_url=redis_url, auth_token=TOKEN, allowed_origins=[PARTNER])
    async with TestClient(TestServer(app_with_security(settings))) as c:
        yield c


@pytest.fixture
async def open_client(redis_url: str) -> AsyncIterator[TestClient]:
    """No token configured: only the Origin rules apply."""
    async with TestClient(TestServer(app_with_security(GatewaySettings(redis_url=redis_url)))) as c:
        yield c


def own_origin(c: TestClient) -> str:
    return f"http://{c.server.host}:{c.server.port}"


async def handshake_status(c: TestClient, path: str = "/ws/transcribe", **kw: object) -> int:
    """101 when the WebSocket opens (then closes it), else the HTTP status of the refusal."""
    try:
        ws = await c.ws_connect(path, **kw)  # type: ignore[arg-type]
    except WSServerHandshakeError as e:
        return e.status
    await ws.close()
    return 101


async def session_id(ws: object) -> str:
    msg = await ws.receive_json(timeout=10)  # type: ignore[attr-defined]
    assert msg["type"] == "session"
    return msg["session"]


# --- token -------------------------------------------------------------------------------------


async def test_websocket_without_token_is_refused_before_the_upgrade(client: TestClient) -> None:
    resp = await client.get("/ws/transcribe", headers={"Upgrade": "websocket", "Connection": "Upgrade"})
    assert resp.status == 401
    assert resp.headers["Content-Type"].startswith("application/json")
    assert "error" in await resp.json()
    assert await handshake_status(client) == 401


@pytest.mark.parametrize(
    "kw",
    [
        {"params": {"token": "wrong"}},
        {"headers": {"Authorization": "Bearer wrong"}},
        {"headers": {"Authorization": f"Basic {TOKEN}"}},
        {"params": {"token": ""}},
        {"params": {"token": TOKEN + "x"}},
    ],
)
async def test_websocket_with_wrong_token_is_refused(client: TestClient, kw: dict) -> None:
    assert await handshake_status(client, **kw) == 401


@pytest.mark.parametrize(
    "kw",
    [{"params": {"token": TOKEN}}, {"headers": {"Authorization": f"Bearer {TOKEN}"}}],
    ids=["query", "header"],
)
async def test_websocket_with_token_opens_a_session(client: TestClient, kw: dict) -> None:
    async with client.ws_connect("/ws/transcribe", **kw) as ws:
        await ws.send_str(json.dumps({"type": "start"}))
        sid = await session_id(ws)
        assert len(sid) >= 22  # 144 random bits, unguessable


async def test_page_static_and_health_stay_open(client: TestClient) -> None:
    for path in ("/", "/healthz", "/static/app.js"):
        resp = await client.get(path)
        assert resp.status == 200, path


async def test_apis_need_the_token(client: TestClient) -> None:
    for path in ("/api/anything", "/api/sessions/abcdefgh/alerts.ics", "/v1/audio/transcriptions", "/nope"):
        resp = await client.get(path)
        assert resp.status == 401, path
        assert "error" in await resp.json()
    resp = await client.get("/api/sessions/abcdefgh/alerts.ics", params={"token": TOKEN})
    assert resp.status == 404  # past the middleware: the calendar route's own answer
    resp = await client.get("/api/anything", headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status == 404


# --- origin ------------------------------------------------------------------------------------


async def test_origin_allowlist_on_the_websocket(client: TestClient) -> None:
    auth = {"params": {"token": TOKEN}}
    assert await handshake_status(client, headers={"Origin": PARTNER}, **auth) == 101
    assert await handshake_status(client, headers={"Origin": PARTNER + "/"}, **auth) == 101
    assert await handshake_status(client, headers={"Origin": own_origin(client)}, **auth) == 101
    assert await handshake_status(client, headers={"Origin": OTHER_SITE}, **auth) == 403
    assert await handshake_status(client, headers={"Origin": "null"}, **auth) == 403


async def test_same_origin_only_by_default(open_client: TestClient) -> None:
    c = open_client
    assert await handshake_status(c, headers={"Origin": own_origin(c)}) == 101
    assert await handshake_status(c, headers={"Origin": f"http://localhost:{c.server.port}"}) == 403
    assert await handshake_status(c, headers={"Origin": f"http://{c.server.host}:1"}) == 403
    assert await handshake_status(c, headers={"Origin": PARTNER}) == 403
    assert await handshake_status(c) == 101  # no Origin: not a browser


async def test_refused_origin_is_json_403(open_client: TestClient) -> None:
    resp = await open_client.post("/api/anything", headers={"Origin": OTHER_SITE})
    assert resp.status == 403
    assert (await resp.json())["error"] == "origin not allowed"
    resp = await open_client.get("/api/anything", headers={"Origin": OTHER_SITE})
    assert resp.status == 404  # a GET of an API is not origin-checked (a link from elsewhere may open it)


def test_origin_netloc_fills_default_ports() -> None:
    assert origin_netloc("https://Example.edu") == "example.edu:443"
    assert origin_netloc("http://example.edu:8080/") == "example.edu:8080"
    assert origin_netloc("http://[::1]:8080") == "[::1]:8080"
    assert origin_netloc("null") is None
    assert origin_netloc("http://example.edu:99999") is None


# --- sessions are isolated ---------------------------------------------------------------------


async def test_a_session_gets_only_its_own_events(open_client: TestClient, r: aioredis.Redis) -> None:
    s = GatewaySettings()
    async with open_client.ws_connect("/ws/transcribe") as a, open_client.ws_connect("/ws/transcribe") as b:
        await a.send_str(json.dumps({"type": "start"}))
        await b.send_str(json.dumps({"type": "start"}))
        sid_a, sid_b = await session_id(a), await session_id(b)
        assert sid_a != sid_b
        for sid, text in ((sid_a, "for a"), (sid_b, "for b 1"), (sid_a, "for a 2"), (sid_b, "for b 2")):
            event = TranscriptEvent(segment=0, start=0.0, end=1.0, text=text, final=False)
            await xadd(r, s.events_key(sid), event, 1000)
        assert [(await a.receive_json(timeout=10))["text"] for _ in range(2)] == ["for a", "for a 2"]
        assert [(await b.receive_json(timeout=10))["text"] for _ in range(2)] == ["for b 1", "for b 2"]


# --- per-client and per-connection bounds ------------------------------------------------------


def test_client_limits_refuse_over_the_maximum_and_release_frees() -> None:
    limits = ClientLimits(3)
    assert [limits.acquire("10.0.0.1") for _ in range(4)] == [True, True, True, False]
    assert limits.acquire("10.0.0.2")  # another client has its own count
    limits.release("10.0.0.1")
    assert limits.acquire("10.0.0.1")
    assert not limits.acquire("10.0.0.1")
    for _ in range(3):
        limits.release("10.0.0.1")
    assert limits.count("10.0.0.1") == 0 and "10.0.0.1" not in limits.live


def test_install_is_idempotent(redis_url: str) -> None:
    settings = GatewaySettings(redis_url=redis_url, max_sessions_per_client=2)
    app = app_with_security(settings)
    n = len(app.middlewares)
    security.install(app, settings)
    assert len(app.middlewares) == n
    assert app[CLIENT_LIMITS].max_per_client == 2


class FakeRequest:
    def __init__(self, remote: str, forwarded: str | None = None) -> None:
        self.remote = remote
        self.headers = {"X-Forwarded-For": forwarded} if forwarded else {}


def test_client_key() -> None:
    proxied = FakeRequest("127.0.0.1", "6.6.6.6, 203.0.113.7")
    assert client_key(proxied) == "127.0.0.1"  # type: ignore[arg-type]
    assert client_key(proxied, trust_forwarded_for=True) == "203.0.113.7"  # type: ignore[arg-type]
    assert client_key(FakeRequest("127.0.0.1"), trust_forwarded_for=True) == "127.0.0.1"  # type: ignore[arg-type]
    v6 = [client_key(FakeRequest(f"2001:db8::{i}")) for i in (1, 2)]  # type: ignore[arg-type]
    assert v6[0] == v6[1] == "2001:db8::/64"
    assert client_key(FakeRequest("::ffff:192.0.2.1")) == "192.0.2.1"  # type: ignore[arg-type]


async def test_refuse_closes_with_policy_violation(open_client: TestClient) -> None:
    """The gateway's answer to a client over its session limit, seen from the client."""
    limits = ClientLimits(1)

    async def limited(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        client = client_key(request)
        if not limits.acquire(client):
            await refuse(ws, "too many sessions from this address " + "x" * 200)
            return ws
        try:
            async for _ in ws:
                pass
        finally:
            limits.release(client)
        return ws

    app = web.Application()
    app.router.add_get("/ws", limited)
    async with TestClient(TestServer(app)) as c:
        first = await c.ws_connect("/ws")
        second = await c.ws_connect("/ws")
        msg = await second.receive(timeout=10)
        assert second.close_code == 1008
        assert msg.extra.startswith("too many sessions") and len(msg.extra.encode()) <= 123
        await first.close()
        third = await c.ws_connect("/ws")  # the first one's place is free again
        await third.close()


def test_rate_limiter_burst_then_refuse_then_refill() -> None:
    clock = FakeClock()
    bucket = RateLimiter(rate=50.0, burst=200, clock=clock)
    assert sum(bucket.allow() for _ in range(250)) == 200
    assert not bucket.allow()
    assert bucket.retry_after() == pytest.approx(1 / 50)
    clock.now += 0.1  # five frames' worth
    assert sum(bucket.allow() for _ in range(10)) == 5
    clock.now += 3600  # refills up to the burst, not beyond
    assert sum(bucket.allow() for _ in range(300)) == 200


async def test_rate_limiter_throttle_waits_instead_of_refusing() -> None:
    clock = FakeClock()
    bucket = RateLimiter(rate=10.0, burst=5, clock=clock, sleep=clock.sleep)
    start = clock.now
    for _ in range(25):
        await bucket.throttle()
    assert clock.now - start == pytest.approx(2.0)  # 5 at once, then 20 at 10 per second


def test_rate_limiter_from_settings() -> None:
    bucket = security.rate_limiter(GatewaySettings(max_messages_per_s=2.0, max_messages_burst=3))
    assert (bucket.rate, bucket.burst) == (2.0, 3.0)


# --- settings ----------------------------------------------------------------------------------


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOWED_ORIGINS", "https://a.example.edu/, https://b.example.edu")
    monkeypatch.setenv("AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("TRUST_FORWARDED_FOR", "true")
    s = GatewaySettings()
    assert s.allowed_origins == ["https://a.example.edu", "https://b.example.edu"]
    assert s.auth_token == TOKEN and s.trust_forwarded_for
    monkeypatch.setenv("ALLOWED_ORIGINS", '["https://c.example.edu"]')
    monkeypatch.setenv("AUTH_TOKEN", "")
    s = GatewaySettings()
    assert s.allowed_origins == ["https://c.example.edu"] and s.auth_token is None
    monkeypatch.setenv("ALLOWED_ORIGINS", "")
    assert GatewaySettings().allowed_origins == []
