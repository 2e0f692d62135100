"""The page is a faithful client: through it, a lecture gets the transcript its audio gets directly.

Chromium's fake microphone plays the first 25 s of tests/data/lecture1 (written at the fake device's
rate, with the page's echo cancellation and noise suppression unticked) to the page, which streams it
to the real stack. The test records every binary frame the page sent and its start message, then
streams exactly those bytes, with the same start message, through the protocol client at 1x (what
bench.stream does). The pipeline is a pure function of the audio for a session on its own, so the
two sessions must get the same finals, word for word and with the same times: a frame the page lost,
duplicated, reordered or cut in two would show as a different transcript. (That the page's audio
is the clip itself, whole and undistorted, is tests/test_capture_rate.py's part; how much the
transcript moves for audio a microphone path cannot tell apart from the clip is measured by
`python -m bench.page_vs_stream --replay --floor`.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.browser_util import FAKE_DEVICE_RATE, chromium_args, find_chromium, missing_browser, write_fake_mic
from tests.client import finals, stream
from tests.conftest import Lecture, Stack

MISSING = missing_browser()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(MISSING is not None, reason=str(MISSING))]

CLIP_S = 25.0  # four sentences of lecture1, the last ending at 23.7 s
SILENCE_S = 3.0


async def run_page(stack: Stack, mic: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], bytes]:
    """What the page received, the text frames it sent, and its audio (its binary frames, in order)."""
    from playwright.async_api import async_playwright, expect

    received: list[dict[str, Any]] = []
    sent_text: list[dict[str, Any]] = []
    audio: list[bytes] = []
    sockets: list[Any] = []

    def on_socket(ws: Any) -> None:
        sockets.append(ws)
        ws.on("framereceived", lambda p: received.append(json.loads(p)) if isinstance(p, str) else None)
        ws.on("framesent", lambda p: sent_text.append(json.loads(p)) if isinstance(p, str) else audio.append(p))

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=find_chromium(), headless=True, args=chromium_args(mic))
        try:
            context = await browser.new_context(locale="en-US")
            await context.grant_permissions(["microphone"], origin=stack.http)
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("websocket", on_socket)
            await page.goto(f"{stack.http}/")
            body = page.locator("body")
            await expect(body).to_have_attribute("data-phase", "idle")
            await page.set_checked("#echo-cancellation", False)
            await page.set_checked("#noise-suppression", False)
            await page.click("#start")
            await expect(body).to_have_attribute("data-phase", "live", timeout=15_000)
            await page.wait_for_function(
                "s => window.classrec.recording.sentSeconds >= s", arg=CLIP_S, timeout=(CLIP_S + 30) * 1000
            )
            await page.click("#stop")
            await expect(body).to_have_attribute("data-phase", "ended", timeout=60_000)
            assert not errors, errors
        finally:
            await browser.close()
    assert len(sockets) == 1, f"the page opened {len(sockets)} sockets on a steady network"
    return received, sent_text, b"".join(audio)


def view(messages: list[dict[str, Any]]) -> list[tuple[int, str, float, float]]:
    return [(m["segment"], m["text"], m["start"], m["end"]) for m in finals(messages)]


async def test_the_page_gets_the_transcript_of_the_audio_it_sent(
    stack: Stack, lecture1: Lecture, tmp_path: Path
) -> None:
    mic = write_fake_mic(lecture1.pcm, tmp_path / "mic.wav", seconds=CLIP_S, silence_s=SILENCE_S,
                         wav_rate=FAKE_DEVICE_RATE)
    received, sent_text, audio = await run_page(stack, mic)
    assert sent_text and sent_text[0]["type"] == "start", sent_text[:1]
    assert len(audio) % 2 == 0 and len(audio) >= CLIP_S * 32000, f"{len(audio) / 32000:.2f} s of audio sent"
    through_page = view(received)
    assert len([f for f in through_page if f[1].strip()]) >= 3, through_page

    start = {k: v for k, v in sent_text[0].items() if k != "session"}  # a new session, same settings
    direct = view(await stream(stack.ws, audio, start=start, speed=1.0))
    assert through_page == direct, "\n".join(
        f"page {p}\ndirect {d}" for p, d in zip(through_page, direct, strict=False) if p != d
    ) or f"{len(through_page)} finals through the page, {len(direct)} direct"
