"""What a transcription backend takes and gives: `Request` in, `Result` (decoded `Piece`s) out.

A leaf module: the backends (`backends.py`, `openai_backend.py`), the hallucination guards
(`guards.py`) and the worker all import it, and it imports none of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Piece:
    """A decoded stretch of text (a Whisper segment) with its timing and confidence."""

    start: float
    end: float
    text: str
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    compression_ratio: float = 1.0
    words: list[tuple[float, float, str]] = field(default_factory=list)  # (start, end, word)


@dataclass
class Result:
    pieces: list[Piece] = field(default_factory=list)


@dataclass
class Request:
    """One transcription: the audio and how to decode it."""

    audio: np.ndarray  # float32, 16 kHz mono
    language: str | None
    prompt: str
    hotwords: str = ""
    partial: bool = False  # a partial result: cheaper decoding, no word timings
    prefix: str = ""  # words the result must start with (partials: the committed words)
    task: str = "transcribe"  # or "translate": English text (multilingual models)
    # Finals: the session's preceding speech, heard before `audio`, and what was said in it (forced
    # as the decoder's prefix). Only the words of `audio` are returned (README "Finals in context").
    context: np.ndarray | None = None
    context_text: str = ""
