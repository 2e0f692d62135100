"""The gateway application's state: every `web.AppKey`, in one leaf module.

Feature modules (history, uploads, calendar, ...) read `request.app[state.REDIS]` and friends from
here and never import `app.py`, which imports them to register their routes: imports go one way,
from `app` down to the features and from every module down to this one. It imports nothing of the
gateway at run time; the types of feature-owned values are named for type checkers only.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import redis.asyncio as aioredis
from aiohttp import web

from shared.archive import Archive
from shared.settings import GatewaySettings

if TYPE_CHECKING:  # types only: these modules import this one
    from services.gateway.history.tallies import TallyCache
    from services.gateway.security import ClientLimits
    from services.gateway.uploads.feeder import Feeder

SETTINGS = web.AppKey("settings", GatewaySettings)
REDIS = web.AppKey("redis", aioredis.Redis)
# Open WebSockets, closed with 1001 on shutdown.
SOCKETS: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("sockets", set)
# Tasks that outlive a request (grace timers of detached sessions, upload feeders); cancelled on cleanup.
BACKGROUND: web.AppKey[set[asyncio.Task]] = web.AppKey("background", set)
# The archive's store, present only when DATABASE_URL is set (`archived.py`).
ARCHIVE = web.AppKey("archive", Archive)
# Live sessions per client address (`security.py`).
CLIENT_LIMITS: web.AppKey[ClientLimits] = web.AppKey("client_limits")
# Live sessions per owner key (`flow.py`, counted at `start`).
OWNER_LIMITS: web.AppKey[ClientLimits] = web.AppKey("owner_limits")
# Tallies of the sessions listed lately (`history/tallies.py`).
TALLIES: web.AppKey[TallyCache] = web.AppKey("history_tallies")
# The largest upload accepted, in bytes, and the uploads being fed, by session id (`uploads/`).
UPLOAD_LIMIT = web.AppKey("upload_limit", int)
UPLOADS_ACTIVE: web.AppKey[dict[str, Feeder]] = web.AppKey("uploads_active", dict)
# Followers of shared sessions on this gateway, by session id (`follow.py`).
FOLLOWERS: web.AppKey[dict[str, int]] = web.AppKey("followers", dict)
