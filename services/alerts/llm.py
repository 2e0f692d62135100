"""Optional LLM classifier for announcements, behind the rules detector's interface.

Off by default (`ALERTS_LLM=1` turns it on). `make_detector(settings, keywords, now, tz)` returns
the rules `Detector`, or an `LLMDetector`: the same class of object (`feed`, `flush`, `state`,
`from_state`), with the same sentence splitting, cross-segment joining and de-duplication, but each
sentence that the rules flag *or* that contains a trigger word (any category's, or a session
keyword) is also put to a chat model on any OpenAI-compatible endpoint (`ALERTS_LLM_MODEL`,
`ALERTS_LLM_BASE_URL`, `ALERTS_LLM_API_KEY`, `ALERTS_LLM_TIMEOUT_S`). The model answers

    {"announcement": true|false, "category": "exam|quiz|deadline|assignment|schedule|custom"|null,
     "date": "YYYY-MM-DD"|null, "time": "HH:MM"|null}

and that answer decides: no alert when `announcement` is false, else an alert of its category, date
and time (titled with the rules' label when they found the same category). When the call fails,
times out (`ALERTS_LLM_TIMEOUT_S`, no retries) or the answer is not that JSON, the rules' answer is
used for that sentence. After `FAILURES_TO_OPEN` failures in a row the endpoint is left alone for
`COOLDOWN_S` seconds (rules only), so a dead endpoint costs one timeout per cooldown, not one per
sentence.

`feed` and `flush` call the endpoint synchronously (the `openai` sync client): from asyncio code,
call them through `asyncio.to_thread`. The state is the rules detector's state, so a session can be
resumed by either detector; `restore_detector(settings, state)` picks the one the settings ask for.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, get_args

import openai
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from services.alerts.dates import normalize
from services.alerts.detector import Detector
from services.alerts.patterns import TRIGGERS
from services.alerts.rules import Finding, classify, find_hits, label, negated
from shared.messages import AlertCategory
from shared.settings import AlertsSettings

log = logging.getLogger(__name__)

CATEGORIES: tuple[str, ...] = get_args(AlertCategory)
FAILURES_TO_OPEN = 3
COOLDOWN_S = 30.0
GENERIC_LABELS = {
    "exam": "Exam",
    "quiz": "Quiz",
    "deadline": "Deadline",
    "assignment": "Assignment",
    "schedule": "Schedule change",
    "attendance": "Attendance",
    "important": "Important",
}
# Words that send a sentence to the model even when the rules stay silent (on top of every trigger
# pattern of the rules, which excludes collocations such as "due to" that the model can judge).
_TRIGGER_WORDS = re.compile(
    r"\b(?:exams?|examinations?|mid ?terms?|finals?|tests?|quiz(?:zes)?|due|deadlines?|homeworks?|"
    r"assignments?|assign(?:ed|ing)?|problem sets?|psets?|worksheets?|reports?|essays?|projects?|"
    r"readings?|papers?|submi\w*|turn(?:ed|ing)? (?:\w+ )?in|hand(?:ed|ing)? (?:\w+ )?in|cancel\w*|"
    r"postpon\w*|reschedul\w*|moved?|room|office hours?|no (?:class|lecture|lab|section)|important|crucial|"
    r"remember|key|attention|attendance|roll|sign in)\b"
)
SYSTEM_PROMPT = """\
You read one sentence of a live university lecture transcript (speech recognition, so expect \
missing punctuation and misheard words) and decide whether the lecturer announces something a \
student must act on or put in a calendar.

Categories:
- "exam": an exam, midterm, final or test;
- "quiz": a quiz (also a pop quiz);
- "deadline": something is due or must be submitted by a date or time;
- "assignment": homework, a problem set, essay, project, lab report or reading is given;
- "schedule": a class or exam is cancelled, moved, rescheduled, online instead, in another room; \
office hours;
- "attendance": the lecturer takes attendance, calls the roll or passes a sign-in sheet;
- "important": the lecturer stresses that something is important, a key point, to remember or to \
pay attention to;
- "custom": the sentence is about one of the session's keywords and no other category fits.

Not announcements: negations ("there is no quiz this week"), the past ("last year's exam"), \
hypotheticals, examples and stories, and technical senses ("test statistic", "due to friction", \
"the final answer").

