"""The dev lectures' ground truth (`tests/data/*.json`): speech and noise spans, expected alerts;
the 16 kHz WAVs read as float32; the known texts of the short fixtures."""

from __future__ import annotations

import json
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000
SPEECH_SLACK_S = 0.5
ALERT_TOLERANCE_S = 3.0
KNOWN_TEXT = {
    "LJ001-0009": "Printing, then, for our purpose, may be considered as the art of making books "
    "by means of movable types.",
}


# --- ground truth -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    """A stretch of the lecture: kind "speech" (with its text) or "noise"."""

    kind: str
    start: float
    end: float
    text: str = ""


@dataclass(frozen=True)
class ExpectedAlert:
    category: str
    text: str
    start: float
    end: float


@dataclass
class Lecture:
    name: str
    pcm: np.ndarray  # int16, mono, 16 kHz
    duration: float
    spans: list[Span]
    alerts: list[ExpectedAlert]
    has_truth: bool
    language: str = "en"  # of the reference text ("language" in PREFIX.json)

    @property
    def speech_text(self) -> str:
        return " ".join(s.text for s in sorted(self.spans, key=lambda s: s.start) if s.kind == "speech")

    def audio_float(self) -> np.ndarray:
        return self.pcm.astype(np.float32) / 32768.0


def strip_prefix(path: str | Path) -> Path:
    """PREFIX from PREFIX, PREFIX.wav or PREFIX.json."""
    p = Path(path)
    return p.with_suffix("") if p.suffix in (".wav", ".json") else p


def read_wav(path: Path) -> np.ndarray:
    """The samples of a 16 kHz mono PCM16 WAV; ValueError for any other format."""
    with wave.open(str(path), "rb") as w:
        if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (SAMPLE_RATE, 1, 2):
            raise ValueError(f"{path}: need 16 kHz mono PCM16")
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)


def load_lecture(prefix: str | Path, translated: bool = False) -> Lecture:
    """PREFIX.wav with its ground truth (PREFIX.json, else KNOWN_TEXT, else none).

    `translated`: the reference is each speech stretch's English `translation` (a lecture in another
    language, for Whisper's translate task)."""
    base = strip_prefix(prefix)
    pcm = read_wav(base.with_suffix(".wav"))
    duration = len(pcm) / SAMPLE_RATE
    meta = base.with_suffix(".json")
    if meta.exists():
        data = json.loads(meta.read_text())
        key = "translation" if translated else "text"
        spans = [
            Span(s["kind"], float(s["start"]), float(s["end"]), s.get(key) or "") for s in data["segments"]
        ]
        alerts = [_expected_alert(a, spans) for a in data.get("alerts", [])]
        language = "en" if translated else data.get("language", "en")
        return Lecture(base.name, pcm, duration, spans, alerts, True, language)
    if base.name in KNOWN_TEXT:
        return Lecture(
            base.name, pcm, duration, [Span("speech", 0.0, duration, KNOWN_TEXT[base.name])], [], True
        )
    return Lecture(base.name, pcm, duration, [], [], False)


def _expected_alert(a: dict, spans: list[Span]) -> ExpectedAlert:
    start = float(a["start"])
    ends = [s.end for s in spans if s.kind == "speech" and abs(s.start - start) < 1e-3]
    return ExpectedAlert(a["category"], a.get("text", ""), start, ends[0] if ends else start)
