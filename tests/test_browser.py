"""End to end in a real browser: Chromium's fake microphone plays the lecture to the page.

The real stack (Redis, gateway, VAD, transcriber with the real model, alerts) serves the page; the
page captures the "microphone" through its AudioWorklet (resampled to 16 kHz PCM16), streams it
over /ws/transcribe, and shows the transcript and the alerts. The fake device plays in real time,
so only the first 25 s of tests/data/lecture1 are used: four sentences, the third of them
"Remember that the second lab report is due on Thursday before class."

In the middle of that third sentence the test cuts the network (its WebSocket goes through the test,
see `SocketLog.route`) for a few seconds: the page must buffer the audio, reconnect, resume the same
session, and lose no word. At the end the .srt download must parse. A screenshot of the page
mid-lecture is written to tests/artifacts/ (and to docs/screenshot.png with UPDATE_SCREENSHOT=1).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.browser_util import SocketLog, browser_marks, open_page, parse_srt, write_fake_mic
from tests.util import ROOT, Lecture, Stack

pytestmark = browser_marks()

CLIP_S = 25.0  # lecture1: proteins 2.6-6.5 s, membrane 8.0-11.8, lab report 13.7-18.3, selection 18.9-23.7
SILENCE_S = 4.0  # then silence; the file is played once (%noloop) and Stop comes before its end
TIMEZONE = "America/New_York"  # the page sends the browser's zone; the alert's date is resolved in it
ARTIFACTS = ROOT / "tests" / "artifacts"
THURSDAY = 3
DROP_AT_S = 15.0  # sent audio when the network drops: 1.3 s into "Remember that the second lab report ..."
OFFLINE_S = 3.0  # how long it stays down; the page buffers meanwhile
VIEWPORT = {"width": 1280, "height": 800}
SCREENSHOT = ARTIFACTS / "browser-mid-lecture.png"
README_SCREENSHOT = ROOT / "docs" / "screenshot.png"
# The known words of each sentence of the clip, in order (what the model reliably gets right; tiny.en
# hears "leaves" as "leans" and "proteins" as "protees" now and then).
SENTENCES = [
    ("fold", "determine"),
    ("membrane", "enters"),
    ("lab report", "thursday"),
    ("selection", "population"),
]


def next_weekday(today: date, weekday: int) -> date:
    return today + timedelta(days=(weekday - today.weekday() - 1) % 7 + 1)


def today_in(zone: str) -> date:
    return datetime.now(ZoneInfo(zone)).date()


async def test_live_lecture_in_the_browser(stack: Stack, lecture1: Lecture, tmp_path: Path) -> None:
    from playwright.async_api import expect

    mic = write_fake_mic(lecture1.pcm, tmp_path / "mic.wav", seconds=CLIP_S, silence_s=SILENCE_S)
    first_day = today_in(TIMEZONE)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    log = SocketLog()
    async with open_page(
        stack.http,
        mic,
        permissions=("microphone", "notifications"),
        before_load=log.route,  # the page's WebSocket goes through the test, which can cut it
        timezone_id=TIMEZONE,
        viewport=VIEWPORT,
    ) as opened:
        page, page_errors = opened.page, opened.errors

        body = page.locator("body")
        status = page.locator("#status")
        await expect(body).to_have_attribute("data-phase", "idle")
        await page.fill("#course", "BIO 101")
        await page.fill("#keywords", "membrane, lab report")
        await page.click("#start")

        await expect(body).to_have_attribute("data-phase", "live", timeout=15_000)
        await expect(status).to_have_attribute("data-state", "live", timeout=15_000)
        session_id = page.locator("#session-id")
        await expect(session_id).not_to_be_empty(timeout=15_000)
        sid = await session_id.text_content()
        await expect(page.locator("#stop")).to_be_enabled()

        finals = page.locator("#transcript .seg.final")
        # "The cell membrane ..." ends 11.8 s into the audio.
        await expect(finals.filter(has_text=re.compile(r"membrane", re.I)).first).to_be_visible(
            timeout=40_000
        )

        # The network drops in the middle of the third sentence and stays down for OFFLINE_S.
        await page.wait_for_function(
            "seconds => window.classrec.recording.sentSeconds >= seconds", arg=DROP_AT_S, timeout=30_000
        )
        await log.drop()
        await expect(status).to_have_attribute("data-state", "reconnecting", timeout=5_000)
        await asyncio.sleep(OFFLINE_S)  # the outage itself, not a synchronisation
        buffered = await page.evaluate("() => window.classrec.recording.conn.bufferedSeconds")
        assert buffered >= 1.0, f"the page did not buffer while offline: {buffered:.2f} s"
        log.restore()
        await expect(status).to_have_attribute("data-state", "live", timeout=15_000)
        await expect(session_id).to_have_text(sid)
        await expect(body).to_have_attribute("data-phase", "live")

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
        await page.wait_for_function(
            "() => document.querySelectorAll('#transcript .seg.final').length >= 3", timeout=10_000
        )
        await expect(body).to_have_attribute("data-phase", "live")  # still mid-lecture
        await page.screenshot(path=str(SCREENSHOT))
        if os.environ.get("UPDATE_SCREENSHOT") == "1":
            README_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(SCREENSHOT, README_SCREENSHOT)

        # Stop once the page has sent the last sentence ("Natural selection ...", ends 23.7 s) and the
        # pause after it; the server still owes its transcript, which must come before "end".
        await page.wait_for_function(
            "seconds => window.classrec.recording.sentSeconds >= seconds", arg=CLIP_S, timeout=30_000
        )
        await page.click("#stop")
        await expect(body).to_have_attribute("data-phase", "ended", timeout=60_000)
        await expect(status).to_have_attribute("data-state", "ended")
        await expect(status).to_have_text("ended")

        # The page: one element per segment, numbered 0..N-1, every one final.
        segs = await page.eval_on_selector_all(
            "#transcript .seg",
            "els => els.map(e => ({segment: Number(e.dataset.segment), final: e.classList.contains('final'),"
            " text: e.querySelector('.text').textContent}))",
        )
        numbers = [s["segment"] for s in segs]
        assert numbers == list(range(len(segs))), f"segments missing, out of order or duplicated: {numbers}"
        assert all(s["final"] for s in segs), segs
        texts = [s["text"].strip().lower() for s in segs if s["text"].strip()]
        assert len(texts) == len(set(texts)), f"a sentence was shown twice: {texts}"
        assert_known_words(" ".join(texts))
        alert_data = await page.evaluate("() => window.classrec.alerts.alerts")
        notices = await page.locator("#notices .notice").all_inner_texts()
        inputs = await page.evaluate(
            "() => ({rate: window.classrec.recording.capture.inputRate,"
            " sent: window.classrec.recording.sentSeconds, clock: window.classrec.recording.clock.seconds})"
        )

        # The .srt of the session, as the page's history panel downloads it: with the page's owner
        # key (the session is its owner's; without the key it does not exist).
        owner = await page.evaluate("() => localStorage.getItem('classrec.owner')")
        srt_url = f"{stack.http}/api/sessions/{sid}/transcript.srt"
        assert (await page.request.get(srt_url)).status == 404
        resp = await page.request.get(srt_url, headers={"X-ClassRec-Owner": owner})
        assert resp.ok, (resp.status, await resp.text())
        assert "subrip" in resp.headers.get("content-type", ""), resp.headers
        srt = await resp.text()
        assert not page_errors, page_errors
        print(
            f"\nbrowser: device {inputs['rate']} Hz, sent {log.sent_audio_frames} frames = "
            f"{log.sent_audio_bytes / 32000:.1f} s in {inputs['clock']:.1f} s over {len(log.connected)} "
            f"connections ({log.sockets - len(log.connected)} refused offline), {buffered:.1f} s buffered; "
            f"finals: {texts}"
        )

    cues = parse_srt(srt)
    assert_known_words(" ".join(c.text for c in cues).lower())
    assert cues[-1].end_s <= CLIP_S + SILENCE_S + 1, cues[-1]

    # What went over the wire: two connections to the server (refused attempts while offline aside).
    first, second = log.connected
    assert log.drops == 1
    assert [m["type"] for m in first.sent_text] == ["start"], first.sent_text
    assert [m["type"] for m in second.sent_text] == ["start", "stop"], second.sent_text
    start, resume = first.sent_text[0], second.sent_text[0]
    assert "session" not in start, start
    assert resume.get("session") == sid, (resume, sid)
    for msg in (start, resume):
        assert msg["keywords"] == ["membrane", "lab report"] and msg["timezone"] == TIMEZONE
        assert msg["owner"] == owner  # the session is this browser's
    assert all(not c.sent_text and not c.audio_bytes for c in log.connections if c.refused)
    assert log.odd_frames == 0
    assert first.audio_bytes / 32000 >= DROP_AT_S - 0.5, first.audio_bytes
    assert second.audio_bytes / 32000 >= OFFLINE_S, second.audio_bytes  # the buffered audio, then the rest
    # No frame lost: every frame the page counted went out; the resume sent again, from its `offset`
    # (the first byte the server had not acknowledged), what the first connection may not have stored.
    assert 0 < resume["offset"] <= first.audio_bytes, (resume, first.audio_bytes)
    sent_s = len(log.captured_audio()) / 32000
    assert abs(sent_s - inputs["sent"]) < 0.01, (sent_s, inputs)
    assert (
        first.audio_bytes + second.audio_bytes - len(log.captured_audio())
        == first.audio_bytes - resume["offset"]
    )
    # 16 kHz after the page's resampling, whatever the device rate: as long as it was recorded.
    assert 0.85 * inputs["clock"] <= sent_s <= 1.05 * inputs["clock"] + 0.5, (sent_s, inputs)

    # What came back on each: the same session first; the resumed one replays the session's events,
    # so each holds finals 0, 1, 2, ... once each, in order; the last ends with "end".
    session = {"type": "session", "session": sid}
    # A new session says its language (the page's default) and holds no audio; the resumed one, the
    # audio the server held: part of what the first connection sent.
    assert first.received[0] == {**session, "language": "en", "received": 0}, first.received[0]
    resumed = second.received[0]
    assert {k: v for k, v in resumed.items() if k != "received"} == session, resumed
    assert 0 < resumed["received"] <= first.audio_bytes, (resumed, first.audio_bytes)
    assert second.received[-1]["type"] == "end" and "end" not in [m["type"] for m in first.received]
    assert "error" not in [m["type"] for m in log.received], log.of_type("error")
    text_of: dict[int, str] = {}
    for conn in (first, second):
        conn_finals = [m for m in conn.of_type("transcript") if m["final"]]
        segments = [m["segment"] for m in conn_finals]
        assert segments == list(range(len(segments))), f"finals not 0..N-1 once each: {segments}"
        for m in conn_finals:
            assert text_of.setdefault(m["segment"], m["text"]) == m["text"], "a final changed on resume"
    assert len([m for m in second.of_type("transcript") if m["final"]]) == len(segs) == len(text_of)
    assert not notices, notices

    # The deadline alert: once per connection (replayed on resume), shown once, on the lab-report
    # sentence, dated the next Thursday in the browser's zone.
    deadlines = [a for a in second.of_type("alert") if a["category"] == "deadline"]
    assert len(deadlines) == 1, deadlines
    assert len([a for a in first.of_type("alert") if a["category"] == "deadline"]) <= 1
    lab = next(m for m in second.of_type("transcript") if m["final"] and "lab report" in m["text"].lower())
    assert deadlines[0]["segment"] == lab["segment"]
    expected = {next_weekday(first_day, THURSDAY), next_weekday(today_in(TIMEZONE), THURSDAY)}
    assert date.fromisoformat(deadlines[0]["date"]) in expected, (deadlines[0], expected)
    assert [a["date"] for a in alert_data if a["category"] == "deadline"] == [deadlines[0]["date"]]


def assert_known_words(text: str) -> None:
    """Every sentence of the clip is there: the known words of each, in order."""
    at = 0
    for words in SENTENCES:
        for word in words:
            found = text.find(word, at)
            assert found >= 0, f"{word!r} missing (or out of order) after position {at} in {text!r}"
            at = found + len(word)
