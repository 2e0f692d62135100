"""Past sessions: the list, each stored transcript, and the transcript as a file.

- `GET /api/sessions` — the sessions of the registry (`session:{sid}` hashes), newest first by
  `created`, `?limit=` (default 50, at most 500): `{"sessions": [...], "total": N, "limit": n}`, each
  `{id, status, created, course, language, keywords, segments, alerts, duration}`.
- `GET /api/sessions/{sid}` — `{id, status, created, config, duration, transcript, alerts}`.
- `GET /api/sessions/{sid}/transcript.{txt,srt,vtt,md}` — the transcript as a download.

A transcript is read back from the session's `events:{sid}` stream: finals only (a partial is never
part of a stored transcript), the first final of each segment (a redelivered repeat is dropped), in
segment order, empty texts skipped; alerts with exact repeats dropped. `created` is ISO 8601 UTC
(the registry's, else the time of the first event). `duration` is the end of the last final.

The counts of the list need a pass over each session's events (partials are in there too, so XLEN
does not tell). Only the sessions of the returned page are read, and each gateway keeps a tally per
session with the stream id it has read up to: a later request reads only the entries added since,
so an ended session costs one XREVRANGE. Tallies are idempotent, so concurrent requests are safe.

Errors have a JSON body `{"error": ...}`: 400 malformed session id or limit, 404 unknown session
(neither registry entry nor events) or format, 503 when Redis is unreachable.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import textwrap
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis
from aiohttp import web

from services.gateway import archived, owners, state
from services.gateway.calendar import CATEGORY_NAMES, clock
from services.gateway.flag_formats import flag_cues, flags_json, md_flags, vtt_note
from services.gateway.md_review import md_transcript, time_link
from services.gateway.paragraphs import paragraphs
from services.gateway.sessions import SID_RE, SessionStore
from shared.messages import AlertEvent, FlagEvent, Msg, TranscriptEvent, from_fields
from shared.streams import REDIS_DOWN

log = logging.getLogger(__name__)

DEFAULT_LIMIT, MAX_LIMIT = 50, 500
XRANGE_PAGE = 500
TALLY_CACHE_SIZE = 2000  # sessions whose counts a gateway remembers
TALLY_CONCURRENCY = 8  # event streams read at once for one list
LINE_CHARS, CUE_LINES = 42, 2  # subtitle lines: characters per line, lines per cue
MIN_CUE_MS = 100
EVENT_TYPES = (b"transcript", b"alert", b"flag")
MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")


def add_routes(app: web.Application) -> None:
    """Registers the history routes (and the tally cache) on the gateway's application."""
    app[state.TALLIES] = TallyCache()
    app.router.add_get("/api/sessions", list_sessions)
    app.router.add_get("/api/sessions/{sid}", session_detail)
    app.router.add_get("/api/sessions/{sid}/transcript.{ext}", transcript_file)


def http_error(cls: type[web.HTTPException], message: str) -> web.HTTPException:
    return cls(text=json.dumps({"error": message}), content_type="application/json")


# --- reading ----------------------------------------------------------------------------------


@dataclass
class Entry:
    """A session's registry entry (`status`, `created`, `config` are None/{} when it expired)."""

    sid: str
    status: str | None = None
    created: float | None = None
    config: dict[str, Any] = field(default_factory=dict)
    owner: str | None = None  # digest of the owner key (owners.py); None: no owner


REGISTRY_FIELDS = ("status", "created", "config", "owner")


def parse_entry(
    sid: str, status: bytes | None, created: bytes | None, config: bytes | None, owner: bytes | None = None
) -> Entry:
    entry = Entry(sid, status.decode() if status else None, owner=owner.decode() if owner else None)
    try:
        entry.created = float(created) if created else None
    except ValueError:
        pass
    try:
        parsed = json.loads(config) if config else {}
        entry.config = parsed if isinstance(parsed, dict) else {}
    except ValueError:
        pass
    return entry


async def read_entry(r: aioredis.Redis, store: SessionStore, sid: str) -> Entry | None:
    row = await r.hmget(store.key(sid), *REGISTRY_FIELDS)
    if all(v is None for v in row):
        return None
    return parse_entry(sid, *row)


