"""Announcement detector: finds exams, quizzes, deadlines, assignments and schedule changes in text.

The alerts worker makes one `Detector` per session and feeds it every final transcript segment in
order.  Each sentence is normalised (`dates.normalize`), matched against trigger patterns, checked
for vetoes and for evidence that it is an announcement, given one category, resolved to a date and
time, and de-duplicated against the alerts of the last few segments.

Triggers are *strong* (quiz, exam, midterm, homework, problem set, lab report, due, deadline,
cancelled, office hours ...) or *weak* (test, "the final", essay, project, reading, submit/turn
in/hand in, moved to, no class, instead).  A strong trigger alerts when the sentence has a date, a
time or an announcement cue ("will", "your", "remember", "please", "next", "covers" ...); a weak
trigger needs a date or a time.  Custom keywords alert on any mention.

Vetoes: a negation in the three words before the trigger ("no quiz", "will not be a quiz"), a year
before the current one ("in 1066"), a narrative frame ("in the story", "in the example"), a past
reference ("last week", "yesterday") with no date, and technical collocations excluded in the
patterns themselves ("test statistic", "final answer", "due to", "quiz show", "cancel out" ...).

Category precedence when a sentence has triggers of several categories (one alert per sentence):
  1. schedule   - a change to an event wins: "the midterm is moved to Friday", "quiz cancelled";
  2. exam       - "the final exam ... quiz" is an exam;
  3. quiz;
  4. deadline   - "due", "deadline", "late submissions": "the lab report is due Thursday";
  5. assignment - an assignment noun, also with submit/turn in/hand in: "problem set 5 has to be
                  turned in by Sunday", "I'll post the essay prompt";
  6. deadline   - submit/turn in/hand in without an assignment noun: "submit your answers by 5";
  7. attendance - taking attendance, roll call, a sign-in sheet (said about this class: "I'm taking
                  attendance", not "attendance fell in the 1990s");
  8. important  - "this is important", "remember this", "key point", "pay attention to this"
                  ("this will be on the exam" stays an exam);
  9. custom     - a session keyword, when no built-in category matched.
Besides that one alert, a sentence in which one of the student's `names` is said also raises a
`name` alert (`names.NameSpotter`).

Across segments: the last sentence of a segment that has no final punctuation and either ends in
a dangling word ("... will be on") or has a trigger but no date is held back and read together
with the start of the next segment, so the announcement is found once, dated, and attributed to
the segment where it began.  `flush()` releases a held sentence at the end of a session.

Layout: the pattern tables are in `patterns`, the rules for one sentence (`classify`, titles) in
`rules`, and this module keeps the per-session part. `Detector.decide(sentence)` is the one hook a
subclass replaces to decide sentences another way (the LLM classifier in `llm`); splitting, holding,
joining and de-duplication stay the detector's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from services.alerts.dates import normalize, resolve
from services.alerts.names import NameSpotter
from services.alerts.patterns import DANGLING, DATE_START, TERMINAL
from services.alerts.rules import Finding, classify, find_hits, split_sentences, title
from shared.messages import AlertEvent

__all__ = ["Detector", "Finding", "classify", "find_hits", "split_sentences", "title"]

DEDUP_WINDOW = 3  # segments within which a restatement (same category and date) is not re-alerted
MAX_PENDING_WORDS = 40
MAX_JOIN_GAP = 2  # a held sentence joins the next non-empty segment if at most this many segments later


def _zone(tz: str | None) -> ZoneInfo | None:
    """The named zone, or None for no name or an unknown one (then server local time is used)."""
    try:
        return ZoneInfo(tz) if tz else None
    except (KeyError, ValueError):
        return None


def _session_now(now: datetime | None, tz: str | None) -> datetime:
    """The session's start as an aware datetime in its zone (an unknown zone means server local)."""
    zone = _zone(tz)
    if now is None:
        return datetime.now(zone) if zone else datetime.now().astimezone()
    if now.tzinfo is None:
        return now.replace(tzinfo=zone) if zone else now.astimezone()
    return now.astimezone(zone) if zone else now


@dataclass
class _Unit:
    """A sentence to classify, with the segment and start time it is attributed to."""

    segment: int
    start: float
    text: str
    continues: bool = False  # held from a final that may go on in the next one (a short pause)


@dataclass
class _Memory:
    """What the detector remembers between segments."""

    pending: _Unit | None = None
    recent: list[dict[str, Any]] = field(default_factory=list)
    last_segment: int = -1


