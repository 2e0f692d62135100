"""Checks on a transcript that hold for any faithful decoding, whatever CPU the int8 kernels run on:
word error rate against the lecture's ground truth under a bound, never one borderline word."""

from __future__ import annotations

import re
from collections.abc import Iterable

import jiwer

# tiny.en streaming lecture1 scores about 0.19 (README); a lost or doubled utterance, or another
# sentence in its place, costs far more than the spread between CPUs.
WER_BOUND = 0.35


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def wer(truth: Iterable[str], heard: Iterable[str]) -> float:
    """WER of the heard texts, joined in order, against the true sentences, joined in order."""
    ref = " ".join(w for t in truth for w in words(t))
    hyp = " ".join(w for t in heard for w in words(t))
    return jiwer.wer(ref, hyp)


def assert_heard(truth: Iterable[str], heard: Iterable[str], bound: float = WER_BOUND) -> float:
    truth, heard = list(truth), list(heard)
    got = wer(truth, heard)
    assert got < bound, f"WER {got:.3f} >= {bound}: {heard} against {truth}"
    return got
