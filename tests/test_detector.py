"""Tests of the announcement detector (services.alerts.detector) and of its corpus figures."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.alerts.detector import Detector
from shared.messages import AlertEvent
from testkit import alerts_corpus
from testkit.lecture_text import ANNOUNCEMENTS, PLAIN

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("UTC"))  # a Monday
ROOT = Path(__file__).resolve().parents[1]


def alerts_for(text: str, keywords: list[str] | None = None, now: datetime = NOW) -> list[AlertEvent]:
    """The alerts of a one-segment session."""
    det = Detector(keywords or [], now=now, tz="UTC")
    return det.feed(0, 0.0, text) + det.flush()


def one(text: str, **kwargs: Any) -> AlertEvent | None:
    found = alerts_for(text, **kwargs)
    assert len(found) <= 1, found
    return found[0] if found else None


# --- the synthetic test lectures -------------------------------------------------------------------

LECTURE_ANNOUNCEMENTS = ANNOUNCEMENTS
LECTURE_PLAIN = PLAIN
WHISPER_VARIANTS = [
    ("remember that the second lab report is due on thursday before class", "deadline"),
    ("Remember that the 2nd lab report is due on Thursday before class.", "deadline"),
    (
        "Remember that the second lab report is do on Thursday before class.",
        "deadline",
    ),  # hall2_snr12, tiny.en
    ("Your final exam will be held on December 9th in this room.", "exam"),
    ("your final exam will be held on december ninth in this room", "exam"),
    ("Next week, there's a pop quiz on chapter 4, so please review it.", "quiz"),
    ("next week there is a quiz on chapter four so please review it", "quiz"),
    ("Problem set 5 has to be turned in by Sunday at noon.", "assignment"),
    ("problem set five has to be turned in by sunday at 12", "assignment"),
    ("Wednesday's lecture is canceled and moved to Friday afternoon.", "schedule"),
    ("wednesdays lecture is cancelled and moved to friday afternoon", "schedule"),
]


@pytest.mark.parametrize(("text", "category"), LECTURE_ANNOUNCEMENTS + WHISPER_VARIANTS)
def test_lecture_announcements(text: str, category: str) -> None:
    alert = one(text)
    assert alert is not None and alert.category == category
    assert alert.text == text.strip()


@pytest.mark.parametrize("text", LECTURE_PLAIN)
def test_lecture_plain_sentences(text: str) -> None:
    assert alerts_for(text) == []


@pytest.mark.parametrize("name", ["lecture1.json", "lecture2.json"])
def test_synthetic_lecture_file(name: str) -> None:
    lecture = json.loads((ROOT / "tests" / "data" / name).read_text())
    det = Detector(now=NOW)
    found = []
    for i, seg in enumerate(s for s in lecture["segments"] if s["kind"] == "speech"):
        found += det.feed(i, seg["start"], seg["text"])
    found += det.flush()
    assert [(a.category, a.start) for a in found] == [(a["category"], a["start"]) for a in lecture["alerts"]]


# --- categories, dates and times ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "category", "date", "time"),
    [
        ("Your midterm will be on March fourteenth in room 101.", "exam", "2026-03-14", None),
        ("The test on chapter 3 is on the 2nd of October.", "exam", "2026-10-02", None),
        ("The final is on 10/2 at 9 am.", "exam", "2026-10-02", "09:00"),
        ("finals start December 9th", "exam", "2026-12-09", None),
        ("you'll be tested on this next Friday", "exam", "2026-03-06", None),
        ("There's a quiz tomorrow.", "quiz", "2026-03-03", None),
        ("Quiz three is in two weeks.", "quiz", "2026-03-16", None),
        ("The essay is due at the end of the week.", "deadline", "2026-03-06", None),
        ("Homework 2 is due tonight at midnight.", "deadline", "2026-03-02", "23:59"),
        ("The deadline is Monday at 5 pm.", "deadline", "2026-03-09", "17:00"),
        ("Submit your answers by Thursday at three thirty.", "deadline", "2026-03-05", "15:30"),
        ("Please hand in your notebooks next week.", "deadline", "2026-03-09", None),
        ("For homework, read chapter six.", "assignment", None, None),
        ("The reading for Thursday is on the website.", "assignment", "2026-03-05", None),
        ("Turn in the worksheet at the end of class today.", "assignment", "2026-03-02", None),
        ("Hand your lab report in by December ninth.", "assignment", "2026-12-09", None),
        ("Tomorrow's lab is cancelled.", "schedule", "2026-03-03", None),
        ("The midterm has been rescheduled to March 18th.", "schedule", "2026-03-18", None),
        ("There is no class next Monday.", "schedule", "2026-03-09", None),
        ("We won't have class on Thursday.", "schedule", "2026-03-05", None),
        ("Office hours this week are moved to Thursday at 3.", "schedule", "2026-03-05", "15:00"),
        ("There's a room change for the final.", "schedule", None, None),
        ("The quiz is postponed until next Wednesday.", "schedule", "2026-03-04", None),
    ],
)
def test_categories_dates_and_times(text: str, category: str, date: str | None, time: str | None) -> None:
    alert = one(text)
    assert alert is not None
    assert (alert.category, alert.date, alert.time) == (category, date, time)


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("The midterm is moved to Friday.", "schedule"),  # schedule beats exam
        ("The quiz on Friday is cancelled.", "schedule"),  # a cancellation is schedule
        ("The final exam and a quiz are on Friday.", "exam"),  # exam beats quiz
        ("The quiz on the reading is on Friday.", "quiz"),  # quiz beats assignment
        ("The lab report is due Thursday.", "deadline"),  # "due" beats an assignment noun
        ("Problem set 5 must be submitted by Sunday.", "assignment"),  # noun + submit: assignment
        ("Submit the form by Sunday.", "deadline"),  # submit without a noun: deadline
    ],
)
def test_category_precedence(text: str, category: str) -> None:
    alert = one(text)
    assert alert is not None and alert.category == category


@pytest.mark.parametrize(
    "text",
    [
        "the final answer is 42",
        "This is a test of the hypothesis that the mean is zero.",
        "There is no quiz this week.",
        "All we ever do on Fridays is sit in the lab.",
        "There won't be a quiz on Friday.",
        "we will not have an exam this week",
        "The test statistic follows a t distribution.",
        "The final state of the system has the lowest energy.",
        "In the story, the deadline for the ransom was midnight on Friday.",
        "The Treaty of Versailles was signed on June 28th, 1919.",
        "Due to the heat, the protein denatures.",
        "These two terms cancel out.",
        "The midterm elections of 2018 changed the House.",
        "Most of you did well on the midterm last Thursday.",
        "So you'll notice the quiz scores in this graph are bimodal.",
        "The turn in the road marks the edge of the property.",
        "The Romans had no class of professional police.",
    ],
)
def test_no_alert_on_negations_and_lecture_content(text: str) -> None:
    assert alerts_for(text) == []


def test_negated_then_real_mention() -> None:
    alert = one("There is no quiz this week, but there is a quiz next Friday.")
    assert alert is not None and (alert.category, alert.date) == ("quiz", "2026-03-06")


def test_title() -> None:
    alert = one("Your midterm will be on March fourteenth in room 101.")
    assert alert is not None and alert.title == "Midterm exam — Sat 14 Mar"
    alert = one("Problem set five has to be turned in by Sunday at noon.")
    assert alert is not None and alert.title == "Problem set 5 — Sun 8 Mar, 12:00"
    alert = one("Wednesday's lecture is cancelled and moved to Friday afternoon.")
    assert alert is not None and alert.title == "Lecture moved — Fri 6 Mar"


def test_time_zone_decides_today() -> None:
    late = datetime(2026, 3, 3, 2, 0, tzinfo=ZoneInfo("UTC"))  # still Monday 2 March in New York
    det = Detector(now=late, tz="America/New_York")
    (alert,) = det.feed(0, 0.0, "The quiz is tomorrow.")
    assert alert.date == "2026-03-03"
    assert Detector(now=late, tz="Not/AZone").now.tzinfo is not None  # a bad zone does not crash


# --- across segments --------------------------------------------------------------------------------


def feed_all(det: Detector, texts: list[str]) -> list[AlertEvent]:
    found = []
    for i, text in enumerate(texts):
        found += det.feed(i + 3, 10.0 * i, text)
    return found + det.flush()


def test_announcement_split_over_two_segments_is_found_once() -> None:
    found = feed_all(
        Detector(now=NOW),
        [
            "The cell membrane is thin. Your midterm will be on",
            "March fourteenth in room 101.",
            "Enzymes are proteins.",
        ],
    )
    assert [(a.segment, a.start, a.category, a.date) for a in found] == [(3, 0.0, "exam", "2026-03-14")]
    assert found[0].text == "Your midterm will be on March fourteenth in room 101."


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        (["there is no", "quiz this week."], []),
        (["the essay is due", "on Friday at 5 pm."], [("deadline", "2026-03-06", "17:00")]),
        (["the quiz is", "", "on Thursday."], [("quiz", "2026-03-05", None)]),  # an empty segment between
        (["there will be a quiz", "Photosynthesis is neat."], [("quiz", None, None)]),
        (["the midterm covers chapters one to five"], [("exam", None, None)]),  # released by flush()
    ],
)
def test_cross_segment_cases(texts: list[str], expected: list[tuple[str, str | None, str | None]]) -> None:
    found = feed_all(Detector(now=NOW), texts)
    assert [(a.category, a.date, a.time) for a in found] == expected


def test_a_final_cut_in_a_short_pause_is_read_with_the_next_although_it_ends_in_a_period() -> None:
    """Run-on speech closed at short pauses (VAD_SHORT_PAUSES): Whisper ends each piece with a period.
    A piece that `continues` and has a trigger without a date is held and read with the next one;
    the same pieces from pauses that ended the speaker's sentence are separate sentences."""
    pieces = ["The midterm.", "Which covers chapters one to four.", "Is on March 14th."]
    det, found = Detector(now=NOW), []
    for i, text in enumerate(pieces):
        found += det.feed(i, 2.0 * i, text, continues=True)
    found += det.flush()
    assert [(a.segment, a.start, a.category, a.date) for a in found] == [(0, 0.0, "exam", "2026-03-14")]
    assert feed_all(Detector(now=NOW), pieces) == []
    # a piece with its date is alerted at once, continuing or not
    (quiz,) = Detector(now=NOW).feed(0, 0.0, "Next week there is a pop quiz on chapter 4.", True)
    assert (quiz.category, quiz.date) == ("quiz", "2026-03-09")


