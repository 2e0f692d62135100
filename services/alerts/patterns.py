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
    """One trigger pattern: its category, kind (for precedence and titles) and strength.

    `anchor`, when set, replaces `CUE` as what anchors a strong trigger without a date or time;
    `standalone` triggers are announcements by themselves ("roll call", "this is important").
    """

    category: str
    kind: str
    pattern: re.Pattern[str]
    strong: bool
    negatable: bool = True
    standalone: bool = False
    anchor: re.Pattern[str] | None = None


def _t(
    category: str,
    kind: str,
    pattern: str,
    strong: bool = True,
    negatable: bool = True,
    standalone: bool = False,
    anchor: re.Pattern[str] | None = None,
) -> Trigger:
    return Trigger(category, kind, re.compile(pattern), strong, negatable, standalone, anchor)


_TEST_MOD = (
    r"(?:\d+(?:st|nd|rd|th)|next|unit|chapter \d+|practice|makeup|make up|written|in class|big|short|last)"
)
_TEST_NOT_FOLLOWED = (
    r"of|for|statistics?|tubes?|cases?|results?|suite|whether|that|with|scores?|subjects?|set|data|"
    r"drive|pilot|run|site|bench|strips?|particles?|taker|takers|anxiety"
)
_EVENT_WORDS = "class|classes|lecture|lectures|lab|labs|section|recitation|tutorial|discussion|seminar"
_EVENT = f"(?:{_EVENT_WORDS})"

# --- what the lecturer wants remembered, and roll call ------------------------------------------
# Both are said about the class itself ("I'm taking attendance", "remember this"), so their patterns
# need the deixis or the first person that content about attendance or memory does not have
# ("attendance fell", "people remember this kind of list", "an important enzyme").

_EMPH = r"(?:(?:really|very|super|extremely|so|particularly|especially|quite|incredibly|hugely) )?"
_IMPERATIVE = (  # what may come right before an imperative "remember this" / "write this down"
    r"(?:^|(?<=[,;:!?.] )|\b(?:so|and|okay|ok|now|please|should|need to|have to|must|got to|"
    r"make sure (?:you|to)|want you to|try to|be sure to|really|definitely|just|everyone|guys)\s+)"
)
_ATTEND_CUE = re.compile(
    r"\b(?:i am|i'm|i'll|i will|let me|let's|we will|we'll|we are|we're|going to|gonna|now|today|"
    r"please|first|quickly|quick|before we|start(?:ing)? (?:by|with)|this morning|this afternoon)\b"
)
_ATTENDANCE: tuple[Trigger, ...] = (
    _t(
        "attendance",
        "attendance",
        r"\b(?:take|takes|taking|do|doing|check|checking|record|recording)\s+"
        r"(?:the |today's |your |some )?(?:attendance|roll)\b(?! of\b)",
        anchor=_ATTEND_CUE,
    ),
    _t(
        "attendance",
        "attendance",
        r"\battendance (?:is|will be|is being|gets|will get|counts|is going to be) "
        r"(?:taken|checked|recorded|mandatory|required|compulsory|counted|part of your grade)\b"
        r"|\battendance (?:counts?|will count|is part of|is \d+ percent of) (?:toward|towards|for|of)? ?(?:your|the)\b",
        standalone=True,
    ),
    _t("attendance", "roll", r"\broll call\b(?! votes?\b)|\bcall(?:ing)? (?:the )?roll\b", standalone=True),
    _t(
        "attendance",
        "sheet",
        r"\b(?:sign in|sign up|attendance) (?:sheets?|lists?|forms?)\b|\bsign (?:the|this) (?:sheet|list)\b",
        standalone=True,
    ),
)
_IMPORTANT: tuple[Trigger, ...] = (
    _t(
        "important",
        "important",
        rf"\b(?:this|that|this part|this (?:one|1)|this bit|this slide|the next part|what comes next|"
        rf"the following) (?:is|will be) (?!not\b){_EMPH}(?:important|crucial|critical|essential)\b"
        r"|\bthis is (?:an? |the )?(?:really |very |most |super )?(?:important|crucial|critical) "
        r"(?:point|one|thing|idea|concept|part|result|formula|equation|slide|step|distinction|definition|"
        r"takeaway|lesson)\b"
        rf"|\bit(?: is|'s) {_EMPH}(?:important|crucial|essential) (?:that you|for you to|that everyone)\b"
        r"|\bthe (?:single )?most important (?:thing|point|idea|part|takeaway|lesson) "
        r"(?:to remember|to take away|you (?:need|should|have)|for you|today|of today|in this (?:lecture|course))\b",
        standalone=True,
    ),
    _t(
        "important",
        "remember",
        rf"{_IMPERATIVE}remember (?:this|these)\b"
        r"(?=\s*(?:[.,;:!?]|$|(?:one|1|part|formula|equation|point|definition|rule|result|slide|idea|step|"
        r"trick|fact|method|concept|word|term|diagram|graph|number|date|name|identity|proof|bit)s?\b|"
        r"(?:for|because|when|please|everyone|well|carefully|going forward|too|as|if|and|it|now|okay)\b))"
        rf"|{_IMPERATIVE}(?:write|jot|note) (?:this|that|these) down\b",
        standalone=True,
    ),
    _t(
        "important",
        "key",
        r"(?<!\bhis )(?<!\bher )(?<!\bits )(?<!\btheir )\bkey (?:point|takeaway|idea|thing|message|concept)s?\b"
        r"(?= (?:here|is|are|today|to remember|to take away|for you|for today|of today|of this "
        r"(?:lecture|class|section|chapter|course)|number|for the)\b|\s*[:,.!?;]|\s*$)",
        standalone=True,
    ),
    _t(
        "important",
        "attention",
        r"\bpay (?:close |special |careful |extra |particular )?attention\b"
        r"(?= (?:to (?:this|that|these|the next|what|how|here)|here|now|everyone|please)\b|\s*[.,!?;:]|\s*$)",
        standalone=True,
    ),
)

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
    # "due" as Whisper mishears it in a hall ("the lab report is do on Thursday"): only where the
    # homophone cannot be the verb.
    _t("deadline", "due", r"\b(?:is|are)\s+(?:do|dew)\s+(?:on|by|before|tomorrow|tonight|today|this|next)\b"),
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
    *_ATTENDANCE,
    *_IMPORTANT,
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
# Attendance and emphasis are about this class: told in the past with nobody addressed ("roll call in
# the Roman legion was held at dawn") they are history, not an announcement.
PAST_NARRATION = re.compile(r"\b(?:was|were|had been|used to)\b")
PERSONAL = re.compile(r"\b(?:i|i'm|i'll|we|we'll|we're|let's|you|you'll|you're|your|our|us|please)\b")
ABOUT_THIS_CLASS = ("attendance", "important")

OTHER_LABELS = {
    "attendance": "Attendance",
    "roll": "Roll call",
    "sheet": "Sign-in sheet",
    "important": "Important",
    "remember": "Remember this",
    "key": "Key point",
    "attention": "Pay attention",
}
EVENT_NOUN = re.compile(rf"\b(office hours|review session|midterm|final|exam|quiz|{_EVENT_WORDS})\b")
