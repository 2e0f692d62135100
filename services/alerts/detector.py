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
  7. custom     - a session keyword, when no built-in category matched.

Across segments: the last sentence of a segment that has no final punctuation and either ends in
a dangling word ("... will be on") or has a trigger but no date is held back and read together
with the start of the next segment, so the announcement is found once, dated, and attributed to
the segment where it began.  `flush()` releases a held sentence at the end of a session.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from services.alerts.dates import DUE_TARGET, MOVE_TARGET, normalize, resolve
from shared.messages import AlertEvent

DEDUP_WINDOW = 3  # segments within which a restatement (same category and date) is not re-alerted
MAX_PENDING_WORDS = 40
MAX_JOIN_GAP = 2  # a held sentence joins the next non-empty segment if at most this many segments later
_NEGATIONS = {"no", "not", "never", "without", "nor"}
_DATE_FOCUS = {"schedule": MOVE_TARGET, "deadline": DUE_TARGET}  # which date a category is about
_NOT_EVENT = (
    r"(?!\s+(?:scores?|grades?|results?|questions?|averages?|distributions?|statistics|elections?)\b)"
)


@dataclass(frozen=True)
class Trigger:
    """One trigger pattern: its category, kind (for precedence and titles) and strength."""

    category: str
    kind: str
    pattern: re.Pattern[str]
    strong: bool
    negatable: bool = True


def _t(category: str, kind: str, pattern: str, strong: bool = True, negatable: bool = True) -> Trigger:
    return Trigger(category, kind, re.compile(pattern), strong, negatable)


_TEST_MOD = (
    r"(?:\d+(?:st|nd|rd|th)|next|unit|chapter \d+|practice|makeup|make up|written|in class|big|short|last)"
)
_TEST_NOT_FOLLOWED = (
    r"of|for|statistics?|tubes?|cases?|results?|suite|whether|that|with|scores?|subjects?|set|data|"
    r"drive|pilot|run|site|bench|strips?|particles?|taker|takers|anxiety"
)
_EVENT_WORDS = "class|classes|lecture|lectures|lab|labs|section|recitation|tutorial|discussion|seminar"
_EVENT = f"(?:{_EVENT_WORDS})"

TRIGGERS: tuple[Trigger, ...] = (
    _t("schedule", "cancel", r"\bcancel(?:led|s|lation|ling)?\b(?! out\b)"),
    _t(
        "schedule", "move", r"\b(?:postpone[ds]?|postponing|reschedul(?:e|ed|es|ing)|pushed back|push back)\b"
    ),
    _t(
        "schedule",
        "room",
        r"\broom change\b|\broom (?:has |is )?changed\b|\bnew room\b|\bchange of room\b"
        r"|\bin room \w+ instead\b|\bmeet in room\b|\bdifferent room\b",
    ),
    _t("schedule", "office", r"\boffice hours?\b"),
    _t(
        "schedule",
        "noclass",
        rf"\b(?:no|not (?:have|hold|meet for|be having|be holding)) (?:any )?{_EVENT}\b"
        r"|\bwill not (?:be )?meet(?:ing)?\b",
        strong=False,
        negatable=False,
    ),
    _t(
        "schedule",
        "move",
        r"\b(?:moved|moving|shifted|switched)\b(?:\s+\S+){0,3}?\s+(?:to|from)\b",
        strong=False,
    ),
    _t(
        "schedule",
        "change",
        rf"\b(?:{_EVENT_WORDS}|exam|quiz|midterm|office hours|we will meet)\b.*"
        r"\b(?:instead|online|on zoom|remote(?:ly)?)\b",
        strong=False,
    ),
    _t("exam", "midterm", rf"\bmid ?terms?\b{_NOT_EVENT}"),
    _t("exam", "final", rf"\bfinal exams?\b{_NOT_EVENT}|\bfinals\b"),
    _t("exam", "exam", rf"\b(?:exams?|examinations?)\b(?! rooms?\b| of\b){_NOT_EVENT}"),
    _t("exam", "test", r"\b(?:be|get|getting|being) tested on\b"),
    _t(
        "exam",
        "test",
        rf"\b(?:the|a|an|our|your|this|that|another)\s+(?:{_TEST_MOD}\s+)?tests?\b"
        rf"(?!\s+(?:{_TEST_NOT_FOLLOWED})\b)|\btest \d+\b",
        strong=False,
    ),
    _t(
        "exam",
        "final",
        r"\b(?:the|your|our|a) final\b(?=\s+(?:is|will|exam|'s|has|on|covers|and)\b|\s*[,.;!?]|\s*$)",
        strong=False,
    ),
    _t("quiz", "quiz", rf"\b(?:pop )?quiz(?:zes|es)?\b(?! shows?\b){_NOT_EVENT}"),
    _t("deadline", "due", r"\bdue\b(?!\s+(?:to|diligence|process|course|respect|care|regard)\b)"),
    _t("deadline", "due", r"\bdeadlines?\b|\blate (?:submissions?|penalty|work)\b"),
    _t("deadline", "submit", r"\b(?:submi(?:t|ts|tted|tting|ssions?)|upload(?:ed)?)\b", strong=False),
    _t(
        "deadline",
        "submit",
        r"(?<!the )(?<!a )\b(?:turn|turns|turned|turning|hand|hands|handed|handing)\s+"
        r"(?:(?:it|them|this|that|these|those|everything|(?:your|the|in) \w+(?: \w+)?)\s+)?in\b",
        strong=False,
    ),
    _t("assignment", "homework", r"\bhomeworks?\b"),
    _t("assignment", "problem set", r"\bproblem sets?\b|\bpsets?\b"),
    _t("assignment", "worksheet", r"\bworksheets?\b"),
    _t("assignment", "lab report", r"\blab reports?\b|\blab write ?ups?\b"),
    _t(
        "assignment",
        "assignment",
        r"\bassignments?\b(?!\s+(?:operator|statements?|of|that|problem)\b)"
        r"|\bassign(?:ing|ed)\b",
    ),
    _t("assignment", "reading", r"\bread (?:pages?|chapters?|sections?|the article|the paper)\b"),
    _t("assignment", "essay", r"\bessays?\b(?! tests?\b)", strong=False),
    _t("assignment", "project", r"\bprojects?\b(?! managers?\b)", strong=False),
    _t("assignment", "reading", r"\breadings?\b(?! frames?\b)", strong=False),
    _t("assignment", "paper", r"\b(?:term|research|position|final) papers?\b|\bwrite ups?\b", strong=False),
)

