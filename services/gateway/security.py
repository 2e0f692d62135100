"""Access control and hostile input at the gateway: token, Origin, per-client and per-connection bounds.

**Token.** When `AUTH_TOKEN` is set, every request needs it except the few paths a browser must reach
to *ask* for one: `/` (the page), `/static/*` (its scripts) and `/healthz` (liveness probes). That
covers `/ws/transcribe`, everything under `/api/` and `/v1/`, and any route added later (deny by
default). The token is accepted as `Authorization: Bearer <token>` or as `?token=<token>` (a browser
cannot set headers on a WebSocket; the page forwards its own `?token=` to the socket and the
calendar links). A missing or wrong token is a 401 with a JSON body `{"error": ...}`, returned
before any WebSocket upgrade. Tokens are compared in constant time.

**Origin.** The WebSocket handshake and every API request that is not GET/HEAD/OPTIONS must come
from an allowed Origin: the gateway's own (the Origin's host:port equals the request's Host), any of
`ALLOWED_ORIGINS`, or anything when that list holds `*`. A request without an Origin header (curl,
Python clients; browsers always send one on a WebSocket) passes. A refused Origin is a 403 JSON.
This stops another site from driving a user's browser against the gateway (cross-site WebSocket
hijacking), even when no token is set.

**Bounds.** `ClientLimits` counts live WebSocket sessions per client address (the peer address, or
with `TRUST_FORWARDED_FOR` the last `X-Forwarded-For` entry, the one the proxy in front of the
gateway wrote; IPv6 clients are counted per /64). The caller refuses a client over the limit with
`refuse(ws, reason)`: close code 1008 (policy violation), which the page treats as final.
`RateLimiter` is a token bucket: `allow()` for a yes/no (text frames: refused with `rate_limited`),
`throttle()` to wait for a token instead (audio: reading slower keeps it, where refusing would lose
it); `flow.ConnectionLimits` applies both to every connection, and counts owners. Frame size is
bounded by `max_frame_bytes` in `live.py`; session ids are 144-bit `secrets.token_urlsafe(18)`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import WSCloseCode, web
from aiohttp.typedefs import Handler, Middleware

from services.gateway import state
from shared.settings import GatewaySettings

log = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/", "/healthz", "/favicon.ico"})
OPEN_PREFIXES = ("/static/", "/s/")  # /s/<share>: the page; its socket and API calls are gated
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ORIGIN_CHECKED_PREFIXES = ("/api/", "/v1/")
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
MAX_CLOSE_REASON = 123  # bytes: a close frame's payload is at most 125, two of them the code
EPSILON = 1e-9  # tokens: float error in refills must not refuse a frame that is due
MARK = "classrec_security"  # attribute set on the middleware, so that it is installed only once


# --- token -------------------------------------------------------------------------------------


def is_open_path(path: str) -> bool:
    """The paths served without a token: the page, its static files, the health check."""
    if path in OPEN_PATHS:
        return True
    return path.startswith(OPEN_PREFIXES) and "/../" not in path and not path.endswith("/..")


def presented_token(request: web.Request) -> str | None:
    """The token of `Authorization: Bearer <t>`, else of `?token=<t>`, else None."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.query.get("token") or None


def token_ok(given: str | None, expected: str) -> bool:
    """Constant-time comparison (of digests, so that not even the length leaks)."""
    if given is None:
        return False
    a = hashlib.sha256(given.encode()).digest()
    b = hashlib.sha256(expected.encode()).digest()
    return hmac.compare_digest(a, b)


# --- origin ------------------------------------------------------------------------------------


def origin_netloc(origin: str) -> str | None:
    """`scheme://host[:port]` -> `host:port` (default port filled in), None when it does not parse."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return None
    if not parts.hostname or port is None:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{port}"


def host_netloc(host: str, secure: bool) -> str | None:
    """A Host header (`example.edu`, `example.edu:8080`, `[::1]:8080`) as `host:port`."""
    return origin_netloc(f"{'https' if secure else 'http'}://{host}") if host else None


def normalize_origin(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


def origin_allowed(request: web.Request, allowed: list[str]) -> bool:
    """No Origin (not a browser), the gateway's own origin, or one of `allowed` (`*`: any)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    if "*" in allowed or normalize_origin(origin) in {normalize_origin(o) for o in allowed}:
        return True
    own = host_netloc(request.host, request.secure)
    return own is not None and origin_netloc(origin) == own


def needs_origin_check(request: web.Request) -> bool:
    """The WebSocket handshake (any path), and API requests that may change something."""
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return True
    return request.method not in SAFE_METHODS and request.path.startswith(ORIGIN_CHECKED_PREFIXES)


# --- middleware --------------------------------------------------------------------------------


def refusal(status: int, error: str) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="classrec"'} if status == 401 else None
    return web.json_response({"error": error}, status=status, headers=headers)


