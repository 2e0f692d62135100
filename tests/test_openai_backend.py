"""The `openai` backend: the real openai client against a real HTTP server on loopback, through the
real transcriber worker and a real Redis."""

from __future__ import annotations

import asyncio
import io
import wave
from collections.abc import AsyncIterator

import numpy as np
import pytest
import redis.asyncio as aioredis
from aiohttp import web

from services.transcriber.backends import OpenAIBackend
from services.transcriber.worker import TranscriberWorker
from shared import keys
from shared.messages import SegmentJob, SessionConfig, TranscriptEvent, TranscriptRecord, from_fields
from shared.settings import DEFAULT_LECTURE_PROMPT, TranscriberSettings
from shared.streams import xadd
from tests.util import serving

ANSWER = "The midterm is on March fourteenth."


@pytest.fixture
async def fake_openai() -> AsyncIterator[tuple[str, list[dict]]]:
    """A real HTTP server speaking the OpenAI transcription route; records what it was sent."""
    received: list[dict] = []

    async def transcriptions(request: web.Request) -> web.Response:
        form = await request.post()
        upload = form["file"]
        received.append(
            {
                "auth": request.headers.get("Authorization"),
                "model": form["model"],
                "prompt": form.get("prompt"),
                "language": form.get("language"),
                "response_format": form.get("response_format"),
                "wav": upload.file.read(),  # type: ignore[union-attr]
            }
        )
        seg = {
            "id": 0,
            "start": 0.0,
            "end": 1.5,
            "text": " " + ANSWER,
            "avg_logprob": -0.2,
            "no_speech_prob": 0.01,
            "compression_ratio": 1.1,
        }
        return web.json_response({"text": ANSWER, "language": "en", "duration": 1.5, "segments": [seg]})

    app = web.Application()
    app.router.add_post("/v1/audio/transcriptions", transcriptions)
    async with serving(app) as url:
        yield f"{url}/v1", received


async def test_openai_backend_end_to_end(redis_url: str, fake_openai: tuple[str, list[dict]]) -> None:
    base_url, received = fake_openai
    s = TranscriberSettings(
        redis_url=redis_url,
        transcribe_backend="openai",
        openai_base_url=base_url,
        openai_api_key="sk-test",
        openai_model="whisper-large-v3",
        segments_stream="segments:oai-test",
        transcripts_stream="transcripts:oai-test",
        block_ms=100,
    )
    r = aioredis.Redis.from_url(redis_url)
    tone = (0.3 * np.sin(2 * np.pi * 220 * np.arange(24000) / 16000) * 32767).astype(np.int16)
    config = SessionConfig(prompt="Biology 101.", keywords=["midterm"])
    job = SegmentJob(sid="oai1", segment=3, start=10.0, end=11.5, config=config, pcm=tone.tobytes())
    await xadd(r, s.segments_stream, job, 1000)

    worker = TranscriberWorker(s, r, OpenAIBackend(s))
    while not await r.exists(s.events_key("oai1")):
        await asyncio.wait_for(worker.run_once(), 30)

    [req] = received
    assert req["model"] == "whisper-large-v3" and req["auth"] == "Bearer sk-test"
    assert req["language"] == "en" and req["response_format"] == "verbose_json"
    assert (
        DEFAULT_LECTURE_PROMPT in req["prompt"]
        and "Biology 101." in req["prompt"]
        and "midterm" in req["prompt"]
    )
    with wave.open(io.BytesIO(req["wav"])) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        sent = np.frombuffer(w.readframes(w.getnframes()), np.int16)
    assert np.abs(sent.astype(int) - tone).max() <= 1

    [(_, fields)] = await r.xrange(s.events_key("oai1"))
    event = from_fields(fields)
    assert event == TranscriptEvent(segment=3, start=10.0, end=11.5, text=ANSWER, final=True)
    [(_, fields)] = await r.xrange(s.transcripts_stream)
    record = from_fields(fields)
    assert isinstance(record, TranscriptRecord) and record.transcript == event and record.sid == "oai1"
    assert await r.xpending(s.segments_stream, keys.TRANSCRIBER_GROUP) == {
        "pending": 0,
        "min": None,
        "max": None,
        "consumers": [],
    }
    await r.aclose()