async def scan_registry(r: aioredis.Redis, store: SessionStore) -> list[Entry]:
    """Every registry entry, in no particular order (keys that are not session ids are skipped)."""
    prefix = store.key("")
    sids = []
    async for key in r.scan_iter(match=f"{prefix}*", count=1000):
        sid = key.decode()[len(prefix) :]
        if SID_RE.fullmatch(sid):
            sids.append(sid)
    async with r.pipeline(transaction=False) as pipe:
        for sid in sids:
            pipe.hmget(store.key(sid), *REGISTRY_FIELDS)
        rows = await pipe.execute(raise_on_error=False)
    return [
        parse_entry(sid, *row)
        for sid, row in zip(sids, rows, strict=True)
        if isinstance(row, list) and any(v is not None for v in row)
    ]


def decode(key: str, fields: dict[bytes, bytes]) -> Msg | None:
    """A transcript or alert entry as its message; None for any other or a malformed entry."""
    if fields.get(b"type") not in EVENT_TYPES:
        return None
    try:
        return from_fields(fields)
    except ValueError as e:
        log.warning("skipping malformed event key=%s error=%s", key, e)
        return None


async def read_events(
    r: aioredis.Redis, key: str, after: bytes | None = None
) -> AsyncIterator[tuple[bytes, Msg | None]]:
    """(id, transcript/alert or None) for every entry of the stream after `after`, paged."""
    cursor = "-" if after is None else "(" + after.decode()
    while True:
        entries = await r.xrange(key, min=cursor, max="+", count=XRANGE_PAGE)
        for entry_id, fields in entries:
            yield entry_id, decode(key, fields)
        if len(entries) < XRANGE_PAGE:
            return
        cursor = "(" + entries[-1][0].decode()


def alert_ident(a: AlertEvent) -> tuple:
    return (a.segment, a.category, a.text, a.date, a.time)


@dataclass
class Record:
    """A session's stored transcript: the first final of each segment, and its alerts."""

    finals: dict[int, TranscriptEvent] = field(default_factory=dict)
    alerts: list[AlertEvent] = field(default_factory=list)
    first_id: bytes | None = None
    _seen_alerts: set[tuple] = field(default_factory=set)
    flags_by_id: dict[str, FlagEvent] = field(default_factory=dict)
    base_url: str | None = None  # the page's address, for links into the playback (Markdown)

    def add(self, entry_id: bytes, msg: Msg | None) -> None:
        self.first_id = self.first_id or entry_id
        if isinstance(msg, TranscriptEvent) and msg.final and msg.segment not in self.finals:
            self.finals[msg.segment] = msg
        elif isinstance(msg, AlertEvent) and alert_ident(msg) not in self._seen_alerts:
            self._seen_alerts.add(alert_ident(msg))
            self.alerts.append(msg)
        elif isinstance(msg, FlagEvent):
            self.flags_by_id.setdefault(msg.id, msg)

    @property
    def flags(self) -> list[FlagEvent]:
        """The session's flags (bookmarks and doubts), by time."""
        return sorted(self.flags_by_id.values(), key=lambda f: (f.start, f.end, f.id))

    @property
    def lines(self) -> list[TranscriptEvent]:
        """The finals with text, in segment order."""
        return [self.finals[s] for s in sorted(self.finals) if self.finals[s].text.strip()]

    @property
    def duration(self) -> float:
        return max((f.end for f in self.finals.values()), default=0.0)

    @property
    def started(self) -> float | None:
        """Unix time of the first event (its stream id's milliseconds)."""
        return int(self.first_id.split(b"-")[0]) / 1000 if self.first_id else None


async def read_record(r: aioredis.Redis, key: str) -> Record:
    record = Record()
    async for entry_id, msg in read_events(r, key):
        record.add(entry_id, msg)
    return record


# --- the list's counts ------------------------------------------------------------------------


def parse_id(entry_id: bytes) -> tuple[int, int]:
    ms, _, seq = entry_id.partition(b"-")
    return int(ms), int(seq or 0)


@dataclass
class Tally:
    """Counts of a session's events up to `last_id`; adding an entry twice changes nothing."""

    last_id: bytes | None = None
    first_id: bytes | None = None
    finals: set[int] = field(default_factory=set)
    segments: int = 0
    alerts: set[tuple] = field(default_factory=set)
    duration: float = 0.0

    def add(self, entry_id: bytes, msg: Msg | None) -> None:
        self.first_id = self.first_id or entry_id
        if self.last_id is None or parse_id(entry_id) > parse_id(self.last_id):
            self.last_id = entry_id
        if isinstance(msg, TranscriptEvent) and msg.final and msg.segment not in self.finals:
            self.finals.add(msg.segment)
            self.segments += bool(msg.text.strip())
            self.duration = max(self.duration, msg.end)
        elif isinstance(msg, AlertEvent):
            self.alerts.add(alert_ident(msg))


