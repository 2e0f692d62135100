"""Uploaded recordings (`/api/uploads`) and the OpenAI-compatible route (`/v1/audio/transcriptions`),
on the whole real stack: real services, real Redis, the real tiny.en model. Clips are short (the
first sentences of lecture1), compressed ones made here with PyAV."""

from __future__ import annotations

import io
import re
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import av
import numpy as np
import openai
import pytest
from aiohttp.test_utils import TestClient, TestServer
from openai import OpenAI

from services.gateway import state
from services.gateway.app import make_app
from services.transcriber.backends import OpenAIBackend, Request
from shared.settings import GatewaySettings, TranscriberSettings
from tests.browser_util import missing_browser, open_page
from tests.upload_util import form, until_done
from tests.util import Lecture, Stack

RATE = 16_000
CLIP_S = 18.6  # lecture1's first three sentences; the third announces a deadline
SHORT_S = 7.2  # its first sentence: "Proteins fold into shapes that determine what they can do."


def pcm_of(lecture: Lecture, start_s: float, end_s: float) -> bytes:
    return lecture.pcm[int(start_s * RATE) * 2 : int(end_s * RATE) * 2]


def wav_bytes(pcm: bytes) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm)
    return buf.getvalue()


def encode(pcm: bytes, fmt: str, codec: str, rate: int) -> bytes:
    """PCM16 16 kHz mono as a compressed file (`webm`/libopus, `mp3`/libmp3lame...), with PyAV."""
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.frombuffer(pcm, np.int16)[None, :], format="s16", layout="mono")
        frame.sample_rate = RATE
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=rate)
        for f in resampler.resample(frame) + resampler.resample(None):
            out.mux(stream.encode(f))
        out.mux(stream.encode(None))
    return buf.getvalue()


@pytest.fixture(scope="module")
def short_mp3(lecture1: Lecture) -> bytes:
    return encode(pcm_of(lecture1, 0, SHORT_S), "mp3", "libmp3lame", RATE)


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(stack.http) as s:
        yield s


async def upload(http: aiohttp.ClientSession, data: bytes, filename: str, **fields: str) -> str:
    async with http.post("/api/uploads", data=form(data, filename, **fields)) as resp:
        body = await resp.json()
        assert resp.status == 202, body
    assert body["status"] == "feeding"
    return body["session"]


async def session_text(http: aiohttp.ClientSession, sid: str) -> tuple[dict[str, Any], str]:
    async with http.get(f"/api/sessions/{sid}") as resp:
        assert resp.status == 200
        detail = await resp.json()
    return detail, " ".join(line["text"] for line in detail["transcript"]).lower()


@pytest.mark.slow
async def test_wav_upload_is_transcribed_and_listed(
    http: aiohttp.ClientSession, lecture1: Lecture, stack: Stack
) -> None:
    pcm = pcm_of(lecture1, 0, CLIP_S)
    sid = await upload(
        http, wav_bytes(pcm), "bio.wav", language="en", keywords="lab report, membrane", course="BIO 101"
    )
    seen = await until_done(http, sid)

    fed = [p["fed_s"] for p in seen]
    assert fed == sorted(fed)
    last = seen[-1]
    assert last["session"] == sid and last["duration_s"] == pytest.approx(CLIP_S, abs=0.01)
    assert last["fed_s"] == pytest.approx(CLIP_S, abs=0.01)
    assert 15.0 < last["transcribed_s"] <= CLIP_S

    detail, text = await session_text(http, sid)
    assert detail["status"] == "ended" and detail["config"]["keywords"] == ["lab report", "membrane"]
    for word in ("protein", "membrane", "report", "thursday"):
        assert word in text, text
    assert any(a["category"] in ("deadline", "assignment") for a in detail["alerts"]), detail["alerts"]
    async with http.get("/api/sessions") as resp:
        listed = {s["id"]: s for s in (await resp.json())["sessions"]}
    assert listed[sid]["course"] == "BIO 101" and listed[sid]["segments"] >= 3


@pytest.mark.slow
async def test_webm_opus_upload_is_decoded_and_transcribed(
    http: aiohttp.ClientSession, lecture1: Lecture
) -> None:
    data = encode(pcm_of(lecture1, 0, 12.2), "webm", "libopus", 48_000)
    sid = await upload(http, data, "lecture.webm", language="auto")
    seen = await until_done(http, sid)
    assert seen[-1]["duration_s"] == pytest.approx(12.2, abs=0.1)
    _, text = await session_text(http, sid)
    assert "protein" in text and "membrane" in text, text


@pytest.mark.slow
async def test_upload_refusals(http: aiohttp.ClientSession) -> None:
    rng = np.random.default_rng(7)
    for data, name in (
        (rng.bytes(50_000), "noise.mp3"),
        (b"just some notes, not audio\n" * 100, "notes.txt"),
    ):
        async with http.post("/api/uploads", data=form(data, name)) as resp:
            assert resp.status == 400
            assert "audio" in (await resp.json())["error"]
    async with http.post("/api/uploads", data=form(b"", "empty.wav")) as resp:
        assert resp.status == 400 and "file" in (await resp.json())["error"]
    async with http.post("/api/uploads", data={"language": "en"}) as resp:  # urlencoded, no file
        assert resp.status == 400 and "multipart" in (await resp.json())["error"]
    async with http.post(
        "/api/uploads", data=form(wav_bytes(b"\0" * 3200), "a.wav", prompt="x" * 3000)
    ) as resp:
        assert resp.status == 400 and "prompt" in (await resp.json())["error"]
    async with http.get("/api/uploads/AAAAAAAAAAAAAAAAAAAAAAAA") as resp:
        assert resp.status == 404 and (await resp.json())["error"] == "unknown upload"
    async with http.get("/api/uploads/bad!id") as resp:
        assert resp.status == 400


