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


def sentence_parts(finals: list[dict], speech: list[dict]) -> dict[int, list[dict]]:
    """The finals of each spoken sentence (by index), asserting that every final lies in one sentence
    and every sentence has one or more: a sentence final (SENTENCE_FINALS) may split a sentence that
    Whisper punctuates as two ("... on chapter 4. So please review it."), never merge two."""
    parts: dict[int, list[dict]] = {i: [] for i in range(len(speech))}
    for f in finals:
        mid = (f["start"] + f["end"]) / 2
        inside = [i for i, t in enumerate(speech) if t["start"] - 0.5 <= mid <= t["end"] + 0.5]
        assert inside, f"final {f} lies in no spoken sentence"
        parts[inside[0]].append(f)
    assert all(parts.values()), ([f["text"] for f in finals], [s["text"] for s in speech])
    for i, fs in parts.items():
        assert any(words(f["text"]) for f in fs), f"sentence {i} has only empty finals"
        covered = min(fs[-1]["end"], speech[i]["end"]) - max(fs[0]["start"], speech[i]["start"])
        assert covered >= 0.75 * (speech[i]["end"] - speech[i]["start"]), (
            f"sentence {i}: {fs} is not {speech[i]}"
        )
    return parts
