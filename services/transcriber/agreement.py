"""LocalAgreement-2 for partial results (as in whisper_streaming): words that two consecutive
hypotheses of the same growing utterance agree on are stable and are never taken back before the
final; only the tail after them may still change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_STRIP = re.compile(r"[^\w']+")


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

    def update(self, text: str) -> tuple[str, str]:
        """Take a new hypothesis; return (text to show, its stable prefix).

        The text shown always starts with the committed words, so the stable part never flickers,
        even when the new hypothesis disagrees with it (the tail is then the new words after it).
        """
        words = text.split()
        done = len(self.committed)
        grown = agreed_prefix(self.previous[done:], words[done:])  # positions after the committed words
        self.committed = self.committed + words[done : done + grown]
        self.previous = words
        tail = words[len(self.committed) :]
        return " ".join([*self.committed, *tail]), " ".join(self.committed)

    def to_dict(self) -> dict[str, list[str]]:
        return {"previous": self.previous, "committed": self.committed}

    @classmethod
    def from_dict(cls, d: dict[str, list[str]]) -> Agreement:
        return cls(list(d.get("previous", [])), list(d.get("committed", [])))