def security_middleware(settings: GatewaySettings) -> Middleware:
    """The aiohttp middleware enforcing the token and the Origin allowlist of `settings`.

    `/`, `/static/*` and `/healthz` stay open even with a token: the page must load before it can
    ask the user for a token, and health checks carry none.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if settings.auth_token is not None and not is_open_path(request.path):
            if not token_ok(presented_token(request), settings.auth_token):
                log.warning("refused client=%s path=%s: missing or wrong token", request.remote, request.path)
                return refusal(401, "missing or invalid token")
        if needs_origin_check(request) and not origin_allowed(request, settings.allowed_origins):
            log.warning(
                "refused client=%s path=%s: origin %r not allowed",
                request.remote,
                request.path,
                request.headers.get("Origin"),
            )
            return refusal(403, "origin not allowed")
        return await handler(request)

    setattr(middleware, MARK, True)
    return middleware


# --- per-client and per-connection bounds ------------------------------------------------------


def client_key(request: web.Request, trust_forwarded_for: bool = False) -> str:
    """The address a client is counted by: peer address, or the proxy's `X-Forwarded-For` entry.

    Only the last entry is used: earlier ones are whatever the client sent and cost nothing to vary.
    IPv6 addresses are counted per /64 (one host usually holds a whole /64).
    """
    addr = request.remote or "unknown"
    if trust_forwarded_for:
        forwarded = request.headers.get("X-Forwarded-For", "").split(",")[-1].strip()
        addr = forwarded or addr
    try:
        ip = ipaddress.ip_address(addr.strip("[]"))
    except ValueError:
        return addr
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class ClientLimits:
    """Live WebSocket sessions per client, bounded; one instance per gateway process.

    `acquire` checks and counts with no await in between, so concurrent handlers on the event loop
    cannot both take the last place.
    """

    def __init__(self, max_per_client: int) -> None:
        self.max_per_client = max_per_client
        self.live: dict[str, int] = {}

    def acquire(self, client: str) -> bool:
        """Counts one more session for `client`; False (nothing counted) when it has the maximum."""
        n = self.live.get(client, 0)
        if n >= self.max_per_client:
            return False
        self.live[client] = n + 1
        return True

    def release(self, client: str) -> None:
        """Uncounts a session that `acquire` counted."""
        n = self.live.get(client, 0) - 1
        if n > 0:
            self.live[client] = n
        else:
            self.live.pop(client, None)

    def count(self, client: str) -> int:
        return self.live.get(client, 0)


class RateLimiter:
    """Token bucket: `burst` frames at once, `rate` frames per second sustained (one per connection)."""

    def __init__(
        self,
        rate: float,
        burst: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate, self.burst = rate, float(burst)
        self.clock, self.sleep = clock, sleep
        self.tokens = self.burst
        self.stamp = clock()

    def refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def allow(self, cost: float = 1.0) -> bool:
        """Takes `cost` tokens if there are that many; False (nothing taken) if not."""
        self.refill()
        if self.tokens >= cost - EPSILON:
            self.tokens -= cost
            return True
        return False

    def retry_after(self, cost: float = 1.0) -> float:
        """Seconds until `allow(cost)` would succeed (0 if it would now)."""
        self.refill()
        return max(0.0, (cost - EPSILON - self.tokens) / self.rate)

    async def throttle(self, cost: float = 1.0) -> None:
        """Takes `cost` tokens, going into debt if need be, and waits until the debt is paid back."""
        self.refill()
        self.tokens -= cost
        if self.tokens < -EPSILON:
            await self.sleep(-self.tokens / self.rate)


async def refuse(ws: web.WebSocketResponse, reason: str) -> None:
    """Closes a prepared WebSocket with 1008 (policy violation) and `reason` (cut to fit a frame)."""
    message = reason.encode()[:MAX_CLOSE_REASON].decode(errors="ignore").encode()
    await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=message)


# --- wiring ------------------------------------------------------------------------------------


def install(app: web.Application, settings: GatewaySettings) -> None:
    """Adds the middleware and `app[state.CLIENT_LIMITS]` to a not yet started app; a second call does
    nothing."""
    if not any(getattr(m, MARK, False) for m in app.middlewares):
        app.middlewares.append(security_middleware(settings))
    if state.CLIENT_LIMITS not in app:
        app[state.CLIENT_LIMITS] = ClientLimits(settings.max_sessions_per_client)
    if state.OWNER_LIMITS not in app:
        app[state.OWNER_LIMITS] = ClientLimits(settings.max_sessions_per_owner)


def rate_limiter(settings: GatewaySettings) -> RateLimiter:
    """A connection's frame-rate bucket as configured."""
    return RateLimiter(settings.max_messages_per_s, settings.max_messages_burst)
