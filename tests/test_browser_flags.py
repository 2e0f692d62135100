"""Flags in a real browser: set live on the transcript (a tap with a note, a press-and-hold, the F key),
confirmed by the server, kept through a network drop and resume and through a reload, shown in the
lecture view and in the Markdown export. Chromium's fake microphone plays the first sentences of
tests/data/lecture1 to the page; the real stack transcribes them.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from tests.browser_util import DESKTOP, SocketLog, browser_marks, open_page, write_fake_mic
from tests.util import Lecture, Stack

pytestmark = browser_marks()

CLIP_S = 19.0  # proteins 2.6-6.5 s, membrane 8.0-11.8, lab report 13.7-18.3
SILENCE_S = 4.0
NOTE = "didn't get this"


async def test_flags_live_resume_reload_view_and_export(
    stack: Stack, lecture1: Lecture, tmp_path: Path
) -> None:
    from playwright.async_api import expect

    mic = write_fake_mic(lecture1.pcm, tmp_path / "mic.wav", seconds=CLIP_S, silence_s=SILENCE_S)
    log = SocketLog()
    async with open_page(stack.http, mic, before_load=log.route, viewport=DESKTOP) as opened:
        page, errors = opened.page, opened.errors
        await page.fill("#course", "BIO 101")
        await page.fill("#names", "Maria Garcia")
        await page.click("#start")
        sid_el = page.locator("#session-id")
        await expect(sid_el).not_to_be_empty(timeout=15_000)
        sid = await sid_el.text_content()
        assert log.connections[0].sent_text[0]["names"] == ["Maria Garcia"]

        finals = page.locator("#transcript .seg.final")
        first = finals.filter(has_text=re.compile(r"fold|determine", re.I)).first
        await expect(first).to_be_visible(timeout=40_000)

        # A tap opens the note form; Enter flags the sentence with the note.
        await first.locator(".text").click()
        form = page.locator(".flag-form")
        await expect(form).to_be_visible()
        await form.locator(".flag-note").fill(NOTE)
        await form.locator(".flag-note").press("Enter")
        confirmed = page.locator("#flags .flag-item:not(.pending)")
        await expect(confirmed.filter(has_text=NOTE)).to_have_count(1, timeout=10_000)
        await expect(first).to_have_class(re.compile(r"\bflagged\b"))
        start, end = await first.get_attribute("data-start"), await first.get_attribute("data-end")

        # A press-and-hold flags at once, with no note.
        box = await first.locator(".text").bounding_box()
        assert box
        await page.mouse.move(box["x"] + 6, box["y"] + 8)  # on the sentence's first word
        await page.mouse.down()
        await page.wait_for_timeout(800)  # holding the button is the gesture under test
        await page.mouse.up()
        await expect(form).to_have_count(0)

        # F flags the last 15 s; the form opens focused; Enter sends it.
        await page.locator("body").press("f")
        await expect(form).to_be_visible()
        await page.keyboard.press("Enter")
        await expect(confirmed).to_have_count(3, timeout=10_000)
        await expect(page.locator("#flag-count")).to_have_text("3")
        # The tap and the hold are on words of one sentence: each flags the word under the pointer
        # (its timings from the final), the tap with the note, the hold without.
        segment = int(await first.get_attribute("data-segment") or -1)
        final = next(
            m for m in log.connections[0].of_type("transcript") if m["final"] and m["segment"] == segment
        )
        words = [(round(w[0], 2), round(w[1], 2)) for w in final["words"]]
        sent = [m for m in log.connections[0].sent_text if m["type"] == "flag"]
        assert len(sent) == 3 and sent[0]["note"] == NOTE and sent[1]["note"] == "", sent
        assert (sent[0]["start"], sent[0]["end"]) in words, (sent[0], words)
        assert (sent[1]["start"], sent[1]["end"]) in words[:2], (sent[1], words)  # held on its first word
        assert float(start or 0) <= sent[0]["start"] <= sent[0]["end"] <= float(end or 0) + 0.01

        # The network drops and comes back: the resume replays the flags, none doubles.
        await log.drop()
        await expect(page.locator("#status")).to_have_attribute("data-state", "reconnecting", timeout=5_000)
        await asyncio.sleep(2.0)  # the outage itself
        log.restore()
        await expect(page.locator("#status")).to_have_attribute("data-state", "live", timeout=15_000)
        resumed = [c for c in log.connections if not c.refused][-1]
        await expect(page.locator("#flags .flag-item")).to_have_count(3, timeout=10_000)
        await page.wait_for_function("n => window.classrec.flags.flags.size === n", arg=3)

        await page.click("#stop")
        await expect(page.locator("body")).to_have_attribute("data-phase", "ended", timeout=90_000)
        assert len(resumed.of_type("flag")) == 3, resumed.of_type("flag")

        # After a reload the lecture view shows them.
        await page.reload()
        await page.locator("#history summary").click()
        item = page.locator(f'.history-item[data-session="{sid}"]')
        await item.locator("button[data-action=view]").click()
        view = page.locator("#history-view")
        await expect(view.locator(".history-flag")).to_have_count(3, timeout=10_000)
        await expect(view.locator(".history-flag").filter(has_text=NOTE)).to_have_count(1)
        await expect(view.locator('.history-seg[data-flagged="true"]').first).to_be_visible()

        owner = await page.evaluate("() => localStorage.getItem('classrec.owner')")  # the session is its
        md_url = f"{stack.http}/api/sessions/{sid}/transcript.md"
        md = await (await page.request.get(md_url, headers={"X-ClassRec-Owner": owner})).text()
        section = md.split("## Flags", 1)[1].split("## Transcript", 1)[0]
        lines = [x for x in section.splitlines() if x.startswith("- [")]
        assert len(lines) == 3, section
        noted = next(x for x in lines if NOTE in x)
        assert re.match(r"- \[00:0\d\]\(http://[^)]*/\?review=" + re.escape(sid) + r"#t=[\d.]+\) ⚑", noted)
        assert re.search(r"“[^”]*(fold|determine)[^”]*”", noted, re.I), noted
        assert errors == [], errors
