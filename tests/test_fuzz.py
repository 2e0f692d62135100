"""Hostile frame sequences at the gateway (hypothesis): malformed and truncated JSON, unknown types,
invalid starts and stops, odd-length and empty binary frames, frames just over 1 MiB, start and stop
out of order, start after stop, repeated stop, abrupt closes.

Each connection must get exactly the error frames a small model of the protocol predicts (README, The
WebSocket protocol) and end with `end`, or with close 1009 after an oversized frame; meanwhile a
well-behaved session, started before the fuzz and checked after it, gets its whole transcript.
Runs for a minute or two.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.client import collect, stream
from tests.faults_util import alert_categories, check_transcript
from tests.util import Lecture, Stack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

LIMIT = 1 << 20
CLIP_S = 45.0  # the well-behaved session: six sentences, the deadline and the exam

# A generated frame is (kind, payload): the kind is what the protocol makes of it.
Frame = tuple[str, str | bytes]


def classify_text(text: str) -> str:
    try:
        raw = json.loads(text)
    except ValueError:
        return "bad_json"
    kind = raw.get("type") if isinstance(raw, dict) else None
    return "skip" if kind in ("start", "stop", "flag") else "unknown_type"


VALID = [
    json.dumps({"type": "start", "language": "en"}),
    json.dumps({"type": "start", "keywords": ["exam"], "prompt": "biology"}),
    json.dumps({"type": "stop"}),
]
any_text = st.text(max_size=40).map(lambda t: (classify_text(t), t)).filter(lambda f: f[0] != "skip")
truncated = st.sampled_from(VALID).flatmap(
    lambda v: st.integers(1, len(v) - 1).map(lambda k: ("bad_json", v[:k]))
)
unknown = st.one_of(
    st.fixed_dictionaries({"type": st.text(max_size=8).filter(lambda t: t not in ("start", "stop", "flag"))}),
    st.integers(),
    st.lists(st.integers(), max_size=3),
    st.none(),
    st.just({}),
).map(lambda v: ("unknown_type", json.dumps(v)))
invalid = st.sampled_from(
    [
        {"type": "start", "keywords": "not a list"},
        {"type": "start", "language": 5},
        {"type": "start", "nonsense": True},
        {"type": "stop", "now": 1},
    ]
).map(lambda v: ("bad_message", json.dumps(v)))
start = st.sampled_from(VALID[:2]).map(lambda v: ("start", v))
start_unknown = st.just(("start_unknown", json.dumps({"type": "start", "session": "no-such-session-fuzz"})))
stop = st.just(("stop", VALID[2]))
audio = st.binary(max_size=3200).map(lambda b: ("audio", b[: len(b) // 2 * 2]))  # empty included
odd = st.binary(max_size=3200).map(lambda b: ("odd", b if len(b) % 2 else b + b"\x01"))
oversized = st.sampled_from([b"\x00" * (LIMIT + 2), "x" * (LIMIT + 1)]).map(lambda f: ("oversized", f))
GROUPS = {
    "junk": st.one_of(any_text, truncated, unknown, invalid),
    "protocol": st.one_of(start, start_unknown, stop),
    "audio": audio,
    "odd": odd,
    "oversized": oversized,
}
# Drawn by group, so that each kind turns up in a few dozen examples.
frame = st.sampled_from(
    ["junk", "protocol", "audio", "odd", "junk", "protocol", "audio", "oversized"]
).flatmap(GROUPS.__getitem__)
# How a connection ends: "stop" (then read to the end), or "close" (dropped without a word).
ending = st.sampled_from(["stop", "stop", "close"])


@dataclass
class Expected:
    codes: list[str] = field(default_factory=list)  # errors before the first stop took effect
    after_stop: list[str] = field(default_factory=list)  # errors after it (the end may come first)
    oversized: bool = False  # the connection is closed with 1009 (if it was not ended before)


def predict(frames: list[Frame]) -> Expected:
    """The error frames a connection gets, by the README's protocol."""
    exp, opened, stopped = Expected(), False, False
    for kind, _ in frames:
        codes = exp.after_stop if stopped else exp.codes
        if kind == "oversized":
            exp.oversized = True
            break
        if kind in ("bad_json", "unknown_type", "bad_message"):
            codes.append(kind)
        elif kind in ("start", "start_unknown"):
            if opened:
                codes.append("already_started")
            elif kind == "start_unknown":
                codes.append("unknown_session")
            opened = True
        elif kind == "stop":
            if stopped:
                codes.append("already_stopped")
            opened = stopped = True
        elif stopped:  # audio or odd
            codes.append("audio_after_stop")
        elif kind == "odd":
            codes.append("odd_frame")
        else:
            opened = True
    return exp


async def throw(url: str, frames: list[Frame], end: str) -> tuple[list[dict[str, Any]], int | None]:
    messages: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        try:
            for _, payload in frames:
                if ws.closed:
                    break
                await (ws.send_bytes(payload) if isinstance(payload, bytes) else ws.send_str(payload))
            if end == "close":
                return messages, None
            if not ws.closed:
                await ws.send_str(VALID[2])
        except ConnectionError:  # the server closed it (1009) while we were sending
            pass
        await asyncio.wait_for(collect(ws, messages), 90)
        if not ws.closed:
            await ws.receive()
        return messages, ws.close_code


def check(frames: list[Frame], end: str, messages: list[dict[str, Any]], close_code: int | None) -> None:
    if end == "close":
        return
    exp = predict([*frames, ("stop", VALID[2])])
    codes = [m["code"] for m in messages if m["type"] == "error"]
    assert [m for m in messages if m["type"] == "session"][1:] == [], "one session message at most"
    if messages and messages[-1] == {"type": "end"}:
        assert codes[: len(exp.codes)] == exp.codes, (codes, exp)
        rest = codes[len(exp.codes) :]
        assert rest == exp.after_stop[: len(rest)], (codes, exp)
        assert any(m["type"] == "session" for m in messages)
    else:
        # Closed for an oversized frame: errors still queued for sending may be cut off.
        assert exp.oversized and close_code == 1009, (messages, close_code, exp)
        assert codes == (exp.codes + exp.after_stop)[: len(codes)], (codes, exp)


def test_fuzzed_frames_never_break_the_gateway(stack: Stack, lecture1: Lecture) -> None:
    # A well-behaved session streams beside the fuzz, in its own thread and event loop.
    result: dict[str, Any] = {}

    def good_session() -> None:
        try:
            pcm = lecture1.pcm[: int(CLIP_S * 32000)]
            result["messages"] = asyncio.run(stream(stack.ws, pcm, start={"type": "start"}, speed=2))
        except BaseException as e:  # reported by the main thread
            result["error"] = e

    good = threading.Thread(target=good_session)
    good.start()

    @settings(
        max_examples=30,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(frames=st.lists(frame, max_size=8), end=ending)
    def fuzz(frames: list[Frame], end: str) -> None:
        messages, close_code = asyncio.run(throw(stack.ws, frames, end))
        check(frames, end, messages, close_code)

    fuzz()
    good.join(180)
    assert not good.is_alive(), "the well-behaved session did not end"
    assert "error" not in result, result.get("error")
    check_transcript([result["messages"]], lecture1, CLIP_S)
    assert alert_categories([result["messages"]]) == ["deadline", "exam"]
    # The server still serves a new session after the fuzz.
    again = asyncio.run(stream(stack.ws, b"\x00\x00" * 16000))
    assert [m["type"] for m in again] == ["session", "end"]
