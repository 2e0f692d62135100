"""Text normalisation and date/time resolution for spoken announcements.

Whisper writes numbers as words or digits ("December ninth", "December 9th", "problem set five"), so
`normalize` first lower-cases a sentence, expands contractions and turns number words (cardinal and
ordinal) into digits.  `resolve` then finds date and time expressions with explicit patterns and
resolves them against the session's local "today":

* absolute: "march 14th", "the 2nd of october", "10/2" (US month/day), "the 15th" -> the next such
  day on or after today (parsed with `dateparser`, PREFER_DATES_FROM=future);
* relative: "today"/"tonight", "tomorrow", "in 2 weeks" (dateparser), "a week from friday",
  "next week" (Monday of next week), "end of the week" (Friday of this week);
* weekday: "friday", "next friday", "this friday", "friday's" -> the next such day strictly after
  today;
* time: "midnight" -> 23:59 of the day (a deadline at midnight means the end of that day),
  "noon" -> 12:00, "5 pm", "11:59 pm", "from 2 to 4 pm" -> 14:00; a bare hour after at/by/before
  ("at 3", "at 3:30") is 13:00-19:59 for 1-7 and morning for 8-11 (evening after "tonight").

`dateparser` only ever sees the short span a pattern matched, never free text, which keeps it
fast and away from its false positives ("may", "second", "sat", "march" as a verb).  A four-digit
year before the current one marks the sentence as historical.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache

import dateparser

# --- number words -------------------------------------------------------------------------------

_UNITS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_ORD_UNITS = (
    "zeroth first second third fourth fifth sixth seventh eighth ninth tenth eleventh "
    "twelfth thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth "
    "nineteenth"
).split()
_ORD_TENS = "twentieth thirtieth fortieth fiftieth sixtieth seventieth eightieth ninetieth".split()
_WORD_VALUE: dict[str, tuple[int, bool]] = {
    **{w: (i, False) for i, w in enumerate(_UNITS)},
    **{w: (20 + 10 * i, False) for i, w in enumerate(_TENS)},
    **{w: (i, True) for i, w in enumerate(_ORD_UNITS)},
    **{w: (20 + 10 * i, True) for i, w in enumerate(_ORD_TENS)},
}
_SMALL = "|".join(_UNITS[1:10] + _ORD_UNITS[1:10])
_ANY = "|".join(sorted(_WORD_VALUE, key=len, reverse=True))
_NUMBER_RE = re.compile(rf"\b(?:({'|'.join(_TENS)})[\s-]+({_SMALL})|({_ANY}))\b")


def ordinal(n: int) -> str:
    """1 -> '1st', 22 -> '22nd', 13 -> '13th'."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _number_sub(m: re.Match[str]) -> str:
    if m.group(1):
        tens, (unit, is_ord) = _WORD_VALUE[m.group(1)][0], _WORD_VALUE[m.group(2)]
        value = tens + unit
    else:
        value, is_ord = _WORD_VALUE[m.group(3)]
    return ordinal(value) if is_ord else str(value)


def words_to_digits(text: str) -> str:
    """Number words to digits in lower-case text: 'twenty first' -> '21st', 'five' -> '5'."""
    return _NUMBER_RE.sub(_number_sub, text)


# --- normalisation ------------------------------------------------------------------------------

_REWRITES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"[‘’`]"), "'"),
    (re.compile(r"\b([ap])\.\s?m\.?(?=\s|$|[,;!?])"), r"\1m"),
    (re.compile(r"\bwon'?t\b"), "will not"),
    (re.compile(r"\bcan'?t\b"), "can not"),
    (re.compile(r"\b(do|does|did|is|are|was|were|has|have|had|would|should|could)n'?t\b"), r"\1 not"),
    (re.compile(r"\b(?:do not|don't) forget\b"), "remember"),
    (re.compile(r"\bno later than\b"), "by"),
    (re.compile(r"\bnot only\b"), "only"),
    (re.compile(r"\bcancel(ed|ing)\b"), r"cancell\1"),
    (re.compile(r"\bo'?clock\b"), ""),
    (re.compile(r"(\d)(am|pm)\b"), r"\1 \2"),
    (re.compile(r"\b(\d{1,2}) ([0-5]\d)(?= ?(?:am|pm)\b)"), r"\1:\2"),
    (re.compile(r"\b(at|by|before|until|till|from|around) (\d{1,2}) ([0-5]\d)\b"), r"\1 \2:\3"),
    (re.compile(r"[ \t\r\n]+"), " "),
]