def test_restatement_is_not_repeated() -> None:
    found = feed_all(
        Detector(now=NOW),
        [
            "The midterm is on March 14th.",
            "Again, that's the midterm, March fourteenth.",
            "So the exam is on the 14th of March, everyone.",
            "Write that down: the midterm exam will be in this room.",
        ],
    )
    assert [(a.category, a.date) for a in found] == [("exam", "2026-03-14")]


def test_different_announcements_and_later_repeats_do_alert() -> None:
    texts = [
        "The quiz is on Friday.",
        "The essay is due Friday.",
        "The quiz on the 20th of March covers chapter 5.",
        "Cells divide.",
        "Cells grow.",
        "Cells die.",
        "Cells move.",
        "The quiz is on Friday.",
    ]
    found = feed_all(Detector(now=NOW), texts)
    assert [(a.category, a.date) for a in found] == [
        ("quiz", "2026-03-06"),
        ("deadline", "2026-03-06"),
        ("quiz", "2026-03-20"),
        ("quiz", "2026-03-06"),
    ]


def test_replayed_segment_is_ignored() -> None:
    det = Detector(now=NOW)
    assert len(det.feed(5, 1.0, "The quiz is on Friday.")) == 1
    assert det.feed(5, 1.0, "The quiz is on Friday.") == []


