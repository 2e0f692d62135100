"""`--follow SID`: one line per message of a session as it passes through the streams."""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from typing import TextIO

import redis
from redis.exceptions import ResponseError

from services.watch.figures import as_str
from services.watch.render import redact
from shared.messages import (
    SAMPLE_RATE,
    AlertEvent,
    AlertsDone,
    AudioChunk,
    AudioStop,
    ErrorEvent,
    Msg,
    SegmentJob,
    SessionOpened,
    TranscriptEvent,
    TranscriptRecord,
    VadDone,
    from_fields,
)
from shared.redis_errors import REDIS_DOWN
from shared.settings import CommonSettings

LAG_SINCE_MAJOR = 7  # XINFO GROUPS reports lag and entries-read from Redis 7 on
TOP = 3  # per-session streams shown one by one, per prefix
CLEAR = "\x1b[H\x1b[2J"
NAME_WIDTH = 44


def _text(text: str, limit: int = 120) -> str:
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return json.dumps(text, ensure_ascii=False)


def _audio(pcm: bytes) -> str:
    ms = len(pcm) / 2 / SAMPLE_RATE * 1000
    return f"{len(pcm)} B {ms:.0f} ms"


def _transcript(t: TranscriptEvent) -> str:
    kind = "final" if t.final else "partial"
    stable = f" stable={_text(t.stable, 60)}" if t.stable else ""
    return f"seg={t.segment} {kind} {t.start:.2f}-{t.end:.2f}s {_text(t.text)}{stable}"


def describe(msg: Msg) -> str:
    """One line for a stream message: its type and key fields; audio as its size and duration only."""
    kind = getattr(msg, "type", type(msg).__name__)
    match msg:
        case TranscriptEvent():
            detail = _transcript(msg)
        case TranscriptRecord():
            detail = _transcript(msg.transcript)
        case AlertEvent():
            detail = f"seg={msg.segment} {msg.category} date={msg.date} time={msg.time} {_text(msg.text)}"
        case AudioChunk():
            detail = f"seq={msg.seq} {_audio(msg.pcm)}"
        case AudioStop():
            detail = f"seq={msg.seq}"
        case SegmentJob():
            kind_ = "final" if msg.final else f"partial rev={msg.rev}"
            detail = f"seg={msg.segment} {kind_} {msg.start:.2f}-{msg.end:.2f}s {_audio(msg.pcm)}"
        case SessionOpened():
            c = msg.config
            detail = f"language={c.language} timezone={c.timezone} keywords={len(c.keywords)}"
        case VadDone() | AlertsDone():
            detail = f"segments={msg.segments}"
        case ErrorEvent():
            detail = f"{msg.code} {_text(msg.message)}"
        case _:
            detail = msg.model_dump_json(exclude={"type", "pcm"})
    return f"{kind} {detail}"


def follow_keys(settings: CommonSettings, sid: str) -> dict[str, bool]:
    """The streams to follow for a session; True where entries must be filtered by `sid`."""
    shared = [
        settings.sessions_stream,
        settings.segments_stream,
        settings.partials_stream,
        settings.transcripts_stream,
    ]
    return {settings.events_key(sid): False, settings.audio_key(sid): False} | dict.fromkeys(shared, True)


def last_id(r: redis.Redis, key: str) -> str:
    """Where `$` is now: the stream's last generated id, or 0-0 if it does not exist yet."""
    try:
        return as_str(r.xinfo_stream(key)["last-generated-id"])
    except ResponseError:
        return "0-0"


def follow_line(key: str, entry_id: bytes | str, fields: dict, sid: str | None) -> str | None:
    """The line for one entry, or None when it belongs to another session (`sid` given)."""
    try:
        msg = from_fields(fields)
    except ValueError as e:
        return f"{_entry_time(entry_id)} {key:<16} malformed entry fields={sorted(as_str(f) for f in fields)}: {e}"
    if sid is not None and getattr(msg, "sid", None) != sid:
        return None
    return f"{_entry_time(entry_id)} {key:<16} {describe(msg)}"


def _entry_time(entry_id: bytes | str) -> str:
    ms = int(as_str(entry_id).split("-")[0])
    return datetime.fromtimestamp(ms / 1000).strftime("%H:%M:%S.%f")[:-3]


def follow(r: redis.Redis, settings: CommonSettings, sid: str, out: TextIO) -> int:
    """Print the session's messages as they pass, until interrupted; a Redis outage is retried."""
    keys = follow_keys(settings, sid)
    ids = {k: last_id(r, k) for k in keys}
    print(f"following sid={sid} on {', '.join(keys)} (Ctrl-C quits)", file=out, flush=True)
    while True:
        try:
            resp = r.xread(ids, count=100, block=settings.block_ms)
        except REDIS_DOWN as e:
            print(f"redis unreachable at {redact(settings.redis_url)}: {e}", file=sys.stderr, flush=True)
            time.sleep(1)
            continue
        for key, entries in resp or []:
            k = as_str(key)
            for entry_id, fields in entries:
                ids[k] = as_str(entry_id)
                label = k if keys[k] else k.removesuffix(sid).rstrip(":")  # "events", "audio"
                line = follow_line(label, entry_id, fields, sid if keys[k] else None)
                if line is not None:
                    print(line, file=out, flush=True)


# --- command line --------------------------------------------------------------------------------
