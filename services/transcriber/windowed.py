"""Pieces of faster-whisper the local backend builds on: an encoder that sees only the audio's own
length instead of a padded 30 s window, and faster-whisper's own defaults and helpers it reuses.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def encoder_frames(samples: int, tail_s: float) -> int:
    """Mel frames the encoder sees for `samples` of audio followed by `tail_s` of padding.

    Rounded up to whole seconds (100 frames) and capped at Whisper's 30 s window (3000 frames).
    """
    frames = samples // 160 + 1 + round(tail_s * 100)
    return min(3000, -(-frames // 100) * 100)


def compression_ratio(text: str) -> float:
    from faster_whisper.transcribe import get_compression_ratio

    return get_compression_ratio(text) if text else 0.0


def punctuation() -> tuple[str, str]:
    """faster-whisper's own defaults for attaching punctuation to words (prepend, append)."""
    import inspect

    from faster_whisper import WhisperModel

    params = inspect.signature(WhisperModel.transcribe).parameters
    return params["prepend_punctuations"].default, params["append_punctuations"].default


def windowed_model_class() -> type:
    """WhisperModel whose encoder sees only `window_frames` mel frames instead of the padded 30 s.

    faster-whisper always pads a window's features to 3000 frames; CTranslate2's encoder accepts
    fewer, and its cost grows with the input length, so an utterance of a few seconds costs a
    fraction of a full window. Everything else (prompting, beam search, fallback, word timings)
    is faster-whisper's own pipeline.
    """
    from faster_whisper import WhisperModel

    class WindowedWhisperModel(WhisperModel):  # type: ignore[misc]
        window_frames = 3000

        def encode(self, features: np.ndarray) -> Any:
            if features.shape[-1] > self.window_frames:
                features = features[..., : self.window_frames]
            return super().encode(np.ascontiguousarray(features))

    return WindowedWhisperModel
