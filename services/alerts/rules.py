"""One sentence: its triggers, the winning category, vetoes, anchoring, and the alert's title.

`classify(norm, today, keywords)` is the whole rule set for one normalised sentence (the tables are
in `patterns`); `label` and `title` make the short human title of a finding.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from services.alerts.dates import resolve
from services.alerts.patterns import (
    ABOUT_THIS_CLASS,
    CUE,
    DATE_FOCUS,
    EVENT_NOUN,
    EXAM_LABELS,
    NARRATIVE,
    NEGATIONS,
    OTHER_LABELS,
    PAST_NARRATION,
    PAST_REF,
    PERSONAL,
    SCHEDULE_LABELS,
    SENTENCE_SPLIT,
    TRIGGERS,
    Trigger,
)


@dataclass(frozen=True)
class Hit:
    """A trigger found in a normalised sentence."""

    trigger: Trigger
    start: int
    text: str


@dataclass(frozen=True)
class Finding:
    """What one sentence announces."""

    category: str
    label: str
    date: date | None
    time: str | None


def negated(norm: str, start: int) -> bool:
    """A negation among the three words before position `start`."""
    return any(w in NEGATIONS for w in re.findall(r"[a-z']+", norm[:start])[-3:])


def find_hits(norm: str) -> list[Hit]:
    """The first match of each trigger that is not negated, in TRIGGERS order."""
    hits = []
    for trig in TRIGGERS:
        for m in trig.pattern.finditer(norm):
            if not (trig.negatable and negated(norm, m.start())):
                hits.append(Hit(trig, m.start(), m.group(0)))
                break
    return hits


def choose(hits: list[Hit]) -> tuple[str, Hit] | None:
    """The winning category and trigger (see the module docstring for the precedence)."""

    def first(category: str, kind: str | None = None) -> Hit | None:
        found = [h for h in hits if h.trigger.category == category and kind in (None, h.trigger.kind)]
        return min(found, key=lambda h: h.start) if found else None

    for category, kind in (
        ("schedule", None),
        ("exam", None),
        ("quiz", None),
        ("deadline", "due"),
        ("assignment", None),
        ("deadline", None),
        ("attendance", None),
        ("important", None),
    ):
        hit = first(category, kind)
        if hit:
            return category, hit
    return None


def _vetoed(norm: str, has_date: bool, historical: bool) -> bool:
    """Sentence-level vetoes: history, narrative, or a past reference without a date."""
    return historical or bool(NARRATIVE.search(norm)) or (bool(PAST_REF.search(norm)) and not has_date)


def _anchored(hit: Hit, norm: str, has_when: bool) -> bool:
    """A strong trigger needs a date, a time or a cue (its own anchor if it has one); a weak one a date
    or a time; a standalone one nothing."""
    trig = hit.trigger
    return trig.standalone or has_when or (trig.strong and bool((trig.anchor or CUE).search(norm)))


def classify(norm: str, today: date, keywords: Sequence[tuple[str, re.Pattern[str]]] = ()) -> Finding | None:
    """The announcement in one normalised sentence, or None."""
    hits = find_hits(norm)
    custom = next(
        (k for k, pat in keywords if (m := pat.search(norm)) and not negated(norm, m.start())), None
    )
    if not hits and custom is None:
        return None
    when = resolve(norm, today)
    has_when = bool(when.dates) or when.time is not None
    if PAST_NARRATION.search(norm) and not PERSONAL.search(norm):
        hits = [h for h in hits if h.trigger.category not in ABOUT_THIS_CLASS]
    if hits and not _vetoed(norm, bool(when.dates), when.historical):
        chosen = choose([h for h in hits if _anchored(h, norm, has_when)])
        if chosen:
            category, hit = chosen
            day = when.pick(norm, DATE_FOCUS.get(category))
            return Finding(category, label(category, hit, hits, norm), day, when.time)
    if custom is not None:
        return Finding("custom", custom[:1].upper() + custom[1:], when.pick(norm), when.time)
    return None


def _numbered(name: str, norm: str, at: int) -> str:
    """'Problem set 5' when the noun is followed by a number in the sentence."""
    m = re.compile(rf"{re.escape(name)}s? (\d+)\b").search(norm, at)
    return f"{name} {m.group(1)}".capitalize() if m else name.capitalize()


def label(category: str, hit: Hit, hits: list[Hit], norm: str) -> str:
    """A short human title for the announcement, without the date."""
    kind = hit.trigger.kind
    if category in ("attendance", "important"):
        return OTHER_LABELS[kind]
    if category == "exam":
        return EXAM_LABELS[kind]
    if category == "quiz":
        return _numbered("pop quiz" if hit.text.startswith("pop") else "quiz", norm, hit.start)
    if category == "schedule":
        kind = "move" if any(h.trigger.kind == "move" for h in hits) else kind  # the date is the new one
        event = EVENT_NOUN.search(norm)
        noun = re.sub(r"(?<=[^s])s$", "", event.group(1)) if event else "class"
        return SCHEDULE_LABELS[kind].format(noun).capitalize()
    nouns = [h for h in hits if h.trigger.category == "assignment"]
    if category == "assignment":
        return _numbered(hit.trigger.kind, norm, hit.start)
    return f"{_numbered(nouns[0].trigger.kind, norm, nouns[0].start)} due" if nouns else "Deadline"


def title(finding: Finding) -> str:
    """'Midterm exam — Sat 14 Mar', 'Essay due — Fri 6 Mar, 17:00', 'Quiz'."""
    when = []
    if finding.date:
        when.append(f"{finding.date:%a} {finding.date.day} {finding.date:%b}")
    if finding.time:
        when.append(finding.time)
    return f"{finding.label} — {', '.join(when)}" if when else finding.label


def split_sentences(text: str) -> list[str]:
    """Sentences of a transcript segment (keeps 'a.m.', decimals and initials together)."""
    return [s.strip() for s in SENTENCE_SPLIT.split(text.strip()) if s.strip()]
