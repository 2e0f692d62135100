"""Word error rate against the truth: Whisper's English normaliser (or a basic one), jiwer's counts."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

import jiwer

# --- WER ----------------------------------------------------------------------------------------


@lru_cache(maxsize=2)
def _normaliser(english: bool = True) -> Callable[[str], str]:
    if english:
        from whisper_normalizer.english import EnglishTextNormalizer

        return EnglishTextNormalizer()
    from whisper_normalizer.basic import BasicTextNormalizer

    return BasicTextNormalizer()


def normalise(text: str, language: str = "en") -> str:
    """Whisper's English normalisation (its basic one for other languages), whitespace collapsed."""
    return " ".join(_normaliser(language == "en")(text).split())


@dataclass(frozen=True)
class WerResult:
    ref_words: int
    hyp_words: int
    substitutions: int
    deletions: int
    insertions: int

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def wer(self) -> float | None:
        return self.errors / self.ref_words if self.ref_words else None


def word_errors(reference: str, hypothesis: str, language: str = "en") -> WerResult:
    """Word errors of `hypothesis` against `reference`, both normalised first."""
    ref, hyp = normalise(reference, language), normalise(hypothesis, language)
    n_ref, n_hyp = len(ref.split()), len(hyp.split())
    if not n_ref or not n_hyp:
        return WerResult(n_ref, n_hyp, 0, n_ref, n_hyp)
    out = jiwer.process_words(ref, hyp)
    return WerResult(n_ref, n_hyp, out.substitutions, out.deletions, out.insertions)


def pooled_wer(results: Iterable[WerResult]) -> float | None:
    """Total errors over total reference words."""
    rs = list(results)
    ref = sum(r.ref_words for r in rs)
    return sum(r.errors for r in rs) / ref if ref else None
