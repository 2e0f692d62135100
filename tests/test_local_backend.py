"""The local faster-whisper backend: the short encoder window used for finals, on the real model."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from bench.common import KNOWN_TEXT, read_wav, word_errors
from services.transcriber.backends import LocalBackend, Request, encoder_frames
from shared.settings import TranscriberSettings

CLIP = Path(__file__).parent / "data" / "real" / "LJ001-0009.wav"


def test_encoder_frames_cover_the_audio_and_tail_in_whole_seconds() -> None:
    assert encoder_frames(16000 * 3, 5.0) == 900  # 301 + 500 frames, rounded up to a second
    assert encoder_frames(16000 * 4 + 1, 0.0) == 500
    assert encoder_frames(16000 * 28, 5.0) == 3000  # never more than Whisper's 30 s window
    assert all(encoder_frames(n, 2.0) % 100 == 0 for n in range(0, 16000 * 20, 7919))


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    # The clip with 0.3 s of silence on each side, as the VAD pads an utterance.
    pad = np.zeros(4800, np.float32)
    return np.concatenate([pad, read_wav(CLIP).astype(np.float32) / 32768.0, pad])


def decode(tail: float, audio: np.ndarray) -> tuple[str, list[int], list[tuple[float, float, str]]]:
    """Text, the input lengths (mel frames) the encoder was given, and the word timings."""
    backend = LocalBackend(TranscriberSettings(final_window_tail_s=tail))
    seen: list[int] = []
    encode = backend.model.model.encode

    def spy(features, *a, **k):  # type: ignore[no-untyped-def]
        seen.append(features.shape[-1])
        return encode(features, *a, **k)

    backend.model.model = _Proxy(backend.model.model, spy)
    result = asyncio.run(backend.transcribe(Request(audio, "en", "Lecture transcription.")))
    text = " ".join(p.text.strip() for p in result.pieces)
    words = [w for p in result.pieces for w in p.words]
    return text, seen, words


class _Proxy:
    """The CTranslate2 model with its `encode` observed (CTranslate2 objects take no attributes)."""

    def __init__(self, inner: object, encode: object) -> None:
        self._inner, self.encode = inner, encode

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


def test_short_window_final_matches_the_whole_window(clip: np.ndarray) -> None:
    truth = KNOWN_TEXT["LJ001-0009"]
    whole, seen_whole, _ = decode(0.0, clip)
    short, seen_short, words = decode(5.0, clip)
    duration = len(clip) / 16000
    assert seen_whole == [3000]
    assert seen_short == [encoder_frames(len(clip), 5.0)] and seen_short[0] < 1500
    assert word_errors(truth, whole).wer <= 0.1
    assert word_errors(truth, short).wer <= word_errors(truth, whole).wer
    # word timings stay inside the audio and in order
    assert words and 0.0 <= words[0][0] < 0.8 and duration - 1.0 < words[-1][1] <= duration
    assert all(a[0] <= b[0] for a, b in zip(words, words[1:], strict=False))
