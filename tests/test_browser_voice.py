"""The voice lock in a real browser: the student holds "Hold to record the lecturer for 10 seconds"
while Chromium's fake microphone plays the lecturer (tests/data/voice/lock.enrol), the page enrols the
voice over POST /api/voices, and a lecture with 'Show them apart' (others: label) then shows the
lecturer's lines as usual and another speaker's line (the LJSpeech reader's "Printing ...", 14.4-21.9 s
into tests/data/voice/lock) apart. After a reload the saved voice of the course is selected again.

The fake device plays the file once for each capture: the enrolment's capture and the lecture's each
start at its beginning, so the file is the lecture (whose first 13 s are the lecturer alone)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.browser_util import DESKTOP, SocketLog, browser_marks, open_page, write_fake_mic
from tests.util import DATA, ROOT, Stack

pytestmark = browser_marks()
ARTIFACTS = ROOT / "tests" / "artifacts"
CLIP_S = 24.0  # lecturer 1.7-7.1 and 8.5-12.9 s, the LJSpeech reader 14.4-21.9 s


async def test_enrol_in_the_page_and_lock_a_lecture(stack: Stack, tmp_path: Path) -> None:
    from playwright.async_api import expect

    pcm = (DATA / "voice" / "lock.wav").read_bytes()[44:]
    mic = write_fake_mic(pcm, tmp_path / "mic.wav", seconds=CLIP_S, silence_s=20.0)
    log = SocketLog()
    async with open_page(stack.http, mic, before_load=log.attach, viewport=DESKTOP) as opened:
        page, errors = opened.page, opened.errors
        await page.fill("#course", "BIO 101 voice")
        await page.locator("#course").dispatch_event("change")

        record = page.locator("#voice-record")
        await expect(record).to_have_text("Hold to record the lecturer for 10 seconds")
        await record.hover()
        await page.mouse.down()
        await expect(record).to_have_class(re.compile(r"recording"), timeout=10_000)
        await expect(record).not_to_have_class(re.compile(r"recording"), timeout=20_000)  # stops at 10 s
        await page.mouse.up()
        status = page.locator("#voice-status")
        await expect(status).to_contain_text("Voice lock on", timeout=30_000)
        voice = await page.locator("#voice").input_value()
        assert voice, "the enrolled voice is selected"
        await page.select_option("#others", "label")

        await page.click("#start")
        body = page.locator("body")
        await expect(body).to_have_attribute("data-phase", "live", timeout=15_000)
        await expect(page.locator("#setup-summary")).to_contain_text(
            "voice lock: BIO 101 voice (others shown apart)"
        )
        other = page.locator("#transcript .seg.final.other")
        await expect(other.filter(has_text=re.compile(r"print", re.I)).first).to_be_visible(timeout=60_000)
        label = await other.first.evaluate(
            "e => getComputedStyle(e.querySelector('.text'), '::before').content"
        )
        assert "Other speaker" in label, label
        lecturer = page.locator("#transcript .seg.final[data-speaker=lecturer]")
        await expect(lecturer.filter(has_text=re.compile(r"mitochondria", re.I)).first).to_be_visible()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "browser-voice-lock.png"))
        await page.click("#stop")
        await expect(body).to_have_attribute("data-phase", "ended", timeout=60_000)
        starts = [m for c in log.connected for m in c.sent_text if m["type"] == "start"]
        assert starts and starts[0]["voice"] == voice and starts[0]["others"] == "label", starts
        assert 16 <= len(starts[0]["owner"]) <= 128
        lecturer_text = " ".join(await lecturer.all_inner_texts()).lower()
        assert "printing" not in lecturer_text, lecturer_text

        await page.reload()  # the saved voice of the course comes back by itself
        await page.fill("#course", "BIO 101 voice")
        await page.locator("#course").dispatch_event("change")
        await expect(page.locator("#voice")).to_have_value(voice, timeout=10_000)
        assert not errors, errors
