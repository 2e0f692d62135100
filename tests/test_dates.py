"""Tests of number-word normalisation and date/time resolution (services.alerts.dates)."""

from __future__ import annotations

import time
from datetime import date

import pytest

from services.alerts.dates import (
    MOVE_TARGET,
    find_dates,
    find_time,
    is_historical,
    next_weekday,
    normalize,
    ordinal,
    resolve,
    words_to_digits,
)

MON = date(2026, 3, 2)  # a Monday
FRI = date(2026, 11, 20)  # a Friday


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("five", "5"),
        ("problem set five", "problem set 5"),
        ("twenty three", "23"),
        ("twenty-three", "23"),
        ("ninth", "9th"),
        ("fourteenth", "14th"),
        ("twenty first", "21st"),
        ("thirtieth", "30th"),
        ("the second lab report", "the 2nd lab report"),
        ("eleven fifty nine", "11 59"),
        ("someone often", "someone often"),  # no number inside other words
    ],
)
def test_words_to_digits(text: str, expected: str) -> None:
    assert words_to_digits(text) == expected


@pytest.mark.parametrize(("n", "expected"), [(1, "1st"), (2, "2nd"), (3, "3rd"), (11, "11th"), (22, "22nd")])
def test_ordinal(n: int, expected: str) -> None:
    assert ordinal(n) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("December Ninth", "december 9th"),
        ("It isn't due", "it is not due"),
        ("there won't be a quiz", "there will not be a quiz"),
        ("Don't forget the quiz", "remember the quiz"),
        ("The lecture is canceled", "the lecture is cancelled"),
        ("at three thirty", "at 3:30"),
        ("by eleven fifty nine p.m.", "by 11:59 pm"),
        ("at 5pm", "at 5 pm"),
        ("from 2-4 pm", "from 2 to 4 pm"),
        ("the write-up", "the write up"),
        ("no later than Friday", "by friday"),
    ],
)
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text) == expected


@pytest.mark.parametrize(
    ("text", "today", "expected"),
    [
        # absolute
        ("March fourteenth", MON, date(2026, 3, 14)),
        ("march 14", MON, date(2026, 3, 14)),
        ("the 2nd of October", MON, date(2026, 10, 2)),
        ("the second of october", MON, date(2026, 10, 2)),
        ("14th March", MON, date(2026, 3, 14)),
        ("10/2", MON, date(2026, 10, 2)),
        ("12/7", FRI, date(2026, 12, 7)),
        ("December 9th", MON, date(2026, 12, 9)),
        ("December ninth", FRI, date(2026, 12, 9)),
        ("March 2nd", MON, MON),  # today is still "future"
        ("February 3rd", MON, date(2027, 2, 3)),  # past this year: next year
        ("on the 15th at 8", FRI, date(2026, 12, 15)),  # bare day: this month or next
        ("on the 25th.", FRI, date(2026, 11, 25)),
        # relative
        ("tomorrow", MON, date(2026, 3, 3)),
        ("the day after tomorrow", MON, date(2026, 3, 4)),
        ("today", MON, MON),
        ("tonight", MON, MON),
        ("in two weeks", MON, date(2026, 3, 16)),
        ("in a week", FRI, date(2026, 11, 27)),
        ("in three days", FRI, date(2026, 11, 23)),
        ("a week from today", MON, date(2026, 3, 9)),
        ("a week from Friday", MON, date(2026, 3, 13)),
        ("next week", MON, date(2026, 3, 9)),  # Monday of next week
        ("next week", FRI, date(2026, 11, 23)),
        ("end of the week", MON, date(2026, 3, 6)),  # Friday of this week
        ("the end of this week", FRI, FRI),
        ("end of next week", MON, date(2026, 3, 13)),
        # weekday: the next such day, strictly after today
        ("Monday", MON, date(2026, 3, 9)),
        ("Thursday", MON, date(2026, 3, 5)),
        ("next Friday", MON, date(2026, 3, 6)),
        ("this Friday", FRI, date(2026, 11, 27)),
        ("Wednesday's lecture", MON, date(2026, 3, 4)),
        ("on Tuesdays", MON, date(2026, 3, 3)),
    ],
)
def test_date_forms(text: str, today: date, expected: date) -> None:
    dates = find_dates(normalize(text), today)
    assert dates and dates[0][1] == expected


@pytest.mark.parametrize(
    "text",
    [
        "you may assume the function is continuous",
        "May is the month when birds migrate",
        "wait a second, that sign is wrong",
        "the second derivative of the function",
        "the workers march on the capital",
        "the SAT solver returns an assignment",
        "most of you did well last Thursday",
        "chapter 5 may be hard",
        "the 2nd lab report",
        "sections 2.1 to 2.4",
    ],
)
def test_no_false_dates(text: str) -> None:
    assert find_dates(normalize(text), MON) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("at midnight", "23:59"),
        ("due at noon", "12:00"),
        ("by 5 pm", "17:00"),
        ("at 9 am", "09:00"),
        ("at three thirty", "15:30"),
        ("at 3", "15:00"),
        ("at 10 30", "10:30"),
        ("tonight at 11", "23:00"),
        ("by eleven fifty nine pm", "23:59"),
        ("from 2 to 4 pm", "14:00"),
        ("from six to eight pm", "18:00"),
        ("at 12:15", "12:15"),
        ("it's worth 20 percent", None),
        ("divide by 10 percent", None),
        ("at the start of class", None),
        ("pages 40 to 65", None),
    ],
)
def test_times(text: str, expected: str | None) -> None:
    assert find_time(normalize(text)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("in 1066", True),
        ("the quiz shows of the 1950s", True),
        ("on june 28th, 1919", True),
        ("room 1500", False),
        ("by 2030", False),
        ("the midterm on march 14", False),
    ],
)
def test_historical(text: str, expected: bool) -> None:
    assert is_historical(normalize(text), MON) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("wednesday's lecture is cancelled and moved to friday afternoon", date(2026, 3, 6)),
        ("the review session is moved from monday to tuesday", date(2026, 3, 3)),
        ("class is on friday", date(2026, 3, 6)),
    ],
)
def test_move_target(text: str, expected: date) -> None:
    assert resolve(normalize(text), MON).pick(normalize(text), MOVE_TARGET) == expected


def test_next_weekday_is_strictly_after_today() -> None:
    assert next_weekday(MON, 0) == date(2026, 3, 9)
    assert next_weekday(MON, 1) == date(2026, 3, 3)


def test_resolution_is_fast() -> None:
    norm = normalize("The essay is due on the twentieth of March at four pm, not next Friday.")
    t0 = time.perf_counter()
    for _ in range(50):
        resolve(norm, MON)
    assert (time.perf_counter() - t0) / 50 < 0.01
