"""Sentence finals: a sentence's final does not wait for the pause at the end of its utterance.

After each partial, `SentenceCuts.after_partial` looks for a sentence end in the stable words
(`boundary.py`). When the stable prefix newly ends one, the time of the sentence's last word in the
partial's audio is found by faster-whisper's word alignment (cross-attention DTW) of the partial's
text on that audio: one encoder pass and one forced decoder pass, once per sentence. A sentence end
with no word heard after it counts once the audio goes on TRAILING_S past it. A
`SentenceCut` (session, segment, rev, time) then goes into the session's `audio:{sid}` stream, after
the audio the partial was made of: the owning VAD reads it in order with the audio (and again from
its checkpoint after a takeover), closes the segment at the quietest moment near that time as a
final (beam 5, word timings, its own audio) and keeps the rest open (services/vad/sentences.py).
XADD NOMKSTREAM: a session whose audio already ended (its stream deleted) gets nothing.

Off with SENTENCE_FINALS=0, for sessions that translate (the text is not the audio's words), and
with backends that have no local model to align with (the OpenAI-compatible one).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from typing import Any

import numpy as np
import redis.asyncio as aioredis

from services.transcriber.agreement import Agreement
from services.transcriber.boundary import sentence_end
from services.transcriber.languages import session_language
from shared import keys
from shared.messages import SAMPLE_RATE, SegmentJob, SentenceCut
from shared.settings import TranscriberSettings
from shared.streams import stage

log = logging.getLogger(__name__)
STATE_TTL_S = 6 * 3600
# A sentence end that is the hypothesis's last word is taken only with this much audio after it:
# speech went on (the VAD closes an utterance after a 0.4 s pause) and Whisper stopped at the end.
TRAILING_S = 0.6
_NOT_ALNUM = re.compile(r"\W+")


def _letters(text: str) -> str:
    return _NOT_ALNUM.sub("", text.lower())


def word_end(alignment: list[dict], words: list[str], n: int) -> float | None:
    """End time of the `n`-th word of `words` in faster-whisper's `alignment` of " ".join(words).

    The alignment's words are its tokenizer's (punctuation apart, word pieces joined): they are
    matched by the letters and digits they hold, which both spellings share."""
    target = len(_letters("".join(words[:n])))
    got, end = 0, None
    for w in alignment:
        letters = len(_letters(w["word"]))
        if letters:
            got += letters
            end = float(w["end"])
        if got >= target:
            return end
    return None


def align_end(model: Any, language: str | None, audio: np.ndarray, words: list[str], n: int) -> float | None:
    """Seconds into `audio` (float32) at which word `n` of `words`, the audio's text, ends."""
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import get_ctranslate2_storage

    multilingual = model.model.is_multilingual
    tok = Tokenizer(
        model.hf_tokenizer,
        multilingual,
        task="transcribe",
        language=(language or "en") if multilingual else None,
    )
    feats = model.feature_extractor(audio)
    frames = min(3000, (feats.shape[1] // 100 + 2) * 100)  # as a partial's encoder input
    padded = np.zeros((feats.shape[0], frames), np.float32)
    padded[:, : min(frames, feats.shape[1])] = feats[:, :frames]
    encoded = model.model.encode(get_ctranslate2_storage(padded[None]))
    tokens = tok.encode(" " + " ".join(words))
    alignment = model.find_alignment(tok, [tokens], encoded, min(frames, feats.shape[1] - 1))
    return word_end(alignment[0], words, n) if alignment else None


class SentenceCuts:
    """The transcriber's half of sentence finals: asks the VAD for a cut at each new sentence end."""

    def __init__(self, settings: TranscriberSettings, r: aioredis.Redis, backend: object) -> None:
        self.cfg, self.r, self.backend = settings, r, backend
        model = getattr(backend, "model", None)
        self.model = model if hasattr(model, "find_alignment") else None
        small = getattr(backend, "partial_model", None)  # two-pass: English partials' own model, cheaper
        self.small = small if self.model is not None and hasattr(small, "find_alignment") else None
        self.lock = getattr(backend, "_lock", None) or contextlib.nullcontext()

    def wanted(self, job: SegmentJob) -> bool:
        return self.cfg.sentence_finals and self.model is not None and job.config.task == "transcribe"

    async def after_partial(self, job: SegmentJob, agreement: Agreement) -> None:
        """The partial `job` was decoded into `agreement`: ask for a cut if its stable words newly
        end a sentence (and remember it in the agreement, so that it is asked once)."""
        if not self.wanted(job):
            return
        words = agreement.hypothesis
        n = sentence_end(words, len(agreement.committed), self.cfg.sentence_min_words, agreement.cut_at)
        if n is None:
            return
        audio = np.frombuffer(job.pcm, np.int16).astype(np.float32) / 32768.0
        t0 = time.perf_counter()
        try:
            language = await session_language(  # the partial's, known by now: no detection here
                self.r, self.backend, job, audio, self.cfg.events_key(job.sid), self.cfg.stream_maxlen
            )
            model = self.small if self.small is not None and language == "en" else self.model
            async with self.lock:
                end = await asyncio.to_thread(align_end, model, language, audio, words, n)
        except Exception:  # an alignment that fails costs the early final, never the partial
            log.exception("sid=%s seg=%d sentence alignment failed", job.sid, job.segment)
            end = None
        duration = len(audio) / SAMPLE_RATE
        if n == len(words) and end is not None and duration - end < TRAILING_S:
            log.debug("sid=%s seg=%d sentence end at the audio's end: not yet", job.sid, job.segment)
            return  # perhaps Whisper closing a partial mid-sentence: the next partial will tell
        agreement.cut_at = n
        cut = None
        if end is not None and 0 < end <= duration:
            cut = SentenceCut(sid=job.sid, segment=job.segment, rev=job.rev, at=round(job.start + end, 3))
        async with self.r.pipeline(transaction=True) as pipe:
            if cut is not None:
                stage(pipe, self.cfg.audio_key(job.sid), cut, self.cfg.stream_maxlen, nomkstream=True)
            pipe.hset(keys.agreement(job.sid), str(job.segment), json.dumps(agreement.to_dict()))
            pipe.expire(keys.agreement(job.sid), STATE_TTL_S)
            await pipe.execute()
        log.info(
            "sid=%s seg=%d sentence end rev=%d words=%d at=%s align_s=%.2f text=%r",
            job.sid,
            job.segment,
            job.rev,
            n,
            f"{cut.at:.2f}" if cut else "none",
            time.perf_counter() - t0,
            " ".join(words[:n][-6:]),
        )
