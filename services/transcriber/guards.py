"""Hallucination guards applied to every backend's output before it becomes a transcript.

Whisper invents text on noise and loops on hard audio. Each guard is a named function that keeps or
drops one decoded piece (or trims a text); thresholds come from the transcriber's settings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from services.transcriber.types import Piece

# Phrases Whisper is known to produce on silence or noise (subtitle-corpus residue); last resort only.
OUTRO_PHRASES = (
    "thank you for watching",
    "thanks for watching",
    "please subscribe",
    "like and subscribe",
    "see you in the next video",
    "subtitles by",
    "transcribed by",
    "you",
)
_WORD = re.compile(r"[a-z0-9']+")


def no_speech(piece: Piece, no_speech_threshold: float, logprob_threshold: float) -> bool:
    """Whisper's own rule: probably silence, and the decoded text is not confident either."""
    return piece.no_speech_prob > no_speech_threshold and piece.avg_logprob < logprob_threshold


def too_compressible(piece: Piece, threshold: float) -> bool:
    """A gzip compression ratio above the threshold means the text repeats itself."""
    return piece.compression_ratio > threshold


def repeats_phrase(text: str, min_words: int = 3, times: int = 3) -> bool:
    """True when some phrase of `min_words` or more words occurs `times` times in a row."""
    words = _WORD.findall(text.lower())
    for n in range(min_words, len(words) // times + 1):
        for i in range(len(words) - n * times + 1):
            phrase = words[i : i + n]
            if all(words[i + k * n : i + (k + 1) * n] == phrase for k in range(1, times)):
                return True
    return False


def _key(token: str) -> str:
    return "".join(_WORD.findall(token.lower()))


def drop_doubled(text: str, min_words: int = 3) -> str:
    """The text with any run of `min_words` or more words that immediately repeats itself said once:
    "And so my fellow American. And so my fellow American." -> "And so my fellow American."

    Whisper doubles a sentence on reverberant audio (a repeat the three-times rule does not catch);
    a lecturer saying the same three words twice in a row is rarer than that and loses nothing.
    The first occurrence is kept with its punctuation; the longest repeat is removed first."""
    tokens = text.split()
    changed = True
    while changed:
        changed = False
        keys = [_key(t) for t in tokens]
        for n in range(len(tokens) // 2, min_words - 1, -1):
            for i in range(len(tokens) - 2 * n + 1):
                a, b = keys[i : i + n], keys[i + n : i + 2 * n]
                if a == b and sum(1 for k in a if k) >= min_words:
                    del tokens[i + n : i + 2 * n]
                    changed = True
                    break
            if changed:
                break
    return " ".join(tokens)


def is_outro(text: str) -> bool:
    """The whole piece is one of the known phrases Whisper invents on noise."""
    t = " ".join(_WORD.findall(text.lower()))
    return bool(t) and any(t == " ".join(_WORD.findall(p)) for p in OUTRO_PHRASES)


def keep_pieces(
    pieces: Iterable[Piece],
    no_speech_threshold: float,
    logprob_threshold: float,
    compression_threshold: float,
) -> list[Piece]:
    kept = []
    for p in pieces:
        if not _WORD.search(p.text.lower()):  # empty, or punctuation only
            continue
        if no_speech(p, no_speech_threshold, logprob_threshold):
            continue
        if too_compressible(p, compression_threshold) or repeats_phrase(p.text) or is_outro(p.text):
            continue
        kept.append(p)
    return kept
