"""End to end in a real browser: Chromium's fake microphone plays the lecture to the page.

The real stack (Redis, gateway, VAD, transcriber with the real model, alerts) serves the page; the
page captures the "microphone" through its AudioWorklet (resampled to 16 kHz PCM16), streams it
over /ws/transcribe, and shows the transcript and the alerts. The fake device plays in real time,
so only the first 25 s of tests/data/lecture1 are used: four sentences, the third of them
"Remember that the second lab report is due on Thursday before class."
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.browser_util import SocketLog, chromium_args, find_chromium, missing_browser, write_fake_mic
from tests.conftest import ROOT, Lecture, Stack

MISSING = missing_browser()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(MISSING is not None, reason=str(MISSING))]

CLIP_S = 25.0  # lecture1: proteins 2.6-6.5 s, membrane 8.0-11.8, lab report 13.7-18.3, selection 18.9-23.7
SILENCE_S = 4.0  # then silence; the file is played once (%noloop) and Stop comes before its end
TIMEZONE = "America/New_York"  # the page sends the browser's zone; the alert's date is resolved in it
ARTIFACTS = ROOT / "tests" / "artifacts"
THURSDAY = 3


def next_weekday(today: date, weekday: int) -> date:
    return today + timedelta(days=(weekday - today.weekday() - 1) % 7 + 1)


def today_in(zone: str) -> date:
    return datetime.now(ZoneInfo(zone)).date()


async def test_live_lecture_in_the_browser(stack: Stack, lecture1: Lecture, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright, expect

    executable = find_chromium()
    mic = write_fake_mic(lecture1.pcm, tmp_path / "mic.wav", seconds=CLIP_S, silence_s=SILENCE_S)
    first_day = today_in(TIMEZONE)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=executable, headless=True, args=chromium_args(mic))
        try:
            context = await browser.new_context(
                locale="en-US", timezone_id=TIMEZONE, viewport={"width": 1280, "height": 900}
            )
            await context.grant_permissions(["microphone", "notifications"], origin=stack.http)
            page = await context.new_page()
            page_errors: list[str] = []
            page.on("pageerror", lambda exc: page_errors.append(str(exc)))
            log = SocketLog()
            log.attach(page)

            await page.goto(f"{stack.http}/")
            body = page.locator("body")
            status = page.locator("#status")
            await expect(body).to_have_attribute("data-phase", "idle")
            await page.fill("#course", "BIO 101")
            await page.fill("#keywords", "membrane, lab report")
            await page.click("#start")

            await expect(body).to_have_attribute("data-phase", "live", timeout=15_000)
            await expect(status).to_have_attribute("data-state", "live", timeout=15_000)
            await expect(page.locator("#session-id")).not_to_be_empty(timeout=15_000)
            await expect(page.locator("#stop")).to_be_enabled()

            finals = page.locator("#transcript .seg.final")
            # "The cell membrane ..." ends 11.8 s into the audio.
            await expect(finals.filter(has_text=re.compile(r"membrane", re.I)).first).to_be_visible(
                timeout=40_000
            )
            # "... the second lab report is due on Thursday ..." ends at 18.3 s.
            await expect(finals.filter(has_text=re.compile(r"lab report", re.I)).first).to_be_visible(
                timeout=30_000
            )
            deadline = page.locator("#alerts article.alert[data-category=deadline]").filter(
                has_text=re.compile(r"lab report", re.I)
            )
            await expect(deadline.first).to_be_visible(timeout=20_000)
            await expect(deadline.first.locator(".alert-when")).to_contain_text("Thu")
            await expect(deadline.first).to_contain_text("Deadline")
            await expect(page.locator("#alert-count")).not_to_have_text("0")
            await expect(body).to_have_attribute("data-phase", "live")  # still mid-lecture
            await page.screenshot(path=str(ARTIFACTS / "browser-mid-lecture.png"), full_page=True)

            # Stop once the page has sent the last sentence ("Natural selection ...", ends 23.7 s) and the
            # pause after it; the server still owes its transcript, which must come before "end".
            await page.wait_for_function(
                "seconds => window.classrec.recording.sentSeconds >= seconds", arg=CLIP_S, timeout=30_000
            )
            await page.click("#stop")
            await expect(body).to_have_attribute("data-phase", "ended", timeout=60_000)
            await expect(status).to_have_attribute("data-state", "ended")
            await expect(status).to_have_text("ended")

            # The page: one element per segment, in segment order, every one final.
            segs = await page.eval_on_selector_all(
                "#transcript .seg",
                "els => els.map(e => ({segment: Number(e.dataset.segment), final: e.classList.contains('final'),"
                " text: e.querySelector('.text').textContent}))",
            )
            numbers = [s["segment"] for s in segs]
            assert numbers == sorted(set(numbers)), f"segments out of order or duplicated: {numbers}"
            assert all(s["final"] for s in segs), segs
            texts = [s["text"].strip().lower() for s in segs if s["text"].strip()]
            assert len(texts) == len(set(texts)), f"a sentence was shown twice: {texts}"
            joined = " ".join(texts)
            spots = [joined.find(w) for w in ("protein", "membrane", "lab report", "population")]
            assert -1 not in spots and spots == sorted(spots), joined
            alert_data = await page.evaluate("() => window.classrec.alerts.alerts")
            notices = await page.locator("#notices .notice").all_inner_texts()
            inputs = await page.evaluate(
                "() => ({rate: window.classrec.recording.capture.inputRate,"
                " sent: window.classrec.recording.sentSeconds, clock: window.classrec.recording.clock.seconds})"
            )
            assert not page_errors, page_errors
            print(
                f"\nbrowser: device {inputs['rate']} Hz, sent {log.sent_audio_frames} frames = "
                f"{log.sent_audio_bytes / 32000:.1f} s in {inputs['clock']:.1f} s; finals: {texts}"
            )
        finally:
            await browser.close()

    # What went over the wire: the start message, whole PCM16 frames, then stop; one socket.
    assert log.sockets == 1
    assert [m["type"] for m in log.sent_text] == ["start", "stop"], log.sent_text
    start = log.sent_text[0]
    assert start["keywords"] == ["membrane", "lab report"] and start["timezone"] == TIMEZONE
    assert log.odd_frames == 0
    sent_s = log.sent_audio_bytes / 32000
    assert abs(sent_s - inputs["sent"]) < 0.01, (sent_s, inputs)
    # 16 kHz after the worklet's resampling, whatever the device rate: as long as it was recorded.
    assert 0.85 * inputs["clock"] <= sent_s <= 1.05 * inputs["clock"] + 0.5, (sent_s, inputs)

    # What came back: session first, then one final per segment, in segment order, then end.
    kinds = [m["type"] for m in log.received]
    assert kinds[0] == "session" and kinds[-1] == "end", kinds
    assert "error" not in kinds, log.of_type("error")
    final_segs = [m["segment"] for m in log.of_type("transcript") if m["final"]]
    assert final_segs == list(range(len(final_segs))), (
        f"finals not in segment order / duplicated: {final_segs}"
    )
    assert len(final_segs) == len(segs)
    assert not notices, notices

    # The deadline alert: once, on the lab-report sentence, dated the next Thursday in the browser's zone.
    deadlines = [a for a in log.of_type("alert") if a["category"] == "deadline"]
    assert len(deadlines) == 1, deadlines
    lab = next(m for m in log.of_type("transcript") if m["final"] and "lab report" in m["text"].lower())
    assert deadlines[0]["segment"] == lab["segment"]
    expected = {next_weekday(first_day, THURSDAY), next_weekday(today_in(TIMEZONE), THURSDAY)}
    assert date.fromisoformat(deadlines[0]["date"]) in expected, (deadlines[0], expected)
    assert [a["date"] for a in alert_data if a["category"] == "deadline"] == [deadlines[0]["date"]]
