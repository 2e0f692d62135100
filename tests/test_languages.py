"""Languages and live translation through the whole stack with the bundled multilingual model (base).

The Spanish dev lecture (tests/data/lecture_es, espeak-ng, two announcements) is streamed to a stack
started with WHISPER_MODEL=base and FINAL_CONTEXT_S=10 (finals in context, the defaults): as Spanish, with `auto`, and with `task: "translate"`, whose English
text must raise both announcements' alerts with their dates. The English-only default (tiny.en) must
refuse Spanish with `language_unsupported`, never transcribe it as English.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterator

import pytest

from testkit.truth import load_lecture as load_truth
from testkit.wer import word_errors
from tests.browser_util import missing_browser, open_page
from tests.client import finals, stream
from tests.util import DATA, Lecture, Stack, load_lecture, own_redis, running_stack

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of its own, on a Redis of its own: the default stack's transcribers must not take
    its segments."""
    log = tmp_path_factory.mktemp("base-stack") / "services.log"
    with own_redis(tmp_path_factory.mktemp("base-redis")) as redis_url:
        with running_stack(redis_url, log, WHISPER_MODEL="base", FINAL_CONTEXT_S="10") as s:
            yield s


@pytest.fixture(scope="module")
def spanish() -> Lecture:
    return load_lecture("lecture_es")


@pytest.fixture(scope="module")
def runs(base_stack: Stack, spanish: Lecture) -> dict[str, list[dict]]:
    """The lecture as Spanish, with auto, and translated, streamed at once."""
    starts = {
        "es": {"type": "start", "language": "es", "timezone": "UTC"},
        "auto": {"type": "start", "language": "auto", "timezone": "UTC"},
        "translate": {"type": "start", "language": "es", "task": "translate", "timezone": "UTC"},
    }

    async def all_three() -> list[list[dict]]:
        return await asyncio.gather(*(stream(base_stack.ws, spanish.pcm, start=s) for s in starts.values()))

    return dict(zip(starts, asyncio.run(all_three()), strict=True))


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def text_of(messages: list[dict]) -> str:
    return " ".join(f["text"] for f in finals(messages))


def test_the_route_says_what_the_model_can_do(base_stack: Stack, stack: Stack) -> None:
    base = get_json(f"{base_stack.http}/api/languages")
    assert base["model"] == "base" and base["auto"] and base["translate"]
    assert {"en", "es", "fr", "de"} <= set(base["languages"]) and base["languages"][0] == "en"
    tiny = get_json(f"{stack.http}/api/languages")
    assert tiny["model"] == "tiny.en" and tiny["languages"] == ["en"] and not tiny["translate"]


def test_spanish_is_transcribed_as_spanish(runs: dict[str, list[dict]]) -> None:
    msgs = runs["es"]
    assert msgs[0] == {"type": "session", "session": msgs[0]["session"], "language": "es", "received": 0}
    assert msgs[-1] == {"type": "end"} and not [m for m in msgs if m["type"] == "error"]
    truth = load_truth(DATA / "lecture_es")
    wer = word_errors(truth.speech_text, text_of(msgs), "es").wer
    assert wer is not None and wer < 0.45, (wer, text_of(msgs))
    assert "energía" in text_of(msgs).lower()


def test_auto_detects_spanish_and_reports_it(runs: dict[str, list[dict]]) -> None:
    msgs = runs["auto"]
    sessions = [m for m in msgs if m["type"] == "session"]
    assert "language" not in sessions[0], "not known before any speech"
    assert [s.get("language") for s in sessions[1:]] == ["es"], sessions
    first_final = next(i for i, m in enumerate(msgs) if m["type"] == "transcript" and m["final"])
    assert msgs.index(sessions[1]) < first_final, "the language is reported before its first final"
    truth = load_truth(DATA / "lecture_es")
    assert word_errors(truth.speech_text, text_of(msgs), "es").wer < 0.45


