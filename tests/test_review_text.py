"""Paragraphs of a transcript and the Markdown a student revises from (alerts bold, flags inline,
times linking into the playback)."""

from __future__ import annotations

from services.gateway.history.formats import emphasize, md_escape
from services.gateway.md_review import md_transcript
from services.gateway.paragraphs import MAX_WORDS, paragraphs
from shared.messages import AlertEvent, FlagEvent, TranscriptEvent


def final(seg: int, start: float, end: float, text: str) -> TranscriptEvent:
    return TranscriptEvent(segment=seg, start=start, end=end, text=text, final=True)


LONG = " ".join(["word"] * 30)
FINALS = [
    final(0, 0.0, 4.0, "Cells are the unit of life."),
    final(1, 4.5, 8.0, "They divide and grow."),  # 0.5 s pause: same paragraph
    final(2, 12.0, 15.0, "Enzymes speed up reactions."),  # 4 s pause: new paragraph
    final(3, 15.4, 20.0, LONG),
    final(4, 20.3, 24.0, "Now, let us look at membranes."),  # a topic shift after 30+ words
    final(5, 24.2, 25.0, ""),  # nothing said: skipped
    final(6, 25.2, 28.0, "Okay so they are thin."),  # a transition, but the paragraph is short
]


def test_paragraphs_at_pauses_topic_shifts_and_length() -> None:
    assert paragraphs(FINALS) == [[0, 1], [2, 3], [4, 6]]
    many = [final(i, i * 1.0, i * 1.0 + 0.9, LONG) for i in range(12)]
    sizes = [len(p) for p in paragraphs(many)]
    assert sum(sizes) == 12 and max(sizes) * 30 <= MAX_WORDS and len(sizes) > 1


def test_markdown_transcript_links_alerts_and_flags() -> None:
    alert = AlertEvent(segment=2, start=12.0, category="important", text="Enzymes speed up reactions.")
    flags = [
        FlagEvent(id="f1", start=5.0, end=6.0, note="why *divide*?"),
        FlagEvent(id="f2", start=13.0, end=13.0),
    ]
    out = md_transcript("sid1", FINALS, [alert], flags, "http://host:1", emphasize, md_escape)
    paras = [line for line in out if line]
    assert len(paras) == 3
    assert paras[0].startswith('\\[[00:00](http://host:1/?review=sid1#t=0.0)\\] <a id="seg-0"></a>Cells')
    assert "They divide and grow. ⚑ *why \\*divide\\*?*" in paras[0]
    assert paras[1].startswith("\\[[00:12](http://host:1/?review=sid1#t=12.0)\\]")
    assert '<a id="seg-2"></a>**Enzymes speed up reactions.** ⚑ <a id="seg-3"></a>' in paras[1]
    assert "[00:20](#seg-4)" in md_transcript("sid1", FINALS, [], [], None, emphasize, md_escape)[4]
