"""A final decoded in context: the encoder hears the session's preceding speech before the utterance.

A final heard alone is a few seconds of one voice in one room; heard after the seconds before it,
Whisper knows the voice and the room (on hall audio that is worth 4-6 points of WER, bench/context.py).
What was said there goes into the previous-text prompt (one decoder pass for all of it), and the
decoding is started at the new audio by forcing one timestamp token: the context's end. Forcing the
context's text as a prefix instead costs a decoder step per token of it (CTranslate2 feeds a prefix
token by token), which made a final in 20 s of context take 3-4 times as long as alone.

The words are timed by aligning the text on the utterance alone, and the utterance alone also gives
the no-speech probability (the window's includes the context's speech): an utterance Whisper doubts
is speech is decoded alone, as without context. A result that starts by saying the context again
(Whisper sometimes transcribes the window from its start despite the timestamp) is not used either:
the caller decodes the utterance alone instead.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from services.transcriber.types import Piece, Request, Result
from services.transcriber.windowed import compression_ratio, encoder_frames, punctuation
from shared.messages import SAMPLE_RATE

CONTEXT_TAIL_S = 1.0  # padding after the utterance when heard in context (the context says the rest)
ALONE_TAIL_S = 1.0  # padding after the utterance for its alignment and no-speech probability
PROMPT_MAX_TOKENS = 224  # Whisper's previous-text budget (half its 448-token context)
REPEAT_WORDS = 3  # a result whose first this many words occur in a row in the context repeats it
TIMESTAMP_S = 0.02  # one Whisper timestamp token


def _words(text: str) -> list[str]:
    return re.findall(r"[\w']+", text.lower())


def repeats_context(text: str, context_text: str, n: int = REPEAT_WORDS) -> bool:
    """Whether `text` begins with `n` words that occur in a row in `context_text`."""
    head, ctx = _words(text)[:n], _words(context_text)
    if len(head) < n:
        return False
    return any(ctx[i : i + n] == head for i in range(len(ctx) - n + 1))


def _encode(model: Any, audio: np.ndarray, tail_s: float) -> tuple[Any, int]:
    """The encoder output of `audio` plus `tail_s` of padding, and the audio's mel frames."""
    feats = model.feature_extractor(audio)
    frames = encoder_frames(len(audio), tail_s)
    padded = np.zeros((feats.shape[0], frames), np.float32)
    n = min(frames, feats.shape[1])
    padded[:, :n] = feats[:, :n]
    model.window_frames = frames
    return model.encode(padded[None]), min(3000, feats.shape[1] - 1)


def decode(
    model: Any, tok: Any, req: Request, beam_size: int, compression_limit: float, no_speech_limit: float
) -> Result | None:
    """The final of `req` heard after `req.context`, or None when the utterance should be decoded
    alone: Whisper doubts it is speech at all (alone, the context's speech apart), or the result is
    nothing new, a loop, or the context said again."""
    from faster_whisper.transcribe import get_suppressed_tokens

    assert req.context is not None
    # The utterance alone first: whether it is speech, and later its words' times. On noise the
    # context makes Whisper confident of a continuation ("Class." after "... before class."), so an
    # utterance it doubts alone is left to the alone decoding and its guards, as without context.
    alone, frames = _encode(model, req.audio, ALONE_TAIL_S)
    no_speech = model.model.generate(
        alone, [[*tok.sot_sequence, tok.no_timestamps]], max_length=2, return_no_speech_prob=True
    )[0].no_speech_prob
    if no_speech > no_speech_limit:
        return None
    ctx_s = len(req.context) / SAMPLE_RATE
    audio = np.concatenate([req.context, req.audio]).astype(np.float32)
    encoded, _ = _encode(model, audio, CONTEXT_TAIL_S)
    said = " ".join(x for x in (req.hotwords.strip(), req.prompt.strip(), req.context_text.strip()) if x)
    previous = tok.encode(" " + said)[-(PROMPT_MAX_TOKENS - 1) :]
    start = tok.timestamp_begin + min(1500, round(ctx_s / TIMESTAMP_S))
    out = model.model.generate(
        encoded,
        [[tok.sot_prev, *previous, *tok.sot_sequence, start]],
        beam_size=beam_size,
        max_length=model.max_length,
        return_scores=True,
        suppress_blank=True,
        suppress_tokens=get_suppressed_tokens(tok, [-1]),
    )[0]
    tokens = out.sequences_ids[0]
    text_tokens = [t for t in tokens if t < tok.eot]
    text = tok.decode(text_tokens).strip()
    if not text or compression_ratio(text) > compression_limit or repeats_context(text, req.context_text):
        return None
    avg_logprob = out.scores[0] * len(tokens) / (len(tokens) + 1)
    segment = [{"seek": 0, "start": 0.0, "end": frames / 100, "tokens": text_tokens}]
    model.add_word_timestamps([segment], tok, alone, frames, *punctuation(), 0.0)
    words = [(float(w["start"]), float(w["end"]), w["word"]) for w in segment[0].get("words") or []]
    if not words:
        return None
    return Result(
        [Piece(words[0][0], words[-1][1], text, avg_logprob, no_speech, compression_ratio(text), words)]
    )
