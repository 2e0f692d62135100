"""A stored transcript as a file: plain text, SubRip (srt), WebVTT (vtt) and Markdown (md)."""

from __future__ import annotations

import logging
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from services.gateway.flag_formats import clock, flag_cues, md_flags, vtt_note
from services.gateway.history.records import (
    Entry,
    Record,
)
from services.gateway.md_review import md_transcript, time_link
from shared.messages import AlertEvent, TranscriptEvent

log = logging.getLogger(__name__)

LINE_CHARS, CUE_LINES = 42, 2  # subtitle lines: characters per line, lines per cue
MIN_CUE_MS = 100
MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")
CATEGORY_NAMES = {
    "exam": "Exam",
    "quiz": "Quiz",
    "deadline": "Deadline",
    "assignment": "Assignment",
    "schedule": "Schedule",
    "custom": "Keyword",
}


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