class Detector:
    """Per-session announcement detector; holds the little state needed across segments."""

    def __init__(
        self,
        keywords: Sequence[str] = (),
        now: datetime | None = None,
        tz: str | None = None,
        names: Sequence[str] = (),
    ):
        self.tz = tz if _zone(tz) else None
        self.now = _session_now(now, tz)
        self.keywords = [k.strip() for k in keywords if k and k.strip()]
        self._keyword_res = [
            (k, re.compile(rf"(?<!\w){re.escape(normalize(k))}(?!\w)")) for k in self.keywords
        ]
        self.spotter = NameSpotter(names)
        self._mem = _Memory()

    # -- public --------------------------------------------------------------------------------

    def feed(self, segment: int, start: float, text: str, continues: bool = False) -> list[AlertEvent]:
        """Alerts for one final transcript segment (segments in order; a replayed one is ignored).
        `continues`: the speaker went on after a short pause that closed this segment (run-on speech),
        so its last sentence may go on in the next segment although Whisper ended it with a period
        ("The midterm." + "Is on March 3rd.")."""
        if segment <= self._mem.last_segment:
            return []
        self._mem.last_segment = segment
        if not text.strip():
            return []
        units = [_Unit(segment, start, s) for s in split_sentences(text)]
        units = self._join_pending(segment, units)
        if units and self._should_hold(units[-1].text, continues):
            self._mem.pending = units.pop()
            self._mem.pending.continues = continues
        return self._alerts(units)

    def flush(self) -> list[AlertEvent]:
        """Alerts for a sentence still held back at the end of the session."""
        units = [self._mem.pending] if self._mem.pending else []
        self._mem.pending = None
        return self._alerts(units)

    def state(self) -> dict[str, Any]:
        """JSON-serialisable state, for a worker to checkpoint."""
        pending = self._mem.pending
        return {
            "version": 1,
            "now": self.now.isoformat(),
            "tz": self.tz,
            "keywords": list(self.keywords),
            "names": list(self.spotter.names),
            "pending": vars(pending).copy() if pending else None,
            "recent": [dict(r) for r in self._mem.recent],
            "last_segment": self._mem.last_segment,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Detector:
        """A detector that continues where the one that produced `state` stopped."""
        det = cls(
            state.get("keywords", []),
            datetime.fromisoformat(state["now"]),
            state.get("tz"),
            names=state.get("names", []),
        )
        pending = state.get("pending")
        det._mem = _Memory(
            pending=_Unit(**pending) if pending else None,
            recent=[dict(r) for r in state.get("recent", [])],
            last_segment=int(state.get("last_segment", -1)),
        )
        return det

    # -- internals -----------------------------------------------------------------------------

    def _join_pending(self, segment: int, units: list[_Unit]) -> list[_Unit]:
        """Prepend the held sentence: joined with the first new sentence if it continues there."""
        pending, self._mem.pending = self._mem.pending, None
        if pending is None:
            return units
        if (
            units
            and segment - pending.segment <= MAX_JOIN_GAP
            and (pending.continues or _continues(pending.text, units[0].text))
        ):
            units[0] = _Unit(pending.segment, pending.start, f"{pending.text} {units[0].text}")
            return units
        return [pending, *units]

    def _should_hold(self, sentence: str, continues: bool = False) -> bool:
        """An unfinished last sentence: no final punctuation (or the segment `continues`), and dangling
        or a trigger without a date."""
        if len(sentence.split()) > MAX_PENDING_WORDS or (TERMINAL.search(sentence) and not continues):
            return False
        norm = normalize(sentence)
        if DANGLING.search(norm):
            return True
        return bool(find_hits(norm)) and not resolve(norm, self.now.date()).dates

    def decide(self, sentence: str) -> Finding | None:
        """The announcement in one sentence, or None: the hook a subclass (the LLM classifier) overrides."""
        return classify(normalize(sentence), self.now.date(), self._keyword_res)

    def name_said(self, sentence: str) -> Finding | None:
        """A `name` finding when one of the student's names is said in the sentence."""
        name = self.spotter.find(sentence)
        return Finding("name", f"Your name: {name}", None, None) if name else None

    def _alerts(self, units: list[_Unit]) -> list[AlertEvent]:
        events = []
        for unit in units:
            for finding in (self.decide(unit.text), self.name_said(unit.text)):
                if finding and not self._is_repeat(unit.segment, finding):
                    self._remember(unit.segment, finding)
                    events.append(_event(unit, finding))
        return events

    def _is_repeat(self, segment: int, finding: Finding) -> bool:
        """Same category (and keyword) and same date, or no date, within the window."""
        iso = finding.date.isoformat() if finding.date else None
        return any(
            segment - r["segment"] <= DEDUP_WINDOW
            and r["category"] == finding.category
            and (finding.category not in ("custom", "name") or r["label"] == finding.label)
            and (iso is None or r["date"] == iso)
            for r in self._mem.recent
        )

    def _remember(self, segment: int, finding: Finding) -> None:
        iso = finding.date.isoformat() if finding.date else None
        recent = [r for r in self._mem.recent if segment - r["segment"] <= DEDUP_WINDOW]
        recent.append({"segment": segment, "category": finding.category, "label": finding.label, "date": iso})
        self._mem.recent = recent


def _continues(held: str, following: str) -> bool:
    """Whether `following` reads as the rest of the held sentence rather than a new one."""
    if DANGLING.search(normalize(held)):
        return True
    first = following.lstrip()
    return bool(first) and (first[0].islower() or bool(DATE_START.search(normalize(first))))


def _event(unit: _Unit, finding: Finding) -> AlertEvent:
    return AlertEvent(
        segment=unit.segment,
        start=unit.start,
        category=finding.category,  # type: ignore[arg-type]
        text=unit.text.strip(),
        date=finding.date.isoformat() if finding.date else None,
        time=finding.time,
        title=title(finding),
    )