def test_state_round_trip() -> None:
    det = Detector(["field trip"], now=NOW, tz="Europe/Paris")
    det.feed(0, 0.0, "The quiz is on Friday. Your midterm will be on")
    state = json.loads(json.dumps(det.state()))
    restored = Detector.from_state(state)
    assert restored.state() == det.state()
    found = restored.feed(1, 5.0, "March fourteenth. The quiz is on Friday. The field trip is tomorrow.")
    assert [(a.segment, a.category, a.date) for a in found] == [
        (0, "exam", "2026-03-14"),
        (1, "custom", "2026-03-03"),
    ]


# --- custom keywords --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keywords", "text", "expected"),
    [
        (["field trip"], "The Field Trip is on April 3rd.", ("custom", "2026-04-03", "Field trip")),
        (["guest speaker"], "we have a guest speaker coming in", ("custom", None, "Guest speaker")),
        (["chapter five"], "Make sure you know chapter 5 well.", ("custom", None, "Chapter five")),
        (["field trip"], "There is no field trip this year.", None),
        (["field trip"], "The quiz is on Friday, before the field trip.", ("quiz", "2026-03-06", "Quiz")),
        (["trip"], "We took a tripod outside.", None),
    ],
)
def test_custom_keywords(
    keywords: list[str], text: str, expected: tuple[str, str | None, str] | None
) -> None:
    alert = one(text, keywords=keywords)
    got = (alert.category, alert.date, (alert.title or "").split(" — ")[0]) if alert else None
    assert got == expected


# --- latency and the corpus -------------------------------------------------------------------------


def test_feed_latency() -> None:
    det = Detector(now=NOW)
    texts = [s for s, _ in LECTURE_ANNOUNCEMENTS] + LECTURE_PLAIN
    t0 = time.perf_counter()
    for i, text in enumerate(texts * 5):
        det.feed(i, float(i), text)
    assert (time.perf_counter() - t0) / (len(texts) * 5) < 0.02


def test_corpus_meets_targets() -> None:
    bench = alerts_corpus
    rows = bench.load()
    assert len(rows) >= 160
    assert sum(r["category"] is None for r in rows) >= len(rows) * 0.4
    assert {r["category"] for r in rows} >= {"exam", "quiz", "deadline", "assignment", "schedule", "custom"}
    result = bench.run()
    assert result["recall"] >= 0.95, result["errors"]
    assert result["precision"] >= 0.95, result["errors"]
    assert result["date_accuracy"] >= 0.9, result["errors"]
