"""Hallucination guards: each named rule on pieces that must be kept and pieces that must be dropped."""

from __future__ import annotations

import pytest

from services.transcriber.backends import Piece
from services.transcriber.guards import (
    drop_doubled,
    is_outro,
    keep_pieces,
    no_speech,
    repeats_phrase,
    too_compressible,
)


def piece(text: str, **kw: float) -> Piece:
    return Piece(0.0, 1.0, text, **kw)


def test_no_speech_needs_both_signals() -> None:
    assert no_speech(piece("uh", no_speech_prob=0.9, avg_logprob=-1.5), 0.6, -1.0)
    assert not no_speech(piece("the exam", no_speech_prob=0.9, avg_logprob=-0.3), 0.6, -1.0)
    assert not no_speech(piece("the exam", no_speech_prob=0.1, avg_logprob=-1.5), 0.6, -1.0)


def test_compression_ratio() -> None:
    assert too_compressible(piece("x", compression_ratio=2.6), 2.4)
    assert not too_compressible(piece("x", compression_ratio=1.3), 2.4)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I'm going to go. I'm going to go. I'm going to go.", True),
        ("the cell the cell the cell", False),  # two-word phrase: not this guard's business
        ("see you next week see you next week see you next week", True),
        ("the exam is next week and the quiz is next week", False),
        ("Photosynthesis converts light energy into chemical energy.", False),
    ],
)
def test_repetition_guard(text: str, expected: bool) -> None:
    assert repeats_phrase(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Thank you for watching!", True),
        (" you", True),
        ("Please subscribe.", True),
        ("Thank you for watching the demo, now the quiz.", False),
        ("Your final exam will be held on December 9th.", False),
    ],
)
def test_outro_phrases(text: str, expected: bool) -> None:
    assert is_outro(text) is expected


def test_keep_pieces_keeps_only_real_speech() -> None:
    pieces = [
        piece("The midterm is on Friday.", avg_logprob=-0.3, no_speech_prob=0.1, compression_ratio=1.2),
        piece("Thank you for watching.", avg_logprob=-0.5, no_speech_prob=0.2, compression_ratio=1.1),
        piece("la la la la la la la la", avg_logprob=-0.9, no_speech_prob=0.3, compression_ratio=3.1),
        piece("hmm", avg_logprob=-1.6, no_speech_prob=0.8, compression_ratio=1.0),
        piece("   "),
        piece(" ."),
    ]
    kept = keep_pieces(pieces, 0.6, -1.0, 2.4)
    assert [p.text for p in kept] == ["The midterm is on Friday."]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("And so my fellow American. And so my fellow American.", "And so my fellow American."),
        (
            "In being comparatively moderate. In being comparatively moderate.",
            "In being comparatively moderate.",
        ),
        ("the exam is on friday, the exam is on Friday.", "the exam is on friday,"),
        (
            "We start. The cell divides. The cell divides. Then it grows.",
            "We start. The cell divides. Then it grows.",
        ),
        ("A b c d. A b c d. A b c d.", "A b c d."),
        ("the cell the cell grows", "the cell the cell grows"),  # two words: kept
        ("Read chapter four and chapter five.", "Read chapter four and chapter five."),
        ("", ""),
    ],
)
def test_a_doubled_sentence_is_said_once(text: str, expected: str) -> None:
    assert drop_doubled(text) == expected
