"""The Markdown export's transcript, as a student revises from it: paragraphs (`paragraphs.py`), each
opening with its time as a link into the page's playback (`?review=<sid>#t=<s>`), every segment
anchored (`#seg-N`, what the alert list links to without a page address), the alert sentences in
bold and each flag inline where it was set ("⚑ *note*")."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from services.gateway.flag_formats import MARK, clock, playback_link
from services.gateway.paragraphs import paragraphs
from shared.messages import AlertEvent, FlagEvent, TranscriptEvent

Emphasize = Callable[[str, list[str]], str]  # (text, alert sentences) -> Markdown with them in bold
Escape = Callable[[str], str]


def time_link(sid: str, base: str | None, seconds: float, segment: int) -> str:
    """[mm:ss](playback at that time), or the segment's anchor when the page's address is unknown."""
    target = playback_link(base, sid, seconds) if base else f"#seg-{segment}"
    return f"[{clock(seconds)}]({target})"


def md_transcript(
    sid: str,
    lines: Sequence[TranscriptEvent],
    alerts: Sequence[AlertEvent],
    flags: Sequence[FlagEvent],
    base: str | None,
    emphasize: Emphasize,
    escape: Escape,
) -> list[str]:
    """The transcript section's lines (after its heading)."""
    if not lines:
        return ["_No transcript._", ""]
    by_segment: dict[int, list[str]] = {}
    for a in alerts:
        by_segment.setdefault(a.segment, []).append(a.text)
    finals = {f.segment: f for f in lines}
    ordered = sorted(lines, key=lambda f: f.start)
    pending = sorted(flags, key=lambda f: f.start)
    out: list[str] = []
    for para in paragraphs(lines):
        first = finals[para[0]]
        parts = [f"\\[{time_link(sid, base, first.start, first.segment)}\\]"]
        for seg in para:
            f = finals[seg]
            text = emphasize(" ".join(f.text.split()), by_segment.get(seg, []))
            parts.append(f'<a id="seg-{seg}"></a>{text}')
            nxt = next((g for g in ordered if g.start > f.start), None)
            while pending and (nxt is None or pending[0].start < nxt.start):
                flag = pending.pop(0)
                note = " ".join(flag.note.split())
                parts.append(f"{MARK} *{escape(note)}*" if note else MARK)
        out += [" ".join(parts), ""]
    return out
