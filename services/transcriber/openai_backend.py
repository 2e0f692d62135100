"""The OpenAI-compatible backend: any `/audio/transcriptions` endpoint, through the `openai` package."""

from __future__ import annotations

import asyncio
import io
import wave
from typing import Any

import numpy as np

from services.transcriber.types import Piece, Request, Result
from shared.messages import SAMPLE_RATE
from shared.settings import TranscriberSettings


def to_wav(audio: np.ndarray) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return buf.getvalue()


class OpenAIBackend:
    """Any OpenAI-compatible `/audio/transcriptions` endpoint, through the `openai` package."""

    name = "openai"
    languages = None  # the endpoint's model decides

    def __init__(self, s: TranscriberSettings) -> None:
        from openai import AsyncOpenAI

        self.s = s
        self.model_name = s.openai_model
        self.client = AsyncOpenAI(
            api_key=s.openai_api_key, base_url=s.openai_base_url, timeout=s.openai_timeout_s, max_retries=2
        )

    async def transcribe(self, req: Request) -> Result:
        prompt = " ".join(p for p in (req.hotwords, req.prompt, req.prefix) if p)
        kwargs: dict[str, Any] = {
            "model": self.s.openai_model,
            "file": ("segment.wav", to_wav(req.audio), "audio/wav"),
            "response_format": "verbose_json",
        }
        if prompt:
            kwargs["prompt"] = prompt
        if req.language:
            kwargs["language"] = req.language
        if self.s.word_timestamps and not req.partial:
            kwargs["timestamp_granularities"] = ["word", "segment"]
        resp = await self.client.audio.transcriptions.create(**kwargs)
        words = [(float(w.start), float(w.end), w.word) for w in getattr(resp, "words", None) or []]
        segs = getattr(resp, "segments", None) or []
        if not segs:
            return Result([Piece(0.0, len(req.audio) / SAMPLE_RATE, resp.text or "", words=words)])
        pieces = [
            Piece(
                float(seg.start),
                float(seg.end),
                seg.text,
                float(getattr(seg, "avg_logprob", 0.0) or 0.0),
                float(getattr(seg, "no_speech_prob", 0.0) or 0.0),
                float(getattr(seg, "compression_ratio", 1.0) or 1.0),
            )
            for seg in segs
        ]
        for p in pieces:  # the API lists words for the whole file: give each piece its own
            p.words = [w for w in words if p.start - 0.01 <= (w[0] + w[1]) / 2 <= p.end + 0.01]
        return Result(pieces)

    async def transcribe_many(self, reqs: list[Request]) -> list[Result]:
        """Concurrent requests: the endpoint does the batching."""
        return list(await asyncio.gather(*(self.transcribe(r) for r in reqs)))
