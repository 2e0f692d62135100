"""`GET /api/search?q=<words>[&limit=N]`: the caller's finals that match, from the archive.

PostgreSQL full-text search over `finals.tsv` (English stemming, so "exams" finds "exam"; the query
in `websearch_to_tsquery` syntax: `"exact phrase"`, `or`, `-word`). Newest lecture first, the best
ranked finals first within a lecture (`ts_rank`). Each hit: `{session, segment, start, end, created,
course, rank, snippet}`, the snippet HTML-escaped with the matched words in `<mark>`. Only the
caller's sessions (`X-ClassRec-Owner`); without a key, the sessions started without one, from this
machine only (as for the list). 400 for an empty or overlong query, 503 without an archive.
"""

from __future__ import annotations

import logging

from aiohttp import web

from services.gateway import archived, owners, state
from services.gateway.errors import ApiError
from services.gateway.history.records import iso
from services.gateway.history.routes import may_list
from shared.archive import DB_DOWN

log = logging.getLogger(__name__)
MAX_QUERY = 200
DEFAULT_LIMIT, MAX_LIMIT = 20, 100


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/search", search)


async def search(request: web.Request) -> web.Response:
    q = request.query.get("q", "").strip()
    if not q:
        raise ApiError(400, "q: say what to search for")
    if len(q) > MAX_QUERY:
        raise ApiError(400, f"q: at most {MAX_QUERY} characters")
    try:
        limit = min(max(int(request.query.get("limit", DEFAULT_LIMIT)), 1), MAX_LIMIT)
    except ValueError:
        raise ApiError(400, "limit must be an integer") from None
    owner = owners.request_owner(request)
    if owner is None and not may_list(request, request.app[state.SETTINGS].auth_token):
        raise ApiError(403, "searching from another machine needs an owner key")
    archive = archived.require(request)
    try:
        hits = await archive.search(owner, q, limit)
    except DB_DOWN as e:
        log.error("search: archive unreachable: %r", e)
        raise ApiError(503, "the archive is unreachable, try again") from None
    for hit in hits:
        hit["created"] = iso(hit["created"])
    return web.json_response({"query": q, "results": hits})