def normalize(text: str) -> str:
    """Lower-case, digits for number words, contractions expanded, times as H:MM."""
    out = re.sub(r"(?<=\d)\s*-\s*(?=\d)", " to ", text.lower())
    out = words_to_digits(re.sub(r"(?<=[a-z])-(?=[a-z])", " ", out))
    for pattern, repl in _REWRITES:
        out = pattern.sub(repl, out)
    return out.strip()


# --- dates --------------------------------------------------------------------------------------

_MONTHS = {
    "january": 1,
    "jan": 1,
    "february": 2,
    "feb": 2,
    "march": 3,
    "mar": 3,
    "april": 4,
    "apr": 4,
    "may": 5,
    "june": 6,
    "jun": 6,
    "july": 7,
    "jul": 7,
    "august": 8,
    "aug": 8,
    "september": 9,
    "sep": 9,
    "sept": 9,
    "october": 10,
    "oct": 10,
    "november": 11,
    "nov": 11,
    "december": 12,
    "dec": 12,
}
_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_MONTH = "(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_WEEKDAY = "(" + "|".join(_WEEKDAYS) + ")"
_ORD = r"(?:st|nd|rd|th)"
_YEAR = r"(?:,? (\d{4}))?"

_MONTH_DAY = re.compile(rf"\b{_MONTH} (?:the )?(\d{{1,2}}){_ORD}?\b{_YEAR}")
_DAY_MONTH = re.compile(rf"\b(?:the )?(\d{{1,2}})(?:{_ORD} (?:of )?| of ){_MONTH}\b{_YEAR}")
_NUMERIC = re.compile(r"\b(1[0-2]|0?[1-9])/(3[01]|[12]\d|0?[1-9])(?:/(\d{2}|\d{4}))?\b")
_BARE_DAY = re.compile(
    rf"\bthe (\d{{1,2}}){_ORD}\b(?=\s*(?:$|[,.;!?]|(?:at|is|in|and|or|not|from|instead|which|when)\b))"
)
_IN_N = re.compile(r"\bin (a|an|\d+) (day|week)s?\b")
_N_FROM = re.compile(rf"\b(a|an|\d+) weeks? from (today|now|{_WEEKDAY[1:-1]})\b")
_DAY_AFTER = re.compile(r"\b(?:the )?day after tomorrow\b")
_TOMORROW = re.compile(r"\btomorrow\b")
_TODAY = re.compile(r"\b(?:today|tonight)\b|\bthis (?:morning|afternoon|evening)\b")
_END_NEXT_WEEK = re.compile(r"\bend of next week\b")
_END_WEEK = re.compile(r"\b(?:the )?end of (?:the|this) week\b")
_NEXT_WEEK = re.compile(r"\bnext week\b")
_WEEKDAY_RE = re.compile(rf"\b(?:(last|next|this|coming) )?{_WEEKDAY}(?:'s|s)?\b")
_HISTORICAL = re.compile(r"(?<!room )(?<!page )(?<!\$)\b(1\d{3}|20\d{2})(?:'?s)?\b")
MOVE_TARGET = re.compile(
    r"\b(?:moved?|moving|reschedul\w*|postpon\w*|pushed|push|shifted|changed)\b(?:\s+\S+){0,3}?\s+(?:to|until|till)\b"
)
DUE_TARGET = re.compile(r"\b(?:due|deadline|by|before|until|till)\b")

_DP_SETTINGS = {"PREFER_DATES_FROM": "future", "DATE_ORDER": "MDY", "RETURN_AS_TIMEZONE_AWARE": False}


