"""The archive's queries (PostgreSQL, schema in `shared/migrations/`): what the archive worker writes
and what the gateway reads back once a session has left Redis.

Writes are idempotent: every row has a unique key and is inserted with ON CONFLICT DO NOTHING, so a
redelivered message writes nothing twice. A final or an alert may arrive before its session's
`session_opened` (they come on different streams); it then creates the session row, which the
`session_opened` completes (owner, start time, settings) when it comes.
"""

from __future__ import annotations

import html
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
from pydantic import ValidationError

from shared.messages import AlertEvent, FlagEvent, SessionConfig, TranscriptEvent

log = logging.getLogger(__name__)
FINAL_FIELDS = {"type", "segment", "start", "end", "text", "final", "stable"}
MARK_START, MARK_STOP = "\ue000", "\ue001"  # ts_headline's marks, HTML-escaped around afterwards
HEADLINE = f"StartSel={MARK_START}, StopSel={MARK_STOP}, MaxWords=25, MinWords=8, MaxFragments=2"
DB_DOWN = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError)


@dataclass
class ArchivedSession:
    sid: str
    owner: str | None
    created: float
    config: dict[str, Any]
    ended: bool
    segments: int | None
    duration: float
    lines: int = 0  # finals with text
    alerts: int = 0
    finals: int = 0  # finals kept, empty ones included

    @property
    def complete(self) -> bool:
        """Ended, with a final for every utterance: the archive's copy is the whole lecture. (A
        worker that lags on one stream may write the end before the last finals; a dead-lettered
        utterance never gets one, and then Redis is preferred while it still has the session.)"""
        return self.ended and self.segments is not None and self.finals >= self.segments


def _session(row: asyncpg.Record) -> ArchivedSession:
    config = row["config"]
    return ArchivedSession(
        row["id"],
        row["owner"],
        row["created"],
        json.loads(config) if isinstance(config, str) else dict(config),
        row["ended"],
        row["segments"],
        row["duration"],
        row.get("lines", 0) or 0,
        row.get("alerts", 0) or 0,
        row.get("finals", 0) or 0,
    )


# The session's row, made if missing, unless its owner deleted the session; then 0 rows are returned.
_ENSURE = """WITH made AS (
                 INSERT INTO sessions (id, created, config)
                 SELECT $1, $2, $3::jsonb WHERE NOT EXISTS (SELECT 1 FROM deleted_sessions WHERE id = $1)
                 ON CONFLICT (id) DO NOTHING RETURNING id)
             SELECT id FROM made UNION ALL SELECT id FROM sessions WHERE id = $1"""