async def test_upload_size_limit(redis_url: str) -> None:
    """413 beyond the limit, whether the body announces its length or comes chunked."""
    app = make_app(GatewaySettings(redis_url=redis_url))
    app[state.UPLOAD_LIMIT] = 50_000
    boundary = "classrec-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    body = head + b"\0" * 60_000 + f"\r\n--{boundary}--\r\n".encode()

    async def chunked() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 8192):
            yield body[i : i + 8192]

    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    async with TestClient(TestServer(app)) as client:
        for data in (form(b"\0" * 200_000, "big.wav"), chunked()):
            resp = await client.post(
                "/api/uploads", data=data, headers=None if isinstance(data, aiohttp.FormData) else headers
            )
            assert resp.status == 413 and "larger than" in (await resp.json())["error"]


@pytest.mark.slow
@pytest.mark.skipif(missing_browser() is not None, reason=str(missing_browser()))
async def test_upload_control_in_the_page(stack: Stack, short_mp3: bytes, tmp_path: Path) -> None:
    """The page's "Upload a recording": file chosen, progress shown, then the transcript."""
    from playwright.async_api import expect

    clip = tmp_path / "first.mp3"
    clip.write_bytes(short_mp3)
    async with open_page(stack.http, permissions=()) as opened:
        page, errors = opened.page, opened.errors
        await page.fill("#course", "BIO 101")
        await page.click("#upload summary")
        await page.set_input_files("#upload-file", str(clip))
        await page.click("#upload-start")
        result = page.locator("#upload-result")
        await expect(result).to_be_visible(timeout=60_000)
        await expect(page.locator("#upload-status")).to_contain_text("Done")
        await expect(result.locator(".history-seg")).to_contain_text(re.compile("determine", re.I))
        await expect(page.locator("#upload-progress")).to_have_attribute("value", "1")
        sid = await page.locator("#upload").get_attribute("data-session")
        # The link carries the page's owner key: the upload is this browser's session.
        owner = await page.evaluate("() => localStorage.getItem('classrec.owner')")
        await expect(result.locator("a[href*='/transcript.srt']")).to_have_attribute(
            "href", f"/api/sessions/{sid}/transcript.srt?owner={owner}"
        )
        assert not errors


# --- the OpenAI-compatible route ----------------------------------------------------------------


@pytest.mark.slow
def test_openai_client_formats(stack: Stack, short_mp3: bytes) -> None:
    client = OpenAI(base_url=stack.http + "/v1", api_key="x")
    file = ("first.mp3", short_mp3, "audio/mpeg")

    plain = client.audio.transcriptions.create(model="whisper-1", file=file, language="en")
    assert "shapes" in plain.text.lower() and "determine" in plain.text.lower()

    text = client.audio.transcriptions.create(model="whisper-1", file=file, response_format="text")
    assert isinstance(text, str) and "determine" in text.lower()

    srt = client.audio.transcriptions.create(model="whisper-1", file=file, response_format="srt")
    assert isinstance(srt, str) and srt.startswith("1\n")
    start, end = re.search(r"(\d\d:\d\d:\d\d,\d{3}) --> (\d\d:\d\d:\d\d,\d{3})", srt).groups()  # type: ignore[union-attr]
    assert "00:00:01,500" <= start <= "00:00:03,500" and end <= "00:00:07,200"

    verbose = client.audio.transcriptions.create(
        model="whisper-1",
        file=file,
        response_format="verbose_json",
        prompt="Biology lecture.",
        timestamp_granularities=["word", "segment"],
    )
    assert verbose.duration == pytest.approx(SHORT_S, abs=0.05) and "determine" in verbose.text.lower()
    [seg] = verbose.segments or []
    assert 1.5 < seg.start < 3.5 and 5.0 < seg.end <= SHORT_S and seg.text.strip() == verbose.text
    words = verbose.words or []
    assert words[0].start == pytest.approx(seg.start) and words[-1].end == pytest.approx(seg.end)
    assert " ".join(w.word for w in words) == verbose.text


@pytest.mark.slow
def test_openai_errors(stack: Stack, short_mp3: bytes) -> None:
    client = OpenAI(base_url=stack.http + "/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.BadRequestError) as bad_format:
        client.audio.transcriptions.create(
            model="whisper-1", file=("a.mp3", short_mp3), response_format="xml"
        )  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError) as bad_file:
        client.audio.transcriptions.create(model="whisper-1", file=("a.mp3", b"\x00garbage" * 500))
    for err, param in ((bad_format, "response_format"), (bad_file, "file")):
        body = err.value.body
        assert isinstance(body, dict) and body["type"] == "invalid_request_error" and body["param"] == param
        assert body["message"]


@pytest.mark.slow
async def test_transcriber_openai_backend_against_the_route(stack: Stack, lecture1: Lecture) -> None:
    """The project's own `openai` backend, end to end against the gateway's route."""
    backend = OpenAIBackend(TranscriberSettings(openai_base_url=stack.http + "/v1", openai_api_key="x"))
    audio = np.frombuffer(pcm_of(lecture1, 2.0, 7.0), np.int16).astype(np.float32) / 32768
    result = await backend.transcribe(Request(audio, "en", "Biology lecture."))
    text = " ".join(p.text.strip() for p in result.pieces).lower()
    assert "fold" in text and "determine" in text, text
    assert all(0.0 <= p.start < p.end <= 5.0 for p in result.pieces)
    assert result.pieces[0].words and result.pieces[0].words[0][0] == pytest.approx(result.pieces[0].start)
