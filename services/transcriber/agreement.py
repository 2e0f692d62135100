"""LocalAgreement-2 for partial results (as in whisper_streaming): words that two consecutive
hypotheses of the same growing utterance agree on are stable and are never taken back before the
final; only the tail after them may still change.

The punctuation after the last stable word is not stable: whether "do" ends a sentence ("do. The")
or not ("do, the") depends on the words after it, which are not agreed yet. The decoder's forced
prefix (`prefix`) therefore ends without it, and each hypothesis punctuates that word afresh; once
the word after it is agreed, its punctuation is that of the hypothesis that agreed (sentence
finals, `sentences.py`, look for a sentence end there).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_STRIP = re.compile(r"[^\w']+")
_TRAILING = ".,;:!?…"


def _key(word: str) -> str:
    """Compare words without case or punctuation: "Friday," and "friday" agree."""
    return _STRIP.sub("", word.lower())


def agreed_prefix(a: list[str], b: list[str]) -> int:
    """How many leading words the two hypotheses share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if _key(x) != _key(y):
            break
        n += 1
    return n


@dataclass
class Agreement:
    """Per-utterance state: the previous hypothesis and the committed (stable) words."""

    previous: list[str] = field(default_factory=list)
    committed: list[str] = field(default_factory=list)
    cut_at: int = 0  # committed words up to the last sentence end a cut was asked at (sentences.py)

    def update(self, text: str) -> tuple[str, str]:
        """Take a new hypothesis; return (text to show, its stable prefix).

        The text shown always starts with the committed words, so the stable part never flickers,
        even when the new hypothesis disagrees with it (the tail is then the new words after it).
        """
        words = text.split()
        done = len(self.committed)
        if done and len(words) >= done and _key(words[done - 1]) == _key(self.committed[-1]):
            self.committed[-1] = words[done - 1]  # its punctuation, left open by the prefix
        grown = agreed_prefix(self.previous[done:], words[done:])  # positions after the committed words
        self.committed = self.committed + words[done : done + grown]
        self.previous = words
        tail = words[len(self.committed) :]
        return " ".join([*self.committed, *tail]), " ".join(self.committed)

    def to_dict(self) -> dict[str, list[str] | int]:
        return {"previous": self.previous, "committed": self.committed, "cut_at": self.cut_at}

    @classmethod
    def from_dict(cls, d: dict) -> Agreement:
        return cls(list(d.get("previous", [])), list(d.get("committed", [])), int(d.get("cut_at", 0)))

    @property
    def prefix(self) -> str:
        """The committed words as the decoder's forced prefix: without the punctuation after the last."""
        if not self.committed:
            return ""
        last = self.committed[-1].rstrip(_TRAILING) or self.committed[-1]
        return " ".join([*self.committed[:-1], last])

    @property
    def hypothesis(self) -> list[str]:
        """The words shown: the committed ones, then the newest hypothesis's tail after them."""
        return [*self.committed, *self.previous[len(self.committed) :]]
