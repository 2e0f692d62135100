"""Flags in a lecture's views and files: the lecture view's JSON, the Markdown list, subtitle notes.

- `flags_json`: each flag with the words said during it (`text`), for `GET /api/sessions/{sid}`.
- `md_flags`: the Markdown export's "Flags" section: one line per flag with its time (a link into
  the playback when the export knows the page's address), its note and the quoted transcript.
- `flag_cues`: flags as subtitle cues `(start_ms, end_ms, lines)`: .srt has no comments, so a flag
  is a short cue of its own ("⚑ note"); `vtt_note`: the WebVTT `NOTE` block that .vtt gets instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from services.gateway.flags import quote
from shared.messages import FlagEvent, TranscriptEvent

MARK = "⚑"
MIN_CUE_MS = 800
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")


def clock(seconds: float) -> str:
    """Seconds of lecture as "mm:ss" ("h:mm:ss" past an hour), like the page's clock."""
    total = max(0, int(seconds))
    hh, rest = divmod(total, 3600)
    mm, ss = divmod(rest, 60)
    return f"{hh}:{mm:02d}:{ss:02d}" if hh else f"{mm:02d}:{ss:02d}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _md(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", text)


def flags_json(flags: Sequence[FlagEvent], finals: Sequence[TranscriptEvent]) -> list[dict[str, Any]]:
    return [{**f.model_dump(exclude={"type"}), "text": quote(f, finals)} for f in flags]


def playback_link(base: str | None, sid: str, seconds: float) -> str:
    """Where a time of the lecture plays: the page's review view at that time, or the segment anchor."""
    if base:
        return f"{base.rstrip('/')}/?review={sid}#t={seconds:.1f}"
    return f"#t={seconds:.1f}"


def md_flags(
    sid: str, flags: Sequence[FlagEvent], finals: Sequence[TranscriptEvent], base: str | None = None
) -> list[str]:
    """The Markdown lines of the Flags section (heading included)."""
    out = ["## Flags", ""]
    for f in flags:
        parts = [f"[{clock(f.start)}]({playback_link(base, sid, f.start)}) {MARK}"]
        if f.note.strip():
            parts.append(f"**{_md(_one_line(f.note))}**")
        said = _one_line(quote(f, finals))
        if said:
            parts.append(f"“{_md(said)}”")
        out.append("- " + " — ".join(parts))
    if not flags:
        out.append("_No flags._")
    return out


def flag_cues(flags: Sequence[FlagEvent]) -> list[tuple[int, int, list[str]]]:
    """Each flag as a cue: its moment, "⚑ note" (or "⚑ Flagged")."""
    cues = []
    for f in flags:
        start = max(0, round(f.start * 1000))
        end = max(round(f.end * 1000), start + MIN_CUE_MS)
        note = _one_line(f.note).replace("-->", "→")
        cues.append((start, end, [f"{MARK} {note}" if note else f"{MARK} Flagged"]))
    return cues


def vtt_note(f: FlagEvent, finals: Sequence[TranscriptEvent], stamp: str) -> str:
    """A WebVTT comment block for one flag (no blank line or "-->" inside, as the format requires)."""
    said = _one_line(quote(f, finals)).replace("-->", "→")
    note = _one_line(f.note).replace("-->", "→")
    body = " ".join(
        p for p in (f"{MARK} flag at {stamp}", note and f"note: {note}", said and f"“{said}”") if p
    )
    return f"NOTE {body}\n"
