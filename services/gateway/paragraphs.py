"""Paragraphs of a transcript, for reading and revising: the lecture view, the review and Markdown.

A stored transcript is one final per utterance (the VAD cuts at 0.4 s pauses), which reads as a
column of one-line scraps. `paragraphs(finals)` groups consecutive finals: a new paragraph starts at
a long pause (`PAUSE_S` between one final's end and the next one's start), at a topic shift (a
final that opens with a transition such as "Now,", "Moving on", "Let's turn to", "Next," once the
paragraph has `MIN_WORDS`), and past `MAX_WORDS`. The answer is the segment numbers of each
paragraph, in order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from shared.messages import TranscriptEvent

PAUSE_S = 2.5
MIN_WORDS = 25
MAX_WORDS = 160
TOPIC_SHIFT = re.compile(
    r"^(?:now|next|okay so|ok so|alright|all right|moving on|let's (?:turn|move on|move|talk|look|switch)|"
    r"let us (?:turn|move|talk|look)|turning to|in summary|to summarize|to sum up|another (?:topic|thing|point)|"
    r"the next (?:topic|thing|part|section)|on to|so today|today we)\b",
    re.IGNORECASE,
)


def paragraphs(finals: Sequence[TranscriptEvent]) -> list[list[int]]:
    """Segment numbers grouped into paragraphs (finals in segment order, empty ones skipped)."""
    out: list[list[int]] = []
    words = 0
    prev: TranscriptEvent | None = None
    for f in finals:
        if not f.text.strip():
            continue
        n = len(f.text.split())
        shift = bool(TOPIC_SHIFT.match(f.text.strip().lstrip("\"'(")))
        if (
            prev is None
            or f.start - prev.end >= PAUSE_S
            or words + n > MAX_WORDS
            or (shift and words >= MIN_WORDS)
        ):
            out.append([])
            words = 0
        out[-1].append(f.segment)
        words += n
        prev = f
    return out
