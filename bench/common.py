"""What the benchmarks share: ground truth, WER, noise hallucinations, alert matching, percentiles, CPU.

Ground truth is a lecture: PREFIX.wav (16 kHz mono PCM16) with PREFIX.json as written by
`shared/devdata/make_dev_lecture.py`:
    {"duration", "segments": [{"kind": "speech"|"noise", "start", "end", "text"}],
     "alerts": [{"category", "text", "start"}]}
A WAV without a JSON is accepted; its truth is known only for the clips in KNOWN_TEXT (one speech
stretch covering the whole file), otherwise WER and noise figures are reported as n/a.

Definitions (the figures the benchmarks print mean exactly this):

* WER: jiwer's word error rate after Whisper's English text normaliser (`whisper-normalizer`; its
  basic normaliser for a lecture in another language) on both sides; the reference is the speech stretches' texts joined in time order. Figures over
  several transcripts are pooled: total errors / total reference words.
* Words inside noise-only stretches ("noise words"): each word of a transcript segment is placed
  at its segment's time span [start, end]. A word counts as a word in a noise stretch when its
  segment (a) has its midpoint inside a noise stretch, or (b) overlaps noise stretches for longer
  than it overlaps speech stretches; it counts as a word in silence when its segment overlaps no
  speech stretch at all (speech stretches widened by SPEECH_SLACK_S for this test only) and
  neither (a) nor (b) holds. The reported total is noise + silence. A word is a
  whitespace-separated token with a letter or digit in it, counted on the raw text (what a user
  sees: "[Music]" and "Thank you." count).
* Alerts: an expected alert spans its announcement sentence [start, end] (end from the speech
  stretch starting there). A received alert matches an expected one when it has the same
  category and its `start` lies in [expected.start - ALERT_TOLERANCE_S, expected.end +
  ALERT_TOLERANCE_S]. Received alerts are taken in arrival order; each one matches the nearest
  (by start) such expected alert not yet matched -> "found"; if all such are already matched it
  is a "duplicate"; if there is none it is "false". "Found ignoring category" counts expected
  alerts with a received alert of any category in their window.
* Percentiles: linear interpolation between closest ranks (numpy's default method).
* CPU: utime + stime from /proc/PID/stat (children not included) of the service processes, i.e.
  those whose command line is `... -m services` or `... -m services.<name>`.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from testkit.truth import (  # noqa: F401 (bench's modules import these from here)
    ALERT_TOLERANCE_S,
    KNOWN_TEXT,
    SAMPLE_RATE,
    SPEECH_SLACK_S,
    ExpectedAlert,
    Lecture,
    Span,
    load_lecture,
    read_wav,
    strip_prefix,
)
from testkit.wer import WerResult, normalise, pooled_wer, word_errors  # noqa: F401

_WORD = re.compile(r"[^\W_]", re.UNICODE)


# --- words inside noise-only stretches ----------------------------------------------------------


@dataclass(frozen=True)
class HypSegment:
    """A piece of a transcript with its time span in seconds of audio."""

    start: float
    end: float
    text: str


@dataclass
class NoiseWords:
    in_noise: int = 0
    in_silence: int = 0
    offenders: list[tuple[str, HypSegment]] = field(default_factory=list)  # ("noise"|"silence", seg)

    @property
    def total(self) -> int:
        return self.in_noise + self.in_silence

    def add(self, other: NoiseWords) -> None:
        self.in_noise += other.in_noise
        self.in_silence += other.in_silence
        self.offenders += other.offenders


def count_words(text: str) -> int:
    """Whitespace-separated tokens with at least one letter or digit."""
    return sum(1 for tok in text.split() if _WORD.search(tok))


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def placement(seg: HypSegment, spans: Sequence[Span]) -> str:
    """Where a transcript segment lies: "speech", "noise" or "silence" (see the module docstring)."""
    speech = [s for s in spans if s.kind == "speech"]
    noise = [s for s in spans if s.kind == "noise"]
    mid = (seg.start + seg.end) / 2
    in_noise = any(s.start <= mid <= s.end for s in noise) or (
        sum(_overlap(seg.start, seg.end, s.start, s.end) for s in noise)
        > sum(_overlap(seg.start, seg.end, s.start, s.end) for s in speech)
    )
    if in_noise:
        return "noise"
    lo, hi = seg.start, max(seg.end, seg.start)
    touches = any(lo <= s.end + SPEECH_SLACK_S and hi >= s.start - SPEECH_SLACK_S for s in speech)
    return "speech" if touches else "silence"


def noise_words(segments: Iterable[HypSegment], spans: Sequence[Span]) -> NoiseWords:
    """Words of transcript segments placed in noise stretches or in silence."""
    out = NoiseWords()
    for seg in segments:
        n = count_words(seg.text)
        if not n:
            continue
        where = placement(seg, spans)
        if where == "noise":
            out.in_noise += n
        elif where == "silence":
            out.in_silence += n
        else:
            continue
        out.offenders.append((where, seg))
    return out


# --- alerts -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedAlert:
    category: str
    start: float
    text: str = ""
    segment: int = -1


@dataclass
class AlertScore:
    expected: int = 0
    found: list[tuple[ExpectedAlert, ReceivedAlert]] = field(default_factory=list)
    missed: list[ExpectedAlert] = field(default_factory=list)
    false: list[ReceivedAlert] = field(default_factory=list)
    duplicates: list[ReceivedAlert] = field(default_factory=list)
    found_any_category: int = 0

    def add(self, other: AlertScore) -> None:
        self.expected += other.expected
        self.found += other.found
        self.missed += other.missed
        self.false += other.false
        self.duplicates += other.duplicates
        self.found_any_category += other.found_any_category


def _in_window(rec: ReceivedAlert, exp: ExpectedAlert, tol: float) -> bool:
    return exp.start - tol <= rec.start <= exp.end + tol


def match_alerts(
    expected: Sequence[ExpectedAlert], received: Sequence[ReceivedAlert], tol: float = ALERT_TOLERANCE_S
) -> AlertScore:
    """Score received alerts (in arrival order) against the expected ones (module docstring)."""
    score = AlertScore(expected=len(expected))
    matched: set[int] = set()
    for rec in received:
        cands = [i for i, e in enumerate(expected) if e.category == rec.category and _in_window(rec, e, tol)]
        free = [i for i in cands if i not in matched]
        if free:
            best = min(free, key=lambda i: abs(expected[i].start - rec.start))
            matched.add(best)
            score.found.append((expected[best], rec))
        elif cands:
            score.duplicates.append(rec)
        else:
            score.false.append(rec)
    score.missed = [e for i, e in enumerate(expected) if i not in matched]
    score.found_any_category = sum(any(_in_window(r, e, tol) for r in received) for e in expected)
    return score


def describe_alerts(score: AlertScore) -> list[str]:
    """One line per found, missed, false and duplicate alert."""
    lines = [
        f"  found   {e.category:<10} @{e.start:7.2f}s <- @{r.start:7.2f}s {r.text!r}" for e, r in score.found
    ]
    lines += [f"  MISSED  {e.category:<10} @{e.start:7.2f}s {e.text!r}" for e in score.missed]
    lines += [f"  FALSE   {r.category:<10} @{r.start:7.2f}s {r.text!r}" for r in score.false]
    lines += [f"  dup     {r.category:<10} @{r.start:7.2f}s {r.text!r}" for r in score.duplicates]
    return lines


# --- statistics and formatting ------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float | None:
    """The p-th percentile (0..100) by linear interpolation; None for no values."""
    xs = sorted(values)
    if not xs:
        return None
    k = (len(xs) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def fmt(x: float | None, spec: str = ".3f", unit: str = "") -> str:
    """A number, or "n/a" for None."""
    return "n/a" if x is None else f"{x:{spec}}{unit}"


# --- CPU of the service processes ---------------------------------------------------------------


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def service_name(argv: Sequence[str]) -> str | None:
    """ "services.vad" for `python -m services.vad`, "services" for `python -m services`, else None."""
    for i, arg in enumerate(argv[:-1]):
        mod = argv[i + 1]
        if arg == "-m" and (mod == "services" or mod.startswith("services.")):
            return mod
    return None


def find_service_pids() -> dict[int, str]:
    """PID -> module of every running `python -m services[.X]` process (not this one)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            name = service_name(_cmdline(int(entry.name)))
            if name:
                found[int(entry.name)] = name
    return found


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process in seconds; None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # fields from 3 (state) on
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds used by a set of processes between start() and stop().

    With no fixed PIDs it looks the services up at start and again at stop (a process that
    appeared in between is counted from zero; one that exited in between is lost)."""

    def __init__(self, pids: Sequence[int] | None = None) -> None:
        self.fixed = list(pids) if pids else None
        self.before: dict[int, float] = {}
        self.names: dict[int, str] = {}

    def _pids(self) -> list[int]:
        if self.fixed is not None:
            return self.fixed
        self.names.update(find_service_pids())
        return list(self.names)

    def start(self) -> None:
        self.before = {p: c for p in self._pids() if (c := cpu_seconds(p)) is not None}

    def stop(self) -> dict[int, float]:
        """CPU seconds per PID over the run."""
        after = {p: c for p in self._pids() if (c := cpu_seconds(p)) is not None}
        return {p: c - self.before.get(p, 0.0) for p, c in after.items()}
