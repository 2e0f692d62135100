"""The local faster-whisper backend: the short encoder window used for finals, on the real model."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from services.transcriber.backends import LocalBackend, Request, Result, encoder_frames
from services.transcriber.guards import keep_pieces
from services.transcriber.worker import build_prompt
from shared.settings import TranscriberSettings
from testkit.truth import KNOWN_TEXT, read_wav
from testkit.wer import word_errors

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

    backend.model.model = _Proxy(backend.model.model, encode=spy)
    result = asyncio.run(backend.transcribe(Request(audio, "en", "Lecture transcription.")))
    text = " ".join(p.text.strip() for p in result.pieces)
    words = [w for p in result.pieces for w in p.words]
    return text, seen, words


class _Proxy:
    """The CTranslate2 model with some methods observed (CTranslate2 objects take no attributes)."""

    def __init__(self, inner: object, **methods: object) -> None:
        self._inner = inner
        self.__dict__.update(methods)

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


@pytest.fixture(scope="module")
def backend() -> LocalBackend:
    return LocalBackend(TranscriberSettings(final_window_tail_s=5.0, transcribe_batch=3))


def test_batches_group_finals_of_one_prompt_and_similar_length(backend: LocalBackend) -> None:
    def req(seconds: float, prompt: str = "p", partial: bool = False) -> Request:
        return Request(np.zeros(int(seconds * 16000), np.float32), "en", prompt, "exam", partial=partial)

    reqs = [req(4), req(2, partial=True), req(9), req(5), req(4.5), req(6), req(3, prompt="q"), req(4.2)]
    batches = backend._batches(reqs)
    assert sorted(i for b in batches for i in b) == list(range(len(reqs)))  # each request exactly once
    assert batches[-1] == [1]  # the partial comes last, alone
    assert [6] in batches  # another prompt is never mixed in
    for b in batches[:-1]:
        lengths = [len(reqs[i].audio) / 16000 for i in b]
        assert len(b) <= 3 and max(lengths) - min(lengths) <= 3.0
        assert len({reqs[i].prompt for i in b}) == 1
    assert [0, 7, 4] in batches  # 4, 4.2 and 4.5 s together, shortest first


def test_a_batch_decodes_like_one_at_a_time(backend: LocalBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    pad = np.zeros(4800, np.float32)
    speech = [np.concatenate([pad, read_wav(CLIP).astype(np.float32) / 32768.0, pad])]
    noise = np.random.default_rng(1).standard_normal(3 * 16000).astype(np.float32) * 0.01
    # the clip, its first 5 s and its last 4 s: three lengths in one batch
    audios = [*speech, speech[0][: 5 * 16000], speech[0][-4 * 16000 :], noise]
    reqs = [Request(a, "en", "Lecture transcription.", "exam quiz") for a in audios]
    alone = [asyncio.run(backend.transcribe(r)) for r in reqs]
    alone_runs: list[Request] = []
    run_one = backend._run
    monkeypatch.setattr(backend, "_run", lambda r: alone_runs.append(r) or run_one(r))
    together = asyncio.run(backend.transcribe_many(reqs))
    assert len(alone_runs) <= 1  # decoded as batches, not one by one (the noise may be redone)
    for req, one, many in zip(reqs[:-1], alone, together, strict=False):
        text_one = " ".join(p.text.strip() for p in one.pieces)
        text_many = " ".join(p.text.strip() for p in many.pieces)
        assert text_many and word_errors(text_one, text_many).wer <= 0.15
        words = [w for p in many.pieces for w in p.words]
        assert words and 0.0 <= words[0][0] and words[-1][1] <= len(req.audio) / 16000 + 0.01
    # the noise: whatever the guards let through alone, they let through from the batch, no more
    s = backend.s

    def kept(r: Result) -> str:
        ps = keep_pieces(r.pieces, s.no_speech_threshold, s.logprob_threshold, s.compression_ratio_threshold)
        return " ".join(p.text.strip(" .") for p in ps).strip()

    assert kept(together[-1]) == kept(alone[-1])


# An utterance of tests/data/lecture1 (synthetic "Enzymes lower the activation energy of a chemical
# reaction"): samples 802111.. of the file, 3.928 s. On some CPUs tiny.en's beam search fails
# faster-whisper's checks here by itself; the test below does not rely on that.
HARD_START, HARD_SAMPLES = 802111, 62848


def generate_calls(backend: LocalBackend, audio: np.ndarray) -> tuple[str, list[float]]:
    """The final's text, and the sampling temperature of each CTranslate2 generate call it took."""
    temperatures: list[float] = []
    generate = backend.model.model.generate

    def spy(*a, **k):  # type: ignore[no-untyped-def]
        temperatures.append(k.get("sampling_temperature", 1.0) if k.get("beam_size", 1) == 1 else 0.0)
        return generate(*a, **k)

    proxy = _Proxy(backend.model.model, generate=spy)
    backend.model.model = proxy
    try:
        prompt = build_prompt(backend.s.lecture_prompt, "", [])  # what the worker asks for, by default
        result = asyncio.run(backend.transcribe(Request(audio, "en", prompt, backend.s.hotwords)))
    finally:
        backend.model.model = proxy._inner
    return " ".join(p.text.strip() for p in result.pieces), temperatures


def test_a_final_is_a_function_of_its_audio() -> None:
    """Whisper's temperature fallback samples at random (CTranslate2 seeds its sampler once per thread),
    so with it the same audio gets different transcripts; by default a final is one beam search.

    Whether a given utterance fails faster-whisper's checks differs between CPUs, so the checks are
    made to fail on any decoding (every non-empty text is more compressible than 0.1): with the
    fallback on, that brings sampling; by default, even then, one beam search."""
    from tests.util import load_lecture

    pcm = load_lecture("lecture1").pcm
    audio = np.frombuffer(pcm, np.int16)[HARD_START : HARD_START + HARD_SAMPLES].astype(np.float32) / 32768.0
    failing = {"compression_ratio_threshold": 0.1}
    sampling = LocalBackend(TranscriberSettings(temperature_fallback=True, **failing))
    _, temps = generate_calls(sampling, audio)
    assert len(temps) > 1 and max(temps) > 0, f"the fallback did not sample: {temps}"

    backend = LocalBackend(TranscriberSettings(**failing))
    texts = set()
    for _ in range(3):
        text, temps = generate_calls(backend, audio)
        assert temps == [0.0], temps  # one beam search, no sampling
        texts.add(text)
    assert len(texts) == 1 and texts.pop(), texts
