"""Sentence finals through the whole stack (real Redis, every service, tiny.en): the run-on lecture
(tests/data/runon1: the sentences of each paragraph 0.10-0.15 s apart, so that the VAD hears one
utterance per paragraph) streamed at real time. Every sentence's final comes within a bound of the
sentence's end, not at the end of its paragraph; the transcript is the lecture's, the alerts
(all but at most one) its announcements; the VAD's segments are consecutive, never overlap, and hold every spoken sentence."""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import time
from typing import Any

import aiohttp
import pytest

from tests.client import FRAME_BYTES, finals
from tests.transcripts import assert_heard
from tests.util import Lecture, Stack, load_lecture

pytestmark = pytest.mark.slow
# Without sentence finals only the last sentence of each paragraph (4 of 15) has its final within 4 s
# of its end, the median wait is ~6 s and the first sentence of a paragraph waits 10-15 s. With
# them tiny.en punctuates most run-on boundaries in its partials; one it writes with a comma ("room,
# but") is not cut, and that sentence waits for the next boundary or the paragraph's end.
SOON_S, SOON_SHARE = 4.0, 0.6  # at least this share of the sentences within SOON_S of their end
MEDIAN_BOUND_S = 3.5  # (the target, 2.5 s at the 95th percentile, is for a machine of its own)
EACH_BOUND_S = 21.0  # no sentence waits longer than the longest utterance (VAD_MAX_UTTERANCE_S)


async def timed_stream(url: str, pcm: bytes) -> list[tuple[float, dict[str, Any]]]:
    """Stream at real time; every message with its arrival in seconds after the first frame."""
    got: list[tuple[float, dict[str, Any]]] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        await ws.send_str(json.dumps({"type": "start", "language": "en", "timezone": "UTC"}))
        t0 = time.monotonic()

        async def read() -> None:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    data = json.loads(msg.data)
                    got.append((time.monotonic() - t0, data))
                    if data["type"] == "end":
                        return

        reader = asyncio.create_task(read())
        for i in range(0, len(pcm), FRAME_BYTES):
            await asyncio.sleep(max(0.0, t0 + i / 32000 - time.monotonic()))  # pacing, not syncing
            await ws.send_bytes(pcm[i : i + FRAME_BYTES])
        await ws.send_str(json.dumps({"type": "stop"}))
        await asyncio.wait_for(reader, 300)
    return got


@pytest.fixture(scope="module")
def runon1() -> Lecture:
    return load_lecture("runon1")


@pytest.fixture(scope="module")
def run(stack: Stack, runon1: Lecture) -> list[tuple[float, dict[str, Any]]]:
    return asyncio.run(timed_stream(stack.ws, runon1.pcm))


def test_every_sentence_final_comes_soon_after_the_sentence(
    run: list[tuple[float, dict[str, Any]]], runon1: Lecture
) -> None:
    first: dict[int, tuple[float, dict]] = {}
    for t, m in run:
        if m["type"] == "transcript" and m["final"]:
            first.setdefault(m["segment"], (t, m))
    waits = []
    for sentence in runon1.speech:  # the final of the segment the sentence ends in: the last before it
        before = [(m["start"], t) for t, m in first.values() if m["start"] < sentence["end"]]
        assert before, f"no final for {sentence['text']!r}"
        waits.append(max(before)[1] - sentence["end"])
    assert sum(w < SOON_S for w in waits) >= SOON_SHARE * len(waits), waits
    assert statistics.median(waits) < MEDIAN_BOUND_S, waits
    assert max(waits) < EACH_BOUND_S, waits


def test_transcript_and_alerts_are_the_lectures(
    run: list[tuple[float, dict[str, Any]]], runon1: Lecture
) -> None:
    messages = [m for _, m in run]
    assert messages[-1] == {"type": "end"}
    assert not [m for m in messages if m["type"] == "error"]
    fs = finals(messages)
    assert [f["segment"] for f in fs] == list(range(len(fs)))
    assert len(fs) > 5, "the four paragraphs are cut into sentences"
    assert_heard([s["text"] for s in runon1.speech], [f["text"] for f in fs])
    alerts = [m["category"] for m in messages if m["type"] == "alert"]
    expected = [a["category"] for a in runon1.truth["alerts"]]
    assert set(alerts) <= set(expected) and len(alerts) == len(set(alerts)), alerts
    # tiny.en hears "pop quiz" as "pub with" when that sentence stays inside a long uncut segment
    assert len(alerts) >= len(expected) - 1, alerts


def test_segments_are_consecutive_contiguous_at_cuts_and_hold_all_speech(
    run: list[tuple[float, dict[str, Any]]], runon1: Lecture, stack: Stack
) -> None:
    sid = run[0][1]["session"]
    log = stack.log.read_text()
    utterances = [
        (int(seg), float(a), float(b))
        for seg, a, b in re.findall(rf"sid={sid} seg=(\d+) utterance start=([\d.]+) end=([\d.]+)", log)
    ]
    cuts = {int(s) for s in re.findall(rf"sid={sid} seg=(\d+) sentence cut rev=", log)}
    assert cuts, "sentence ends cut the run-on paragraphs"
    assert [u[0] for u in utterances] == list(range(len(utterances)))
    for (seg, _, end), (_, start, _) in zip(utterances, utterances[1:], strict=False):
        assert start >= end, "no audio in two segments"
        if seg in cuts:
            assert start == end, "nothing lost at a cut: the next segment starts where the cut one ends"
    for sentence in runon1.speech:
        inside = sum(max(0.0, min(b, sentence["end"]) - max(a, sentence["start"])) for _, a, b in utterances)
        assert inside >= sentence["end"] - sentence["start"] - 0.02, (
            f"{sentence['text']!r} not all in segments"
        )
