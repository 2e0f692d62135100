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

from pathlib import Path
from typing import Any

from testkit.page import run_page
from tests.browser_util import FAKE_DEVICE_RATE, browser_marks, write_fake_mic
from tests.client import finals, stream
from tests.util import Lecture, Stack

pytestmark = browser_marks()

CLIP_S = 25.0  # four sentences of lecture1, the last ending at 23.7 s
SILENCE_S = 3.0


def view(messages: list[dict[str, Any]]) -> list[tuple[int, str, float, float]]:
    return [(m["segment"], m["text"], m["start"], m["end"]) for m in finals(messages)]


async def test_the_page_gets_the_transcript_of_the_audio_it_sent(
    stack: Stack, lecture1: Lecture, tmp_path: Path
) -> None:
    mic = write_fake_mic(
        lecture1.pcm, tmp_path / "mic.wav", seconds=CLIP_S, silence_s=SILENCE_S, wav_rate=FAKE_DEVICE_RATE
    )
    page = await run_page(stack.http, mic, CLIP_S)  # bench.page_vs_stream's: start, wait, stop, record
    assert page["error"] is None and not page.get("page_errors"), (page["error"], page.get("page_errors"))
    assert page["sockets"] == 1, f"the page opened {page['sockets']} sockets on a steady network"
    received, sent_text, audio = page["received"], page["sent_text"], page["sent_audio"]
    assert sent_text and sent_text[0]["type"] == "start", sent_text[:1]
    assert len(audio) % 2 == 0 and len(audio) >= CLIP_S * 32000, f"{len(audio) / 32000:.2f} s of audio sent"
    through_page = view(received)
    assert len([f for f in through_page if f[1].strip()]) >= 3, through_page

    start = {k: v for k, v in sent_text[0].items() if k != "session"}  # a new session, same settings
    direct = view(await stream(stack.ws, audio, start=start, speed=1.0))
    assert through_page == direct, (
        "\n".join(f"page {p}\ndirect {d}" for p, d in zip(through_page, direct, strict=False) if p != d)
        or f"{len(through_page)} finals through the page, {len(direct)} direct"
    )
