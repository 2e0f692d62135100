"""Who speaks in an utterance: its seconds scored against the enrolled voice, cut into speakers' pieces.

An utterance is embedded as windows of 0.8 s starting every second (one embedder window per second
of speech). Each window's cosine score against the voice marks it likely-lecturer (≥
`window_threshold`) or not; runs shorter than `min_run` windows are absorbed by their neighbours (one
odd second is not a change of speaker). Each remaining run is then judged by its pooled embedding
(the normalised mean of its windows): below `threshold` it is another speaker, else the lecturer.
An utterance with too few windows is judged whole. Audio too short for a window is kept: when
unsure, the lecturer's words win.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.voice import features
from services.voice.embedder import WINDOW_SAMPLES, normalise

STEP = features.SAMPLE_RATE  # a window starts every second of the utterance
LECTURER, OTHER = "lecturer", "other"
FRAME = features.SAMPLE_RATE // 50  # 20 ms
SEARCH = int(0.6 * features.SAMPLE_RATE)


@dataclass(frozen=True)
class LockConfig:
    """Defaults calibrated on the dev recordings (bench/voice.py, README "Voice lock")."""

    threshold: float = 0.7
    window_threshold: float = 0.55
    min_run: int = 2


@dataclass(frozen=True)
class Piece:
    start: int  # samples from the utterance's first sample
    end: int
    speaker: str
    score: float


def window_starts(n_samples: int) -> list[int]:
    """Where the utterance's windows start; one (padded) window for audio shorter than a window."""
    starts = list(range(0, n_samples - WINDOW_SAMPLES + 1, STEP))
    if not starts and n_samples >= features.N_FFT:
        starts = [0]
    return starts


def pooled_score(emb: np.ndarray, voice: np.ndarray) -> float:
    return float(normalise(emb.mean(axis=0)) @ voice)


def _runs(labels: list[bool]) -> list[tuple[int, int, bool]]:
    """(first, last+1, label) of each run of equal labels."""
    runs: list[tuple[int, int, bool]] = []
    for i, lab in enumerate(labels):
        if runs and runs[-1][2] == lab:
            runs[-1] = (runs[-1][0], i + 1, lab)
        else:
            runs.append((i, i + 1, lab))
    return runs


def _absorb(labels: list[bool], min_run: int) -> list[bool]:
    """Flip runs shorter than `min_run` to their neighbours' label (shortest first)."""
    labels = list(labels)
    while True:
        runs = _runs(labels)
        short = [r for r in runs if r[1] - r[0] < min_run]
        if len(runs) == 1 or not short:
            return labels
        a, b, lab = min(short, key=lambda r: r[1] - r[0])
        for i in range(a, b):
            labels[i] = not lab


def quietest(audio: np.ndarray, around: int) -> int:
    """The start of the quietest 20 ms within SEARCH of `around` (a change of speaker is cut at the
    pause between the two, not in the middle of a word)."""
    lo, hi = max(0, around - SEARCH), min(len(audio), around + SEARCH)
    if hi - lo < 2 * FRAME:
        return around
    x = audio[lo:hi].astype(np.float32)
    n = (hi - lo) // FRAME
    energy = (x[: n * FRAME].reshape(n, FRAME) ** 2).sum(axis=1)
    return lo + int(np.argmin(energy)) * FRAME


def pieces(
    n_samples: int, emb: np.ndarray, voice: np.ndarray, cfg: LockConfig, audio: np.ndarray | None = None
) -> list[Piece]:
    """The utterance's pieces by speaker, in order, covering [0, n_samples); `emb` holds the
    embeddings of the windows at `window_starts(n_samples)`. With the utterance's `audio`, each cut
    moves to the quietest 20 ms within 0.6 s of its second."""
    if len(emb) == 0:
        return [Piece(0, n_samples, LECTURER, 1.0)]
    labels = [float(s) >= cfg.window_threshold for s in emb @ voice]
    if len(emb) < 2 * cfg.min_run:
        labels = [labels[0]] * len(labels)
    runs = _runs(_absorb(labels, cfg.min_run))
    out: list[Piece] = []
    for a, b, _ in runs:
        score = pooled_score(emb[a:b], voice)
        speaker = OTHER if score < cfg.threshold else LECTURER
        start = 0 if a == 0 else a * STEP
        end = n_samples if b == len(emb) else b * STEP
        if out and out[-1].speaker == speaker:  # two runs judged alike: one piece
            prev = out.pop()
            score = pooled_score(emb[_first_window(prev.start) : b], voice)
            start = prev.start
        out.append(Piece(start, end, speaker, round(score, 4)))
    if audio is not None:
        for i in range(1, len(out)):
            cut = quietest(audio, out[i].start)
            out[i - 1] = Piece(out[i - 1].start, cut, out[i - 1].speaker, out[i - 1].score)
            out[i] = Piece(cut, out[i].end, out[i].speaker, out[i].score)
    return out


def _first_window(start: int) -> int:
    return start // STEP
