"""The optional LLM classifier: the real openai client against a real HTTP server on loopback that
speaks the chat completions route; the rules decide whenever the model cannot."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web

from services.alerts.detector import Detector
from services.alerts.llm import LLMDetector, make_detector, parse_verdict, restore_detector
from shared.messages import AlertEvent
from shared.settings import AlertsSettings
from tests.util import serving

NOW = datetime(2025, 3, 11, 10, 0, tzinfo=ZoneInfo("Europe/Paris"))  # a Tuesday
TZ = "Europe/Paris"
MIDTERM = "Remember, the midterm is on Friday at 2 pm."


@dataclass
class FakeLLM:
    """What the fake endpoint answers (`reply`: content, "500", "slow", "garbage"), and what it got."""

    base_url: str
    reply: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)

    def answer(self, **verdict: Any) -> None:
        self.reply = json.dumps(verdict)

    def settings(self, timeout_s: float = 5.0) -> AlertsSettings:
        return AlertsSettings(
            alerts_llm=True,
            alerts_llm_model="classrec-test-model",
            alerts_llm_base_url=self.base_url,
            alerts_llm_api_key="sk-test",
            alerts_llm_timeout_s=timeout_s,
        )

    def sentences(self) -> list[str]:
        """The sentence of every request (the last line of the user message)."""
        out = []
        for body in self.received:
            user = next(m["content"] for m in body["messages"] if m["role"] == "user")
            out.append(json.loads(user.splitlines()[-1].removeprefix("Sentence: ")))
        return out


@pytest.fixture
async def fake_llm() -> AsyncIterator[FakeLLM]:
    fake = FakeLLM("")

    async def completions(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        fake.received.append({**body, "auth": request.headers.get("Authorization")})
        if fake.reply == "500":
            return web.json_response({"error": {"message": "boom"}}, status=500)
        if fake.reply == "slow":
            await asyncio.sleep(3)
        if fake.reply == "garbage":
            return web.Response(text="<html>not json</html>", content_type="text/html")
        return web.json_response(
            {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "created": 0,
                "model": body.get("model"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": fake.reply},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        )

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    async with serving(app) as url:
        fake.base_url = f"{url}/v1"
        yield fake


async def feed(det: Detector, segment: int, text: str) -> list[AlertEvent]:
    """`feed` blocks on the HTTP call: run it off the loop that serves the fake endpoint."""
    return await asyncio.to_thread(det.feed, segment, float(segment * 5), text)


def rules_alerts(segment: int, text: str, keywords: tuple[str, ...] = ()) -> list[AlertEvent]:
    return Detector(keywords, NOW, TZ).feed(segment, float(segment * 5), text)


def test_off_by_default_gives_the_rules_detector() -> None:
    det = make_detector(AlertsSettings(), ["lab safety"], NOW, TZ)
    assert type(det) is Detector
    assert AlertsSettings().alerts_llm is False


async def test_the_models_answer_is_used(fake_llm: FakeLLM) -> None:
    fake_llm.answer(announcement=True, category="quiz", date="2025-03-20", time="9:30")
    det = make_detector(fake_llm.settings(), ["lab safety"], NOW, TZ)
    assert isinstance(det, LLMDetector)

    alerts = await feed(det, 2, MIDTERM)
    assert [(a.segment, a.category, a.date, a.time, a.text) for a in alerts] == [
        (2, "quiz", "2025-03-20", "09:30", MIDTERM)
    ]
    assert alerts[0].title == "Quiz — Thu 20 Mar, 09:30"
    assert rules_alerts(2, MIDTERM)[0].date == "2025-03-14", "the rules would have said otherwise"

    (req,) = fake_llm.received
    assert req["model"] == "classrec-test-model"
    assert req["auth"] == "Bearer sk-test"
    assert req["temperature"] == 0
    assert fake_llm.sentences() == [MIDTERM]
    user = req["messages"][-1]["content"]
    assert "Tuesday 2025-03-11 (Europe/Paris)" in user and "lab safety" in user
    assert "JSON" in req["messages"][0]["content"]


async def test_the_model_can_veto_and_can_find_what_the_rules_miss(fake_llm: FakeLLM) -> None:
    det = make_detector(fake_llm.settings(), (), NOW, TZ)
    fake_llm.answer(announcement=False, category=None, date=None, time=None)
    assert rules_alerts(1, MIDTERM), "the rules flag it"
    assert await feed(det, 1, MIDTERM) == []

    missed = "The project presentations happen on the last day of class."
    assert rules_alerts(2, missed) == [], "the rules miss it"
    fake_llm.answer(announcement=True, category="assignment", date="2025-05-02", time=None)
    (alert,) = await feed(det, 2, missed)
    assert (alert.category, alert.date, alert.time, alert.title) == (
        "assignment",
        "2025-05-02",
        None,
        "Project — Fri 2 May",
    )

    before = len(fake_llm.received)
    assert await feed(det, 3, "Today we look at eigenvalues and eigenvectors.") == []
    assert len(fake_llm.received) == before, "a sentence without a trigger word is not sent"


@pytest.mark.parametrize(
    "reply",
    [
        "500",
        "slow",
        "garbage",
        "Sure! It is an announcement.",
        '{"announcement": true, "category": "party", "date": null, "time": null}',
        '{"announcement": true, "category": "exam", "date": "2025-02-30", "time": null}',
        '{"announcement": true, "category": null}',
        '{"category": "exam"}',
    ],
)
async def test_failures_fall_back_to_the_rules(fake_llm: FakeLLM, reply: str) -> None:
    fake_llm.reply = reply
    det = make_detector(fake_llm.settings(timeout_s=0.5), (), NOW, TZ)
    got = await asyncio.wait_for(feed(det, 4, MIDTERM), 2.5)  # a slow endpoint costs the timeout, no more
    assert got == rules_alerts(4, MIDTERM)
    assert got[0].date == "2025-03-14" and got[0].category == "exam"
    assert len(fake_llm.received) == 1, "no retries"


async def test_a_failing_endpoint_is_skipped_for_a_while(fake_llm: FakeLLM) -> None:
    fake_llm.reply = "500"
    det = make_detector(fake_llm.settings(), (), NOW, TZ)
    for seg in range(6):
        assert await feed(det, seg * 10, MIDTERM) == rules_alerts(seg * 10, MIDTERM)
    assert len(fake_llm.received) == 3, "after 3 failures in a row the rules answer alone"


async def test_fenced_json_and_custom_keyword(fake_llm: FakeLLM) -> None:
    fake_llm.reply = '```json\n{"announcement": true, "category": "custom", "date": null, "time": null}\n```'
    det = make_detector(fake_llm.settings(), ["lab safety"], NOW, TZ)
    sentence = "We will go over lab safety rules."
    (alert,) = await feed(det, 0, sentence)
    assert (alert.category, alert.title) == ("custom", "Lab safety")

    # "custom" about no keyword of the session is not a usable answer: the rules decide.
    assert await feed(det, 5, MIDTERM) == rules_alerts(5, MIDTERM)


async def test_state_round_trip(fake_llm: FakeLLM) -> None:
    fake_llm.answer(announcement=True, category="exam", date="2025-03-14", time="14:00")
    settings = fake_llm.settings()
    det = make_detector(settings, (), NOW, TZ)
    held = await feed(det, 0, "The midterm will be on")  # unfinished: held for the next segment
    assert held == []
    state = json.loads(json.dumps(det.state()))

    resumed = restore_detector(settings, state)
    assert isinstance(resumed, LLMDetector)
    (alert,) = await feed(resumed, 1, "Friday at 2 pm.")
    assert (alert.segment, alert.category, alert.date, alert.time) == (0, "exam", "2025-03-14", "14:00")
    assert fake_llm.sentences() == ["The midterm will be on Friday at 2 pm."]
    assert type(restore_detector(AlertsSettings(), state)) is Detector


def test_parse_verdict() -> None:
    assert parse_verdict('{"announcement": false}') is not None
    v = parse_verdict(
        'Answer: {"announcement": true, "category": "deadline", "date": "2025-03-14", "time": "23:59"}'
    )
    assert v is not None and v.category == "deadline" and v.time == "23:59"
    for bad in (None, "", "[]", "{", '{"announcement": true, "category": "exam", "time": "25:00"}'):
        assert parse_verdict(bad) is None