_CUE = re.compile(
    r"\b(?:will|going to|gonna|remember|reminder|heads up|make sure|please|need to|needs to|have to|"
    r"has to|must|should|your|we have|you have|there is a|there is an|next|upcoming|coming up|this week|"
    r"covers?|open book|closed book|cumulative|for homework|posted|up on|available|assigning|assigned|"
    r"read (?:pages?|chapters?|sections?))\b|'ll\b|'s (?:a|an)\b"
)
_NARRATIVE = re.compile(
    r"\bin the (?:story|novel|book|film|movie|play|poem|example|experiment|study)\b|\bthe (?:narrator|character)\b"
)
_PAST_REF = re.compile(
    r"\blast (?:week|year|semester|term|time|class|lecture|monday|tuesday|wednesday|thursday|friday|saturday|"
    r"sunday)\b|\byesterday\b|\bago\b"
)
_DANGLING = re.compile(
    r"\b(?:on|by|at|is|are|be|will|the|a|an|for|until|till|to|due|of|and|or|in|before|after|that|your|our|"
    r"next|this|has|have|from|than|about|with|as|no|not|never|any|there|it|we|you|i|also|just|um|uh|so|but)"
    r"\s*[,-]?\s*$"
)
_TERMINAL = re.compile(r"[.!?][\"')\]]*\s*$")
_SENTENCE_SPLIT = re.compile(r"(?<!\ba\.m\.)(?<!\bp\.m\.)(?<!\bDr\.)(?<!\bMr\.)(?<!\bMs\.)(?<=[.!?])\s+")
_DATE_START = re.compile(
    r"^(?:january|february|march|april|may|june|july|august|september|october|november|december|monday|"
    r"tuesday|wednesday|thursday|friday|saturday|sunday|tomorrow|today|tonight|next|this|the \d|\d|in \d)\b"
)


# --- one sentence -------------------------------------------------------------------------------


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


def _negated(norm: str, start: int) -> bool:
    """A negation among the three words before position `start`."""
    return any(w in _NEGATIONS for w in re.findall(r"[a-z']+", norm[:start])[-3:])


def find_hits(norm: str) -> list[Hit]:
    """The first match of each trigger that is not negated, in TRIGGERS order."""
    hits = []
    for trig in TRIGGERS:
        for m in trig.pattern.finditer(norm):
            if not (trig.negatable and _negated(norm, m.start())):
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
    ):
        hit = first(category, kind)
        if hit:
            return category, hit
    return None


def _vetoed(norm: str, has_date: bool, historical: bool) -> bool:
    """Sentence-level vetoes: history, narrative, or a past reference without a date."""
    return historical or bool(_NARRATIVE.search(norm)) or (bool(_PAST_REF.search(norm)) and not has_date)


def _anchored(hit: Hit, norm: str, has_when: bool) -> bool:
    """A strong trigger needs a date, a time or a cue; a weak one a date or a time."""
    return has_when or (hit.trigger.strong and bool(_CUE.search(norm)))


def classify(norm: str, today: date, keywords: Sequence[tuple[str, re.Pattern[str]]] = ()) -> Finding | None:
    """The announcement in one normalised sentence, or None."""
    hits = find_hits(norm)
    custom = next(
        (k for k, pat in keywords if (m := pat.search(norm)) and not _negated(norm, m.start())), None
    )
    if not hits and custom is None:
        return None
    when = resolve(norm, today)
    has_when = bool(when.dates) or when.time is not None
    if hits and not _vetoed(norm, bool(when.dates), when.historical):
        chosen = choose([h for h in hits if _anchored(h, norm, has_when)])
        if chosen:
            category, hit = chosen
            day = when.pick(norm, _DATE_FOCUS.get(category))
            return Finding(category, _label(category, hit, hits, norm), day, when.time)
    if custom is not None:
        return Finding("custom", custom[:1].upper() + custom[1:], when.pick(norm), when.time)
    return None


