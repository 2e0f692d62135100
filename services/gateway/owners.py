"""Who may see a session: its owner, or whoever holds one of its share links (README, "Owners").

The page makes an owner key (a secret of 16-128 url-safe characters), keeps it in localStorage and
names it in `start` (`"owner"`) and in the `X-ClassRec-Owner` header of its HTTP requests. The
server never stores the key: sessions carry the SHA-256 of it (`owner` in the `session:{sid}`
registry hash and in the archive). A session started with an owner key is readable and resumable
only with that key, or readable with a share token of that session (`?share=<token>`, see
`share.py`); to anyone else it does not exist (404, `unknown_session`), so ids reveal nothing. A
session started without an owner keeps the behaviour of before: its id is enough.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from dataclasses import dataclass

from aiohttp import web

from services.gateway import archived, state
from services.gateway.errors import ApiError
from services.gateway.sessions import SID_RE, SessionStore, active
from shared.archive import DB_DOWN

log = logging.getLogger(__name__)

OWNER_HEADER = "X-ClassRec-Owner"
OWNER_RE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
SHARE_RE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")


def digest(secret: str) -> str:
    """The SHA-256 hex of an owner key or share token: what is stored instead of it."""
    return hashlib.sha256(secret.encode()).hexdigest()


def request_owner(request: web.Request) -> str | None:
    """The digest of the caller's owner key (header `X-ClassRec-Owner`, else `?owner=` for what a
    browser opens by itself: links, the audio player), None without one; a malformed key is a 400."""
    key = request.headers.get(OWNER_HEADER) or request.query.get("owner")
    if key is None or not key.strip():
        return None
    if not OWNER_RE.fullmatch(key.strip()):
        raise ApiError(400, f"{OWNER_HEADER} must be 16-128 url-safe characters")
    return digest(key.strip())


def request_share(request: web.Request) -> str | None:
    """The digest of the share token of `?share=`, None without one; a malformed one is a 400."""
    token = request.query.get("share")
    if token is None:
        return None
    if not SHARE_RE.fullmatch(token):
        raise ApiError(400, "malformed share token")
    return digest(token)


def same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and hmac.compare_digest(a, b)


def is_owner(request: web.Request, session_owner: str | None) -> bool:
    """The caller owns the session (any caller, for a session without an owner)."""
    return session_owner is None or same(request_owner(request), session_owner)


async def may_read(request: web.Request, sid: str, session_owner: str | None) -> bool:
    """The caller owns the session, or presents a live share token of it."""
    if is_owner(request, session_owner):
        return True
    share = request_share(request)
    if share is None:
        return False
    return await session_of(request.app, share) == sid


@dataclass
class Located:
    """A session as far as access goes: its owner's digest, and whether its audio still comes."""

    sid: str
    owner: str | None
    live: bool


async def locate(request: web.Request, sid: str) -> Located | None:
    """The session in the Redis registry, else in the archive, else by its events alone; None when
    it is unknown or the id malformed."""
    if not SID_RE.fullmatch(sid):
        return None
    r, s = request.app[state.REDIS], request.app[state.SETTINGS]
    status, owner = await r.hmget(SessionStore(r, s).key(sid), "status", "owner")
    if status is not None or owner is not None:
        return Located(sid, owner.decode() if owner else None, active(status))
    row = await archived.session(request.app, sid)
    if row is not None:
        return Located(sid, row.owner, not row.ended)
    if await r.exists(s.events_key(sid)):
        return Located(sid, None, False)
    return None


async def require_reader(request: web.Request, sid: str) -> Located:
    """The session, if the caller may read it (owner or share); else a 404 as for an unknown one."""
    found = await locate(request, sid)
    if found is None or not await may_read(request, sid, found.owner):
        raise ApiError(404, "unknown session")
    return found


async def require_owner(request: web.Request, sid: str) -> Located:
    """The session, if the caller owns it (anyone, for a session without an owner); else a 404."""
    found = await locate(request, sid)
    if found is None or not is_owner(request, found.owner):
        raise ApiError(404, "unknown session")
    return found


async def session_of(app: web.Application, share: str) -> str | None:
    """The session a share token's digest opens, None when it opens none (or there is no archive)."""
    archive = archived.archive_of(app)
    if archive is None:
        return None
    try:
        return await archive.shared_session(share)
    except DB_DOWN as e:
        log.error("share lookup: archive unreachable: %r", e)
        return None