class Archive:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    # --- writes (the archive worker) ----------------------------------------------------------

    async def open_session(self, sid: str, owner: str | None, config: SessionConfig) -> None:
        created = config.started_at or time.time()
        await self.pool.execute(
            """INSERT INTO sessions (id, owner, created, config)
               SELECT $1, $2, $3, $4::jsonb WHERE NOT EXISTS (SELECT 1 FROM deleted_sessions WHERE id = $1)
               ON CONFLICT (id) DO UPDATE SET owner = COALESCE(sessions.owner, EXCLUDED.owner),
                   created = EXCLUDED.created, config = EXCLUDED.config""",
            sid,
            owner,
            created,
            config.model_dump_json(),
        )

    async def add_final(self, sid: str, config: SessionConfig, t: TranscriptEvent) -> bool:
        """Keep a final; True when it was new."""
        extra = t.model_dump(exclude=FINAL_FIELDS, exclude_none=True)
        async with self.pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval(
                _ENSURE, sid, config.started_at or time.time(), config.model_dump_json()
            ):
                return False  # deleted by its owner
            status = await conn.execute(
                """INSERT INTO finals (session_id, segment, start_s, end_s, text, extra)
                   VALUES ($1, $2, $3, $4, $5, $6::jsonb) ON CONFLICT DO NOTHING""",
                sid,
                t.segment,
                t.start,
                t.end,
                t.text,
                json.dumps(extra),
            )
            if status.endswith(" 1"):
                await conn.execute(
                    "UPDATE sessions SET duration = GREATEST(duration, $2) WHERE id = $1", sid, t.end
                )
        return status.endswith(" 1")

    async def add_alert(self, sid: str, a: AlertEvent) -> bool:
        async with self.pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval(_ENSURE, sid, time.time(), "{}"):
                return False
            status = await conn.execute(
                """INSERT INTO alerts (session_id, segment, start_s, category, text, date, time, title)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING""",
                sid,
                a.segment,
                a.start,
                a.category,
                a.text,
                a.date,
                a.time,
                a.title,
            )
        return status.endswith(" 1")

    async def end_session(self, sid: str, segments: int) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.fetchval(_ENSURE, sid, time.time(), "{}")
            await conn.execute("UPDATE sessions SET ended = true, segments = $2 WHERE id = $1", sid, segments)

    async def add_flags(self, sid: str, flags: list[FlagEvent]) -> int:
        """Keep the session's flags (bookmarks and doubts); returns how many were new."""
        new = 0
        async with self.pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval(_ENSURE, sid, time.time(), "{}"):
                return 0
            for f in flags:
                status = await conn.execute(
                    """INSERT INTO flags (session_id, id, start_s, end_s, note) VALUES ($1, $2, $3, $4, $5)
                       ON CONFLICT DO NOTHING""",
                    sid,
                    f.id,
                    f.start,
                    f.end,
                    f.note,
                )
                new += status.endswith(" 1")
        return new

    # --- reads (the gateway) ------------------------------------------------------------------

    async def session(self, sid: str) -> ArchivedSession | None:
        row = await self.pool.fetchrow(
            "SELECT s.*, (SELECT count(*) FROM finals f WHERE f.session_id = s.id) AS finals"
            " FROM sessions s WHERE s.id = $1",
            sid,
        )
        return _session(row) if row else None

    async def finals(self, sid: str) -> list[TranscriptEvent]:
        rows = await self.pool.fetch(
            "SELECT segment, start_s, end_s, text, extra FROM finals WHERE session_id = $1 ORDER BY segment",
            sid,
        )
        out = []
        for r in rows:
            base = {"segment": r["segment"], "start": r["start_s"], "end": r["end_s"], "text": r["text"]}
            try:
                out.append(TranscriptEvent(**base, final=True, **json.loads(r["extra"])))
            except ValidationError:  # a field this version does not know: keep the words
                out.append(TranscriptEvent(**base, final=True))
        return out

    async def alerts(self, sid: str) -> list[AlertEvent]:
        rows = await self.pool.fetch(
            """SELECT segment, start_s, category, text, date, time, title FROM alerts
               WHERE session_id = $1 ORDER BY segment, ctid""",
            sid,
        )
        out = []
        for r in rows:
            try:
                out.append(AlertEvent(**_alert(r)))
            except ValidationError:
                log.warning("sid=%s archived alert of an unknown category skipped", sid)
        return out

    async def flags(self, sid: str) -> list[FlagEvent]:
        rows = await self.pool.fetch(
            "SELECT id, start_s, end_s, note FROM flags WHERE session_id = $1 ORDER BY start_s, end_s, id",
            sid,
        )
        return [FlagEvent(id=r["id"], start=r["start_s"], end=r["end_s"], note=r["note"]) for r in rows]

    async def sessions_of(self, owner: str | None, limit: int) -> tuple[list[ArchivedSession], int]:
        """The owner's sessions (those without one when owner is None), newest first, with counts."""
        where = "s.owner = $1" if owner else "s.owner IS NULL"
        args: list[Any] = [owner] if owner else []
        rows = await self.pool.fetch(
            f"""SELECT s.*,
                  (SELECT count(*) FROM finals f WHERE f.session_id = s.id AND btrim(f.text) <> '') AS lines,
                  (SELECT count(*) FROM alerts a WHERE a.session_id = s.id) AS alerts,
                  (SELECT count(*) FROM finals f WHERE f.session_id = s.id) AS finals
                FROM sessions s WHERE {where} ORDER BY s.created DESC LIMIT {int(limit)}""",
            *args,
        )
        total = await self.pool.fetchval(f"SELECT count(*) FROM sessions s WHERE {where}", *args)
        return [_session(r) for r in rows], total

    async def known(self, sids: list[str]) -> set[str]:
        """Which of these sessions the archive has."""
        if not sids:
            return set()
        rows = await self.pool.fetch("SELECT id FROM sessions WHERE id = ANY($1::text[])", sids)
        return {r["id"] for r in rows}

    async def search(self, owner: str | None, query: str, limit: int) -> list[dict[str, Any]]:
        """The owner's finals matching `query` (websearch_to_tsquery syntax, English stemming):
        newest lecture first, best ranked first within a lecture, each with a marked snippet."""
        where = "s.owner = $1" if owner else "s.owner IS NULL AND $1::text IS NULL"
        rows = await self.pool.fetch(
            f"""SELECT f.session_id, f.segment, f.start_s, f.end_s, s.created, s.config->>'course' AS course,
                       ts_rank(f.tsv, q) AS rank, ts_headline('english', f.text, q, $4) AS snippet
                FROM websearch_to_tsquery('english', $2) AS q, finals f
                JOIN sessions s ON s.id = f.session_id
                WHERE {where} AND f.tsv @@ q
                ORDER BY s.created DESC, rank DESC, f.segment
                LIMIT $3""",
            owner,
            query,
            limit,
            HEADLINE,
        )
        return [
            {
                "session": r["session_id"],
                "segment": r["segment"],
                "start": r["start_s"],
                "end": r["end_s"],
                "created": r["created"],
                "course": r["course"],
                "rank": round(float(r["rank"]), 4),
                "snippet": mark(r["snippet"]),
            }
            for r in rows
        ]

    # --- shares -------------------------------------------------------------------------------

    async def add_share(self, sid: str, token_digest: str, owner: str | None, config: dict[str, Any]) -> None:
        """A share of the session (its row made first if the archive worker has not yet)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """INSERT INTO sessions (id, owner, created, config) VALUES ($1, $2, $3, $4::jsonb)
                   ON CONFLICT (id) DO NOTHING""",
                sid,
                owner,
                float(config.get("started_at") or time.time()),
                json.dumps(config),
            )
            await conn.execute(
                "INSERT INTO shares (token_hash, session_id, created) VALUES ($1, $2, $3)",
                token_digest,
                sid,
                time.time(),
            )

    async def revoke_shares(self, sid: str) -> int:
        status = await self.pool.execute("DELETE FROM shares WHERE session_id = $1", sid)
        return int(status.split()[-1])

    async def shared_session(self, token_digest: str) -> str | None:
        return await self.pool.fetchval("SELECT session_id FROM shares WHERE token_hash = $1", token_digest)

    async def delete(self, sid: str) -> bool:
        """Removes the session and everything of it (finals, alerts, flags, shares); a tombstone
        keeps late messages from bringing it back. True when it was there."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO deleted_sessions (id, deleted) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                sid,
                time.time(),
            )
            status = await conn.execute("DELETE FROM sessions WHERE id = $1", sid)
        return status.endswith(" 1")


def _alert(r: asyncpg.Record) -> dict[str, Any]:
    return {
        "segment": r["segment"],
        "start": r["start_s"],
        "category": r["category"],
        "text": r["text"],
        "date": r["date"],
        "time": r["time"],
        "title": r["title"],
    }


def mark(snippet: str) -> str:
    """A ts_headline snippet as HTML: the text escaped, the matches in <mark>."""
    return html.escape(snippet).replace(MARK_START, "<mark>").replace(MARK_STOP, "</mark>")