@lru_cache(maxsize=2048)
def _dp_parse(span: str, base: date) -> date | None:
    """dateparser on one short span, relative to `base` (cached: it runs per live segment)."""
    settings = dict(_DP_SETTINGS, RELATIVE_BASE=datetime(base.year, base.month, base.day))
    parsed = dateparser.parse(span, languages=["en"], settings=settings)  # type: ignore[arg-type]
    return parsed.date() if parsed else None


def warm_up() -> None:
    """Load dateparser's language data now rather than on the first live segment."""
    _dp_parse("march 14", date(2026, 1, 1))
    _dp_parse("in 2 weeks", date(2026, 1, 1))


def _absolute(month: int, day: int, year: str | None, today: date) -> date | None:
    """A month/day (optional year) via dateparser; today counts as 'future'."""
    span = f"{month}/{day}" + (f"/{year}" if year else "")
    return _dp_parse(span, today - timedelta(days=1))


def _bare_day(day: int, today: date) -> date | None:
    """'the 15th': that day of this month if not past, else of the next month."""
    year, month = today.year, today.month
    for _ in range(3):
        try:
            candidate = date(year, month, day)
        except ValueError:
            candidate = None
        if candidate and candidate >= today:
            return candidate
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return None


def next_weekday(today: date, weekday: int) -> date:
    """The next `weekday` (0 = Monday) strictly after today."""
    return today + timedelta(days=(weekday - today.weekday() - 1) % 7 + 1)


def _week_friday(today: date, weeks: int) -> date:
    """Friday of this week (weeks=0; the next Friday on a weekend) or of a later week."""
    friday = today + timedelta(days=4 - today.weekday() + 7 * weeks)
    return friday if friday >= today else friday + timedelta(days=7)


def _count(word: str) -> int:
    return 1 if word in ("a", "an") else int(word)


def _h_month_day(m: re.Match[str], today: date) -> date | None:
    return _absolute(_MONTHS[m.group(1)], int(m.group(2)), m.group(3), today)


def _h_day_month(m: re.Match[str], today: date) -> date | None:
    return _absolute(_MONTHS[m.group(2)], int(m.group(1)), m.group(3), today)


def _h_numeric(m: re.Match[str], today: date) -> date | None:
    year = m.group(3)
    if year and len(year) == 2:
        year = "20" + year
    return _absolute(int(m.group(1)), int(m.group(2)), year, today)


def _h_in_n(m: re.Match[str], today: date) -> date | None:
    return _dp_parse(f"in {_count(m.group(1))} {m.group(2)}s", today)


def _h_n_from(m: re.Match[str], today: date) -> date | None:
    anchor = m.group(2)
    start = today if anchor in ("today", "now") else next_weekday(today, _WEEKDAYS.index(anchor))
    return start + timedelta(weeks=_count(m.group(1)))


def _h_weekday(m: re.Match[str], today: date) -> date | None:
    if m.group(1) == "last":
        return None
    return next_weekday(today, _WEEKDAYS.index(m.group(2)))


_DATE_PATTERNS: list[tuple[re.Pattern[str], Callable[[re.Match[str], date], date | None]]] = [
    (_MONTH_DAY, _h_month_day),
    (_DAY_MONTH, _h_day_month),
    (_NUMERIC, _h_numeric),
    (_BARE_DAY, lambda m, today: _bare_day(int(m.group(1)), today)),
    (_N_FROM, _h_n_from),
    (_IN_N, _h_in_n),
    (_DAY_AFTER, lambda m, today: today + timedelta(days=2)),
    (_TOMORROW, lambda m, today: today + timedelta(days=1)),
    (_TODAY, lambda m, today: today),
    (_END_NEXT_WEEK, lambda m, today: _week_friday(today, 1)),
    (_END_WEEK, lambda m, today: _week_friday(today, 0)),
    (_NEXT_WEEK, lambda m, today: today + timedelta(days=7 - today.weekday())),
    (_WEEKDAY_RE, _h_weekday),
]