Resolve relative dates ("next Friday", "tomorrow", "in two weeks") against today's date given \
below. "date" is the date of the event or deadline, "time" its time of day in 24-hour HH:MM \
(midnight deadline: "23:59"); null when the sentence does not say.

Answer with only one JSON object, no prose:
{"announcement": true or false, "category": one of the categories or null, \
"date": "YYYY-MM-DD" or null, "time": "HH:MM" or null}"""


class Verdict(BaseModel):
    """The model's answer about one sentence, validated."""

    model_config = ConfigDict(extra="ignore")

    announcement: bool
    category: AlertCategory | None = None
    date: str | None = None
    time: str | None = None

    @field_validator("date")
    @classmethod
    def _date(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", v):
            raise ValueError("date is not YYYY-MM-DD")
        date.fromisoformat(v)  # raises ValueError for 2025-02-30
        return v

    @field_validator("time")
    @classmethod
    def _time(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        m = re.fullmatch(r"(\d{1,2}):(\d{2})", v)
        if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
            raise ValueError("time is not HH:MM")
        return f"{int(m.group(1)):02d}:{m.group(2)}"

    @model_validator(mode="after")
    def _category_if_announcement(self) -> Verdict:
        if self.announcement and self.category is None:
            raise ValueError("an announcement needs a category")
        return self

    @property
    def day(self) -> date | None:
        return date.fromisoformat(self.date) if self.date else None


def parse_verdict(content: str | None) -> Verdict | None:
    """The JSON object in a model's reply (code fences and surrounding prose tolerated), or None."""
    if not content:
        return None
    start, end = content.find("{"), content.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        data = json.loads(content[start : end + 1])
        return Verdict.model_validate(data) if isinstance(data, dict) else None
    except (ValueError, ValidationError):
        return None


def user_prompt(sentence: str, now: datetime, tz: str | None, keywords: Sequence[str]) -> str:
    zone = f" ({tz})" if tz else ""
    lines = [f"Today: {now:%A} {now.date().isoformat()}{zone}."]
    if keywords:
        lines.append("Session keywords: " + ", ".join(keywords) + ".")
    lines.append(f"Sentence: {json.dumps(sentence, ensure_ascii=False)}")
    return "\n".join(lines)


class LLMClassifier:
    """One chat model on one OpenAI-compatible endpoint; shared by every detector of a process."""

    def __init__(
        self,
        client: openai.OpenAI,
        model: str,
        failures_to_open: int = FAILURES_TO_OPEN,
        cooldown_s: float = COOLDOWN_S,
    ) -> None:
        self.client = client
        self.model = model
        self.failures_to_open = failures_to_open
        self.cooldown_s = cooldown_s
        self._lock = threading.Lock()
        self._failures = 0
        self._open_until = 0.0
        self.calls = 0
        self.fallbacks = 0

    @classmethod
    def from_settings(cls, settings: AlertsSettings) -> LLMClassifier:
        client = openai.OpenAI(
            api_key=settings.alerts_llm_api_key or os.environ.get("OPENAI_API_KEY") or "unused",
            base_url=settings.alerts_llm_base_url,
            timeout=settings.alerts_llm_timeout_s,
            max_retries=0,
        )
        return cls(client, settings.alerts_llm_model)

    def ask(self, sentence: str, now: datetime, tz: str | None, keywords: Sequence[str]) -> Verdict | None:
        """The model's verdict on one sentence, or None (failure, timeout, invalid answer, cooling down)."""
        with self._lock:
            if time.monotonic() < self._open_until:
                self.fallbacks += 1
                return None
            self.calls += 1
        try:
            resp = self.client.chat.completions.create(
                model=self.model,
                temperature=0,
                messages=[
                    {"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": user_prompt(sentence, now, tz, keywords)},
                ],
            )
            content = resp.choices[0].message.content if resp.choices else None
        except Exception as e:  # any failure (HTTP, timeout, odd payload) means: the rules decide
            self._failed(f"call failed: {e!r}")
            return None
        verdict = parse_verdict(content)
        if verdict is None:
            self._failed(f"invalid answer: {content!r:.200}")
            return None
        with self._lock:
            self._failures = 0
        return verdict

    def _failed(self, why: str) -> None:
        with self._lock:
            self.fallbacks += 1
            self._failures += 1
            opened = self._failures >= self.failures_to_open
            if opened:
                self._open_until = time.monotonic() + self.cooldown_s
                self._failures = 0
        log.warning(
            "alerts llm model=%s %s; using the rules%s",
            self.model,
            why,
            f" (endpoint skipped for {self.cooldown_s:.0f}s)" if opened else "",
        )


class LLMDetector(Detector):
    """The rules detector whose per-sentence decision is asked of a chat model (rules as fallback)."""

    def __init__(
        self,
        classifier: LLMClassifier | None,
        keywords: Sequence[str] = (),
        now: datetime | None = None,
        tz: str | None = None,
        names: Sequence[str] = (),
    ) -> None:
        super().__init__(keywords, now, tz, names)
        self.classifier = classifier

    @classmethod
    def from_state(cls, state: dict[str, Any], classifier: LLMClassifier | None = None) -> LLMDetector:
        """Continues a session from `state` (a rules or LLM detector's); no classifier means rules only."""
        rules = Detector.from_state(state)
        det = cls(classifier, rules.keywords, rules.now, rules.tz, rules.spotter.names)
        det._mem = rules._mem
        return det

    def decide(self, sentence: str) -> Finding | None:
        """The announcement in one sentence: the model's verdict, or the rules' when there is none."""
        norm = normalize(sentence)
        rules = classify(norm, self.now.date(), self._keyword_res)
        if self.classifier is None or (rules is None and not self._candidate(norm)):
            return rules
        verdict = self.classifier.ask(sentence, self.now, self.tz, self.keywords)
        if verdict is None:
            return rules
        if not verdict.announcement:
            return None
        assert verdict.category is not None  # validated
        label_ = self._label_for(verdict.category, norm, rules)
        if label_ is None:  # "custom" about no keyword of this session: not a usable answer
            return rules
        return Finding(verdict.category, label_, verdict.day, verdict.time)

    def _candidate(self, norm: str) -> bool:
        """Whether the sentence is worth a question: a trigger word or a session keyword in it."""
        return (
            bool(_TRIGGER_WORDS.search(norm))
            or any(t.pattern.search(norm) for t in TRIGGERS)
            or any(p.search(norm) for _, p in self._keyword_res)
        )

    def _label_for(self, category: str, norm: str, rules: Finding | None) -> str | None:
        """The short title (without date) for the model's category."""
        if rules is not None and rules.category == category:
            return rules.label
        if category == "name":  # names are the rules' alone (NameSpotter): not a usable answer
            return None
        if category == "custom":
            keyword = next(
                (k for k, p in self._keyword_res if (m := p.search(norm)) and not negated(norm, m.start())),
                None,
            )
            return keyword[:1].upper() + keyword[1:] if keyword else None
        hits = find_hits(norm)
        same = [h for h in hits if h.trigger.category == category]
        if same:
            try:
                return label(category, min(same, key=lambda h: h.start), hits, norm)
            except (KeyError, IndexError):
                pass
        return GENERIC_LABELS[category]


_classifiers: dict[tuple[Any, ...], LLMClassifier] = {}
_classifiers_lock = threading.Lock()


def classifier_for(settings: AlertsSettings) -> LLMClassifier:
    """The process's classifier for these settings (one client and one failure count per endpoint)."""
    key = (
        settings.alerts_llm_model,
        settings.alerts_llm_base_url,
        settings.alerts_llm_api_key,
        settings.alerts_llm_timeout_s,
    )
    with _classifiers_lock:
        if key not in _classifiers:
            _classifiers[key] = LLMClassifier.from_settings(settings)
        return _classifiers[key]


def make_detector(
    settings: AlertsSettings,
    keywords: Sequence[str] = (),
    now: datetime | None = None,
    tz: str | None = None,
    names: Sequence[str] = (),
) -> Detector:
    """The rules detector, or the LLM one when `settings.alerts_llm` is on."""
    if not settings.alerts_llm:
        return Detector(keywords, now, tz, names)
    return LLMDetector(classifier_for(settings), keywords, now, tz, names)


def restore_detector(settings: AlertsSettings, state: dict[str, Any]) -> Detector:
    """`Detector.from_state`, or the LLM detector's when `settings.alerts_llm` is on."""
    if not settings.alerts_llm:
        return Detector.from_state(state)
    return LLMDetector.from_state(state, classifier_for(settings))
