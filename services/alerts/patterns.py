"""The detector's pattern tables: trigger patterns per category, cues, vetoes, sentence shapes, titles.

Only data lives here (compiled regular expressions and small lookup tables); `rules` reads them to
classify one sentence, `detector` to split, hold and join sentences across segments. See the
`detector` module docstring for what the triggers, cues and vetoes mean together.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.alerts.dates import DUE_TARGET, MOVE_TARGET

NEGATIONS = {"no", "not", "never", "without", "nor"}
DATE_FOCUS = {"schedule": MOVE_TARGET, "deadline": DUE_TARGET}  # which date a category is about
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

CUE = re.compile(
    r"\b(?:will|going to|gonna|remember|reminder|heads up|make sure|please|need to|needs to|have to|"
    r"has to|must|should|your|we have|you have|there is a|there is an|next|upcoming|coming up|this week|"
    r"covers?|open book|closed book|cumulative|for homework|posted|up on|available|assigning|assigned|"
    r"read (?:pages?|chapters?|sections?))\b|'ll\b|'s (?:a|an)\b"
)
NARRATIVE = re.compile(
    r"\bin the (?:story|novel|book|film|movie|play|poem|example|experiment|study)\b|\bthe (?:narrator|character)\b"
)
PAST_REF = re.compile(
    r"\blast (?:week|year|semester|term|time|class|lecture|monday|tuesday|wednesday|thursday|friday|saturday|"
    r"sunday)\b|\byesterday\b|\bago\b"
)
DANGLING = re.compile(
    r"\b(?:on|by|at|is|are|be|will|the|a|an|for|until|till|to|due|of|and|or|in|before|after|that|your|our|"
    r"next|this|has|have|from|than|about|with|as|no|not|never|any|there|it|we|you|i|also|just|um|uh|so|but)"
    r"\s*[,-]?\s*$"
)
TERMINAL = re.compile(r"[.!?][\"')\]]*\s*$")
SENTENCE_SPLIT = re.compile(r"(?<!\ba\.m\.)(?<!\bp\.m\.)(?<!\bDr\.)(?<!\bMr\.)(?<!\bMs\.)(?<=[.!?])\s+")
DATE_START = re.compile(
    r"^(?:january|february|march|april|may|june|july|august|september|october|november|december|monday|"
    r"tuesday|wednesday|thursday|friday|saturday|sunday|tomorrow|today|tonight|next|this|the \d|\d|in \d)\b"
)


EXAM_LABELS = {"midterm": "Midterm exam", "final": "Final exam", "exam": "Exam", "test": "Test"}
SCHEDULE_LABELS = {
    "cancel": "{} cancelled",
    "move": "{} moved",
    "room": "Room change",
    "office": "Office hours",
    "noclass": "No {}",
    "change": "{} changed",
}
EVENT_NOUN = re.compile(rf"\b(office hours|review session|midterm|final|exam|quiz|{_EVENT_WORDS})\b")