class TallyCache:
    """The tallies of the sessions listed lately (LRU), brought up to date by reading only new entries."""

    def __init__(self, size: int = TALLY_CACHE_SIZE) -> None:
        self.size = size
        self.items: OrderedDict[str, Tally] = OrderedDict()

    async def tallies(self, r: aioredis.Redis, keys: list[str]) -> list[Tally]:
        async with r.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.xrevrange(key, count=1)
            newest = await pipe.execute()
        limit = asyncio.Semaphore(TALLY_CONCURRENCY)

        async def one(key: str, top: list) -> Tally:
            async with limit:
                return await self.update(r, key, top[0][0] if top else None)

        return list(await asyncio.gather(*(one(k, top) for k, top in zip(keys, newest, strict=True))))

    async def update(self, r: aioredis.Redis, key: str, newest: bytes | None) -> Tally:
        tally = self.items.get(key)
        if newest is None:  # no events (yet, or expired)
            self.items.pop(key, None)
            return Tally()
        if tally is None or tally.last_id is None or parse_id(newest) < parse_id(tally.last_id):
            tally = Tally()  # unseen, or the stream was recreated
        if tally.last_id != newest:
            async for entry_id, msg in read_events(r, key, tally.last_id):
                tally.add(entry_id, msg)
        self.items[key] = tally
        self.items.move_to_end(key)
        while len(self.items) > self.size:
            self.items.popitem(last=False)
        return tally


# --- JSON -------------------------------------------------------------------------------------


def iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds") if ts is not None else None


def summary_json(entry: Entry, tally: Tally) -> dict[str, Any]:
    started = parse_id(tally.first_id)[0] / 1000 if tally.first_id else None
    cfg = entry.config
    return {
        "id": entry.sid,
        "status": entry.status,
        "created": iso(entry.created if entry.created is not None else started),
        "course": cfg.get("course"),
        "language": cfg.get("language"),
        "keywords": cfg.get("keywords") or [],
        "segments": tally.segments,
        "alerts": len(tally.alerts),
        "duration": round(tally.duration, 3),
    }


def detail_json(entry: Entry, record: Record) -> dict[str, Any]:
    return {
        "id": entry.sid,
        "status": entry.status,
        "created": iso(entry.created if entry.created is not None else record.started),
        "config": entry.config,
        "duration": round(record.duration, 3),
        "transcript": [
            f.model_dump(include={"segment", "start", "end", "text", "words"}, exclude_none=True)
            for f in record.lines
        ],
        "alerts": [a.model_dump(exclude={"type"}) for a in sorted(record.alerts, key=lambda a: a.segment)],
        "flags": flags_json(record.flags, record.lines),
        "paragraphs": paragraphs(record.lines),
    }


# --- handlers ---------------------------------------------------------------------------------


def parse_limit(request: web.Request) -> int:
    raw = request.query.get("limit", str(DEFAULT_LIMIT))
    try:
        limit = int(raw)
    except ValueError:
        raise http_error(web.HTTPBadRequest, "limit must be an integer") from None
    if limit < 1:
        raise http_error(web.HTTPBadRequest, "limit must be at least 1")
    return min(limit, MAX_LIMIT)


def may_list(request: web.Request, auth_token: str | None) -> bool:
    """Listing reveals session ids (which grant reading and resuming a session started without an
    owner): without a token, only a client on this machine (the `make run` laptop case) may list
    those. An owner lists only its own sessions, which nobody else can open: from anywhere."""
    if auth_token or owners.request_owner(request):
        return True  # the security middleware has already checked the token
    peer = request.remote or ""
    return peer in ("127.0.0.1", "::1", "localhost") or peer.startswith("127.")


async def list_sessions(request: web.Request) -> web.Response:
    limit = parse_limit(request)
    r, s = request.app[state.REDIS], request.app[state.SETTINGS]
    if not may_list(request, s.auth_token):
        raise http_error(
            web.HTTPForbidden, "listing sessions from another machine needs AUTH_TOKEN to be set"
        )
    owner = owners.request_owner(request)
    try:
        entries = [e for e in await scan_registry(r, SessionStore(r, s)) if e.owner == owner]
        entries.sort(key=lambda e: e.created or 0.0, reverse=True)
        page = entries[:limit]
        tallies = await request.app[state.TALLIES].tallies(r, [s.events_key(e.sid) for e in page])
    except REDIS_DOWN as e:
        log.error("history list: redis unavailable: %r", e)
        raise http_error(web.HTTPServiceUnavailable, "storage unavailable, try again") from None
    sessions = [summary_json(e, t) for e, t in zip(page, tallies, strict=True)]
    sessions, total = await archived.merge_list(request.app, owner, sessions, [e.sid for e in entries], limit)
    return web.json_response({"sessions": sessions, "total": total, "limit": limit})


