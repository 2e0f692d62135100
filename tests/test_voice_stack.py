"""The voice lock through the whole stack: enrol the lecturer over HTTP, stream a lecture with three
interjections by other speakers (tests/data/voice/lock: flite 'rms' lectures; the real LJSpeech reader,
an espeak voice and flite 'slt' interrupt, one of them with no pause), in drop and label mode."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import jiwer
import pytest

from tests.client import finals, stream
from tests.transcripts import words
from tests.upload_util import form, until_done
from tests.util import DATA, Stack

pytestmark = pytest.mark.slow
OWNER = "voice-test-owner-0123456789"
TRUTH = json.loads((DATA / "voice" / "lock.json").read_text())


def spoken(speaker: str) -> list[dict]:
    return [s for s in TRUTH["segments"] if s["speaker"] == speaker]


async def enrol(stack: Stack, name: str) -> dict:
    form = aiohttp.FormData()
    form.add_field("file", (DATA / "voice" / "lock.enrol.ogg").read_bytes(), filename="lecturer.ogg")
    form.add_field("name", name)
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{stack.http}/api/voices", data=form, headers={"X-ClassRec-Owner": OWNER}) as resp,
    ):
        assert resp.status == 201, await resp.text()
        return await resp.json()


async def saved_voices(stack: Stack) -> list[dict]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{stack.http}/api/voices", headers={"X-ClassRec-Owner": OWNER}) as resp,
    ):
        return (await resp.json())["voices"]


@pytest.fixture(scope="module")
def voice(stack: Stack) -> str:
    got = asyncio.run(enrol(stack, "Biology, Dr. Rms"))
    assert 14 < got["seconds"] < 15.5
    return got["voice"]


def run(stack: Stack, voice: str, others: str) -> list[dict]:
    pcm = (DATA / "voice" / "lock.wav").read_bytes()[44:]
    start = {"type": "start", "owner": OWNER, "voice": voice, "others": others, "timezone": "UTC"}
    return asyncio.run(stream(stack.ws, pcm, start=start))


def check_lecturer(msgs: list[dict]) -> None:
    assert msgs[0]["type"] == "session" and msgs[-1] == {"type": "end"}
    assert not [m for m in msgs if m["type"] == "error"]
    fs = finals(msgs)
    assert [f["segment"] for f in fs] == list(range(len(fs)))
    lecturer = " ".join(f["text"] for f in fs if f.get("speaker") == "lecturer")
    ref = " ".join(s["text"] for s in spoken("lecturer"))
    assert jiwer.wer(" ".join(words(ref)), " ".join(words(lecturer))) < 0.3, lecturer
    alerts = sorted(a["category"] for a in msgs if a["type"] == "alert" and a["category"] != "custom")
    assert alerts == sorted(a["category"] for a in TRUTH["alerts"])


def test_drop_mode_keeps_the_lecturer_only(stack: Stack, voice: str) -> None:
    msgs = run(stack, voice, "drop")
    check_lecturer(msgs)
    fs = finals(msgs)
    assert all(f.get("speaker") in ("lecturer", "other") for f in fs)
    heard = set(words(" ".join(f["text"] for f in fs)))
    other_words = {w for s in spoken("other") for w in words(s["text"])} - {
        w for s in spoken("lecturer") for w in words(s["text"])
    }
    assert len(heard & other_words) <= 0.1 * len(other_words), heard & other_words
    dropped = [f for f in fs if f.get("speaker") == "other"]
    assert len(dropped) >= 2 and all(f["text"] == "" for f in dropped)
    for m in msgs:  # no partial of another speaker's words either
        if m["type"] == "transcript" and not m["final"]:
            assert not set(words(m["text"])) & {"printing", "battery", "laptop"}, m


def test_label_mode_transcribes_others_apart(stack: Stack, voice: str) -> None:
    msgs = run(stack, voice, "label")
    check_lecturer(msgs)
    others = " ".join(f["text"] for f in finals(msgs) if f.get("speaker") == "other")
    for w in ("printing", "battery"):  # the LJSpeech clip, flite slt's interjection
        assert w in words(others), others


def test_saved_voice_is_listed_and_unknown_voice_is_refused(stack: Stack, voice: str) -> None:
    listed = asyncio.run(saved_voices(stack))
    assert voice in [v["voice"] for v in listed]
    pcm = (DATA / "real" / "LJ001-0009.wav").read_bytes()[44:]
    start = {"type": "start", "owner": "someone-else-0123456789", "voice": voice}
    msgs = asyncio.run(stream(stack.ws, pcm, start=start))
    errors = [m for m in msgs if m["type"] == "error"]
    assert [e["code"] for e in errors] == ["unknown_voice"]
    assert msgs[-1] == {"type": "end"}
    assert "printing" in words(" ".join(f["text"] for f in finals(msgs)))  # goes on, unlocked


async def upload_locked(stack: Stack, voice: str) -> tuple[int, str]:
    headers = {"X-ClassRec-Owner": OWNER}
    async with aiohttp.ClientSession(stack.http, headers=headers) as http:  # an upload is its owner's
        data = (DATA / "voice" / "lock.wav").read_bytes()
        async with http.post(
            "/api/uploads", data=form(data, "lecture.wav", voice="nope"), headers=headers
        ) as resp:
            refused = resp.status
        async with http.post(
            "/api/uploads", data=form(data, "lecture.wav", voice=voice), headers=headers
        ) as resp:
            assert resp.status == 202, await resp.text()
            sid = (await resp.json())["session"]
        await until_done(http, sid)
        async with http.get(f"/api/sessions/{sid}") as resp:
            detail = await resp.json()
    return refused, " ".join(line["text"] for line in detail["transcript"])


def test_upload_with_a_voice_keeps_the_lecturer_only(stack: Stack, voice: str) -> None:
    refused, text = asyncio.run(upload_locked(stack, voice))
    assert refused == 400
    heard = set(words(text))
    assert {"mitochondria", "exam", "december"} <= heard, text
    assert not heard & {"printing", "battery", "laptop"}, text