def find_dates(norm: str, today: date) -> list[tuple[int, date]]:
    """(position, date) of every date expression in a normalised sentence, in text order.

    Patterns are tried most specific first; a span already claimed is not matched again.
    """
    taken: list[tuple[int, int]] = []
    found: list[tuple[int, date]] = []
    for pattern, handler in _DATE_PATTERNS:
        for m in pattern.finditer(norm):
            if any(m.start() < end and start < m.end() for start, end in taken):
                continue
            taken.append(m.span())
            resolved = handler(m, today)
            if resolved is not None and abs((resolved - today).days) <= 400:
                found.append((m.start(), resolved))
    return sorted(found)


def is_historical(norm: str, today: date) -> bool:
    """A year before the current one ('in 1066', 'the 1950s', 'June 28th, 1919')."""
    return any(int(m.group(1)) < today.year for m in _HISTORICAL.finditer(norm))


def pick_date(dates: list[tuple[int, date]], norm: str, focus: re.Pattern[str] | None = None) -> date | None:
    """The first date after the first match of `focus` if there is one, else the first date."""
    if not dates:
        return None
    m = focus.search(norm) if focus else None
    if m:
        after = [d for pos, d in dates if pos >= m.end()]
        if after:
            return after[0]
    return dates[0][1]


# --- times --------------------------------------------------------------------------------------

_T_NAMED = re.compile(r"\b(midnight|noon|midday)\b")
_T_RANGE = re.compile(r"\b(\d{1,2})(?::([0-5]\d))? ?(?:-|to|until|till|and) ?\d{1,2}(?::[0-5]\d)? ?(am|pm)\b")
_T_SUFFIX = re.compile(r"\b(\d{1,2})(?::([0-5]\d))? ?(am|pm)\b")
_T_PREP = re.compile(
    r"\b(?:at|by|before|until|till|from|around|starts? at) (\d{1,2})(?::([0-5]\d))?\b"
    r"(?!\s*(?:%|/|percent|degrees?|st\b|nd\b|rd\b|th\b|times?|days?|weeks?|minutes?|hours?|pages?|"
    r"points?|people|students|of\b|out\b|\.\d))"
)
_EVENING = re.compile(r"\b(?:tonight|evening|night)\b")


def _clock(hour: int, minute: int, suffix: str | None, evening: bool) -> str | None:
    if suffix == "pm" and hour < 12:
        hour += 12
    elif suffix == "am" and hour == 12:
        hour = 0
    elif suffix is None and (1 <= hour <= 7 or (evening and 8 <= hour <= 11)):
        hour += 12
    if hour > 23:
        return None
    return f"{hour:02d}:{minute:02d}"


def find_time(norm: str) -> str | None:
    """The first clock time in a normalised sentence, as HH:MM."""
    hits: list[tuple[int, str]] = []
    taken: list[tuple[int, int]] = []
    for m in _T_NAMED.finditer(norm):
        hits.append((m.start(), "23:59" if m.group(1) == "midnight" else "12:00"))
    evening = bool(_EVENING.search(norm))
    for pattern in (_T_RANGE, _T_SUFFIX, _T_PREP):
        for m in pattern.finditer(norm):
            if any(m.start() < end and start < m.end() for start, end in taken):
                continue
            taken.append(m.span())
            suffix = m.group(3) if pattern is not _T_PREP else None
            clock = _clock(int(m.group(1)), int(m.group(2) or 0), suffix, evening)
            if clock:
                hits.append((m.start(), clock))
    return min(hits)[1] if hits else None


@dataclass(frozen=True)
class Resolved:
    """The date expressions, first time and historical flag of a normalised sentence."""

    dates: list[tuple[int, date]]
    time: str | None
    historical: bool

    def pick(self, norm: str, focus: re.Pattern[str] | None = None) -> date | None:
        """The date the sentence is about (see `pick_date`)."""
        return pick_date(self.dates, norm, focus)


def resolve(norm: str, today: date) -> Resolved:
    """Dates, time and historical flag of a normalised sentence."""
    return Resolved(find_dates(norm, today), find_time(norm), is_historical(norm, today))


warm_up()