def test_translation_is_english_and_both_announcements_alert_with_their_dates(
    runs: dict[str, list[dict]], spanish: Lecture
) -> None:
    msgs = runs["translate"]
    assert msgs[-1] == {"type": "end"} and not [m for m in msgs if m["type"] == "error"]
    english = load_truth(DATA / "lecture_es", translated=True)
    wer = word_errors(english.speech_text, text_of(msgs)).wer
    # A loose translation of synthetic Spanish: measured 0.73-0.81 against the reference; the point is
    # that it is English (no Spanish function words) and that the announcements survive it.
    assert wer is not None and wer < 0.9, (wer, text_of(msgs))
    words = text_of(msgs).lower().split()
    assert sum(w in {"el", "la", "de", "que", "en", "los", "las", "es"} for w in words) <= len(words) // 20
    alerts = [m for m in msgs if m["type"] == "alert"]
    exact = 0
    for expected in spanish.truth["alerts"]:
        near = [a for a in alerts if abs(a["start"] - expected["start"]) < 2.0]
        assert near, (expected, alerts, text_of(msgs))
        # Dated in the right month; the day itself is the translation's: on an AMD EPYC base's int8
        # decoding renders "el veintiocho de abril" as "the 20th of April" (however the audio is
        # cut), so one of the two may carry a mistranslated day, not both.
        month = expected["month_day"].split("-")[0]
        assert any((a["date"] or "")[5:7] == month for a in near), (expected, near)
        exact += any((a["date"] or "").endswith(expected["month_day"]) for a in near)
        if expected["category"] == "exam":  # "the partial exam is the 14th of March"
            assert [a["category"] for a in near] == ["exam"], near
    assert exact >= len(spanish.truth["alerts"]) - 1, alerts
    assert len(alerts) == 2, alerts


def test_a_language_the_model_cannot_do_is_refused_not_transcribed(stack: Stack, spanish: Lecture) -> None:
    start = {"type": "start", "language": "es"}
    msgs = asyncio.run(stream(stack.ws, spanish.pcm[: 32000 * 10], start=start))
    errors = [m for m in msgs if m["type"] == "error"]
    assert [e["code"] for e in errors] == ["language_unsupported"], msgs
    assert "tiny.en" in errors[0]["message"] and "'es'" in errors[0]["message"]
    assert not [m for m in msgs if m["type"] in ("transcript", "session")], msgs
    assert msgs[-1] == {"type": "end"}


async def page_form(http: str, choose: dict | None = None) -> dict:
    """The setup form of the page served at `http` once its language list is loaded: the options, the
    translate option, and the start message it would send (after `choose`: {"language", "translate"})."""
    async with open_page(http, permissions=()) as opened:
        page = opened.page
        await page.wait_for_function("document.getElementById('language').dataset.model !== undefined")
        if choose:
            await page.select_option("#language", choose["language"])
            if choose.get("translate"):
                await page.check("#translate")
        return await page.evaluate(
            """async () => {
            const m = await import('/static/settings.js');
            const form = document.getElementById('setup');
            return {
              options: [...form.elements.language.options].map((o) => [o.value, o.textContent]),
              translateShown: !document.getElementById('translate-option').hidden,
              start: m.startMessage(m.readSettings(form)),
            };
          }"""
        )


@pytest.mark.skipif(missing_browser() is not None, reason=str(missing_browser()))
def test_the_page_offers_what_the_model_can_do(base_stack: Stack, stack: Stack) -> None:
    tiny = asyncio.run(page_form(stack.http))
    assert tiny["options"] == [["en", "English"]] and not tiny["translateShown"]
    assert tiny["start"]["task"] == "transcribe"
    base = asyncio.run(page_form(base_stack.http, {"language": "es", "translate": True}))
    codes = [code for code, _ in base["options"]]
    assert codes[:2] == ["en", "auto"] and {"es", "fr", "de", "ja"} <= set(codes) and len(codes) == 100
    assert ["es", "Spanish"] in base["options"] and base["translateShown"]
    assert base["start"]["language"] == "es" and base["start"]["task"] == "translate"


def test_a_hall_lecture_with_the_default_model(base_stack: Stack) -> None:
    """The SNR 12 dB hall recording of lecture 2 (reverb, ventilation floor, 8 dB quieter): every
    announcement alerted, nothing in noise, no final that says a sentence twice, WER under a bound
    (measured 20.0% streamed at 1x; the same model's best whole-file figure is 15.9%)."""
    hall = load_lecture("hall2_snr12")
    msgs = asyncio.run(stream(base_stack.ws, hall.pcm, start={"type": "start", "language": "en"}))
    assert msgs[-1] == {"type": "end"} and not [m for m in msgs if m["type"] == "error"]
    truth = load_truth(DATA / "hall2_snr12")
    wer = word_errors(truth.speech_text, text_of(msgs)).wer
    assert wer is not None and wer < 0.32, (wer, text_of(msgs))
    for f in finals(msgs):
        words = f["text"].lower().split()
        for n in range(3, len(words) // 2 + 1):
            assert not any(
                words[i : i + n] == words[i + n : i + 2 * n] for i in range(len(words) - 2 * n + 1)
            ), f
        for noise in hall.noise:
            assert min(f["end"], noise["end"]) - max(f["start"], noise["start"]) <= 0.3 or not f["text"], f
    alerts = [m for m in msgs if m["type"] == "alert"]
    for e in hall.truth["alerts"]:
        assert any(abs(a["start"] - e["start"]) < 2.0 for a in alerts), (e, alerts)