async def load(request: web.Request) -> tuple[Entry, Record]:
    """The session of the URL, with its record; raises the JSON 400/404/503."""
    sid = request.match_info["sid"]
    if not SID_RE.fullmatch(sid):
        raise http_error(web.HTTPBadRequest, "malformed session id")
    r, s = request.app[state.REDIS], request.app[state.SETTINGS]
    row = await archived.session(request.app, sid)
    try:
        entry = await read_entry(r, SessionStore(r, s), sid)
        owner = entry.owner if entry is not None else row.owner if row is not None else None
        if not await owners.may_read(request, sid, owner):
            raise http_error(web.HTTPNotFound, "unknown session")  # another owner's: it does not exist
        if row is not None and row.complete:  # the archive's copy is the whole lecture
            return await archived.record(request.app, row)
        key = s.events_key(sid)
        if entry is None and not await r.exists(key):
            if row is not None:  # Redis lost it before its end: what the archive has
                return await archived.record(request.app, row)
            raise http_error(web.HTTPNotFound, "unknown session")
        record = await read_record(r, key)
    except REDIS_DOWN as e:
        log.error("sid=%s history: redis unavailable: %r", sid, e)
        raise http_error(web.HTTPServiceUnavailable, "storage unavailable, try again") from None
    return entry or Entry(sid), record


async def session_detail(request: web.Request) -> web.Response:
    entry, record = await load(request)
    return web.json_response(detail_json(entry, record))


async def transcript_file(request: web.Request) -> web.Response:
    ext = request.match_info["ext"]
    if ext not in FORMATS:
        raise http_error(web.HTTPNotFound, f"unknown format {ext!r}: use txt, srt, vtt or md")
    entry, record = await load(request)
    record.base_url = f"{request.scheme}://{request.host}"
    content_type, render = FORMATS[ext]
    return web.Response(
        text=render(entry, record),
        content_type=content_type,
        charset="utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="classrec-{entry.sid}.{ext}"',
            "Cache-Control": "no-cache",
        },
    )


# --- plain text and subtitles -----------------------------------------------------------------


def one_line(text: str) -> str:
    return " ".join(text.split())


def render_txt(entry: Entry, record: Record) -> str:
    return "".join(f"[{clock(f.start)}] {one_line(f.text)}\n" for f in record.lines)


@dataclass(frozen=True)
class Cue:
    start_ms: int
    end_ms: int
    lines: list[str]


def split_cues(final: TranscriptEvent) -> list[Cue]:
    """A final as cues of at most CUE_LINES lines of ~LINE_CHARS characters, timed by characters."""
    text = one_line(final.text).replace("-->", "→")
    lines = textwrap.wrap(text, LINE_CHARS, break_long_words=False, break_on_hyphens=False)
    chunks = [lines[i : i + CUE_LINES] for i in range(0, len(lines), CUE_LINES)]
    if not chunks:
        return []
    start = max(0, round(final.start * 1000))
    end = max(round(final.end * 1000), start + MIN_CUE_MS * len(chunks))
    weights = [sum(len(line) for line in chunk) for chunk in chunks]
    total, done, cues, t0 = sum(weights), 0, [], start
    for chunk, weight in zip(chunks, weights, strict=True):
        done += weight
        t1 = start + round((end - start) * done / total)
        cues.append(Cue(t0, t1, chunk))
        t0 = t1
    return cues


def timestamp(ms: int, sep: str) -> str:
    hh, rest = divmod(ms, 3_600_000)
    mm, rest = divmod(rest, 60_000)
    ss, ms = divmod(rest, 1000)
    return f"{hh:02d}:{mm:02d}:{ss:02d}{sep}{ms:03d}"


def cues(record: Record, with_flags: bool = True) -> list[Cue]:
    """The transcript's cues, and (for .srt) a cue per flag, in time order."""
    out = [cue for final in record.lines for cue in split_cues(final)]
    if with_flags:
        out += [Cue(*c) for c in flag_cues(record.flags)]
    return sorted(out, key=lambda c: c.start_ms)


def render_srt(entry: Entry, record: Record) -> str:
    blocks = [
        f"{n}\n{timestamp(c.start_ms, ',')} --> {timestamp(c.end_ms, ',')}\n" + "\n".join(c.lines) + "\n"
        for n, c in enumerate(cues(record), 1)
    ]
    return "\n".join(blocks)


def vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_vtt(entry: Entry, record: Record) -> str:
    blocks = [f"WEBVTT\n\nNOTE ClassRec session {entry.sid}\n"]
    notes = [(round(f.start * 1000), f) for f in record.flags]  # flags as NOTE blocks, in time order
    for n, c in enumerate(cues(record, with_flags=False), 1):
        while notes and notes[0][0] <= c.start_ms:
            ms, flag = notes.pop(0)
            blocks.append(vtt_note(flag, record.lines, timestamp(ms, ".")))
        timing = f"{timestamp(c.start_ms, '.')} --> {timestamp(c.end_ms, '.')}"
        blocks.append(f"{n}\n{timing}\n" + "\n".join(vtt_escape(line) for line in c.lines) + "\n")
    blocks += [vtt_note(flag, record.lines, timestamp(ms, ".")) for ms, flag in notes]
    return "\n".join(blocks)


# --- Markdown ---------------------------------------------------------------------------------


def md_escape(text: str) -> str:
    return MD_SPECIAL.sub(r"\\\1", text)


def local_start(entry: Entry, record: Record) -> datetime | None:
    """When the session started, in its own time zone (UTC when it has none or an unknown one)."""
    ts = entry.config.get("started_at") or entry.created or record.started
    if not ts:
        return None
    try:
        zone = ZoneInfo(entry.config["timezone"]) if entry.config.get("timezone") else UTC
    except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
        zone = UTC
    return datetime.fromtimestamp(float(ts), zone)


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def md_heading(entry: Entry, record: Record) -> list[str]:
    start = local_start(entry, record)
    title = str(entry.config.get("course") or "").strip() or "Lecture"
    day = f"{start:%A} {start.day} {start:%B %Y}" if start else "date unknown"
    facts = [f"Started {start:%H:%M} ({start.tzname()})"] if start else []
    facts += [
        f"duration {clock(record.duration)}",
        plural(len(record.lines), "segment"),
        plural(len(record.alerts), "alert"),
        f"session `{entry.sid}`",
    ]
    return [f"# {md_escape(title)} — {day}", "", " · ".join(facts)]


def md_alert(a: AlertEvent, sid: str = "", base: str | None = None) -> str:
    when = " ".join(x for x in (a.date, a.time) if x)
    parts = [
        f"**{CATEGORY_NAMES.get(a.category, a.category.capitalize())}**",
        md_escape(one_line(a.title or "")),
        when,
        f"“{md_escape(one_line(a.text))}”" if a.text.strip() else "",
        time_link(sid, base, a.start, a.segment),
    ]
    return "- " + " — ".join(p for p in parts if p)


def bold_spans(text: str, sentences: list[str]) -> list[tuple[int, int]]:
    """Where the alert sentences are in `text` (all of it when one is not found), merged."""
    spans = []
    for sentence in filter(None, (one_line(s) for s in sentences)):
        at = text.lower().find(sentence.lower())
        spans.append((at, at + len(sentence)) if at >= 0 else (0, len(text)))
    merged: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def emphasize(text: str, sentences: list[str]) -> str:
    """`text` as Markdown with the alert sentences in bold."""
    out, pos = [], 0
    for a, b in bold_spans(text, sentences):
        inner = text[a:b].strip()
        if not inner:
            continue
        out += [md_escape(text[pos:a]), f"**{md_escape(inner)}**"]
        pos = b
    out.append(md_escape(text[pos:]))
    return re.sub(r"\*\*(\s*)\*\*", r"\1", "".join(out))  # adjacent bold spans read as one


def render_md(entry: Entry, record: Record) -> str:
    alerts = sorted(record.alerts, key=lambda a: a.segment)
    out = md_heading(entry, record) + ["", "## Alerts", ""]
    out += [md_alert(a, entry.sid, record.base_url) for a in alerts] or ["_No alerts._"]
    if record.flags:
        out += ["", *md_flags(entry.sid, record.flags, record.lines, record.base_url)]
    out += ["", "## Transcript", ""]
    out += md_transcript(entry.sid, record.lines, alerts, record.flags, record.base_url, emphasize, md_escape)
    return "\n".join(out).rstrip("\n") + "\n"


Renderer = Callable[[Entry, Record], str]
FORMATS: dict[str, tuple[str, Renderer]] = {  # extension: (content type, renderer)
    "txt": ("text/plain", render_txt),
    "srt": ("application/x-subrip", render_srt),
    "vtt": ("text/vtt", render_vtt),
    "md": ("text/markdown", render_md),
}