# --- titles -------------------------------------------------------------------------------------

_EXAM_LABELS = {"midterm": "Midterm exam", "final": "Final exam", "exam": "Exam", "test": "Test"}
_SCHEDULE_LABELS = {
    "cancel": "{} cancelled",
    "move": "{} moved",
    "room": "Room change",
    "office": "Office hours",
    "noclass": "No {}",
    "change": "{} changed",
}
_EVENT_NOUN = re.compile(rf"\b(office hours|review session|midterm|final|exam|quiz|{_EVENT_WORDS})\b")


def _numbered(name: str, norm: str, at: int) -> str:
    """'Problem set 5' when the noun is followed by a number in the sentence."""
    m = re.compile(rf"{re.escape(name)}s? (\d+)\b").search(norm, at)
    return f"{name} {m.group(1)}".capitalize() if m else name.capitalize()


def _label(category: str, hit: Hit, hits: list[Hit], norm: str) -> str:
    """A short human title for the announcement, without the date."""
    kind = hit.trigger.kind
    if category == "exam":
        return _EXAM_LABELS[kind]
    if category == "quiz":
        return _numbered("pop quiz" if hit.text.startswith("pop") else "quiz", norm, hit.start)
    if category == "schedule":
        kind = "move" if any(h.trigger.kind == "move" for h in hits) else kind  # the date is the new one
        event = _EVENT_NOUN.search(norm)
        noun = re.sub(r"(?<=[^s])s$", "", event.group(1)) if event else "class"
        return _SCHEDULE_LABELS[kind].format(noun).capitalize()
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


# --- the per-session detector --------------------------------------------------------------------


def split_sentences(text: str) -> list[str]:
    """Sentences of a transcript segment (keeps 'a.m.', decimals and initials together)."""
    return [s.strip() for s in _SENTENCE_SPLIT.split(text.strip()) if s.strip()]


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


@dataclass
class _Memory:
    """What the detector remembers between segments."""

    pending: _Unit | None = None
    recent: list[dict[str, Any]] = field(default_factory=list)
    last_segment: int = -1


class Detector:
    """Per-session announcement detector; holds the little state needed across segments."""

    def __init__(self, keywords: Sequence[str] = (), now: datetime | None = None, tz: str | None = None):
        self.tz = tz if _zone(tz) else None
        self.now = _session_now(now, tz)
        self.keywords = [k.strip() for k in keywords if k and k.strip()]
        self._keyword_res = [
            (k, re.compile(rf"(?<!\w){re.escape(normalize(k))}(?!\w)")) for k in self.keywords
        ]
        self._mem = _Memory()

    # -- public --------------------------------------------------------------------------------

    def feed(self, segment: int, start: float, text: str) -> list[AlertEvent]:
        """Alerts for one final transcript segment (segments in order; a replayed one is ignored)."""
        if segment <= self._mem.last_segment:
            return []
        self._mem.last_segment = segment
        if not text.strip():
            return []
        units = [_Unit(segment, start, s) for s in split_sentences(text)]
        units = self._join_pending(segment, units)
        if units and self._should_hold(units[-1].text):
            self._mem.pending = units.pop()
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
            "pending": vars(pending).copy() if pending else None,
            "recent": [dict(r) for r in self._mem.recent],
            "last_segment": self._mem.last_segment,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Detector:
        """A detector that continues where the one that produced `state` stopped."""
        det = cls(state.get("keywords", []), datetime.fromisoformat(state["now"]), state.get("tz"))
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
        if units and segment - pending.segment <= MAX_JOIN_GAP and _continues(pending.text, units[0].text):
            units[0] = _Unit(pending.segment, pending.start, f"{pending.text} {units[0].text}")
            return units
        return [pending, *units]

    def _should_hold(self, sentence: str) -> bool:
        """An unfinished last sentence: no final punctuation, and dangling or a trigger without a date."""
        if _TERMINAL.search(sentence) or len(sentence.split()) > MAX_PENDING_WORDS:
            return False
        norm = normalize(sentence)
        if _DANGLING.search(norm):
            return True
        return bool(find_hits(norm)) and not resolve(norm, self.now.date()).dates

    def _alerts(self, units: list[_Unit]) -> list[AlertEvent]:
        events = []
        for unit in units:
            finding = classify(normalize(unit.text), self.now.date(), self._keyword_res)
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
            and (finding.category != "custom" or r["label"] == finding.label)
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
    if _DANGLING.search(normalize(held)):
        return True
    first = following.lstrip()
    return bool(first) and (first[0].islower() or bool(_DATE_START.search(normalize(first))))


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
