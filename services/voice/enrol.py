"""Enrolment: a lecturer's voice from 5-30 s of audio, with clear refusals of what cannot be one.

The audio's speech is found with the VAD's own Silero model (windows of 32 ms at probability ≥ 0.5,
each kept with 0.2 s around it); the embedding is the package's recipe (80-frame windows every 40
frames, normalised mean) over that speech only. Refused, each with a message saying so: audio shorter
than `MIN_SECONDS` or longer than `MAX_SECONDS`, silence (almost no signal), noise without speech,
and too little speech (under `MIN_SPEECH_S`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.vad.silero import WINDOW, StreamingVad, load_model
from services.voice.embedder import Embedder

SAMPLE_RATE = 16_000
MIN_SECONDS, MAX_SECONDS = 5.0, 30.0
MIN_SPEECH_S = 3.0
SILENCE_RMS = 10 ** (-60 / 20)  # -60 dBFS
PAD = int(0.2 * SAMPLE_RATE)


class EnrolmentError(ValueError):
    """Audio that cannot be a voice; `code` is a slug for the client."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Enrolment:
    embedding: np.ndarray  # (256,), L2-normalised
    seconds: float  # length of the audio given
    speech_seconds: float


def speech_mask(audio: np.ndarray, vad_model_path: str | None = None) -> np.ndarray:
    """Per sample: inside (or within PAD of) a Silero window with speech probability ≥ 0.5."""
    probs = StreamingVad(load_model(vad_model_path)).push(audio)
    mask = np.zeros(len(audio), bool)
    for i in np.flatnonzero(probs >= 0.5):
        mask[max(0, i * WINDOW - PAD) : (i + 1) * WINDOW + PAD] = True
    return mask


def enrol(audio: np.ndarray, embedder: Embedder, vad_model_path: str | None = None) -> Enrolment:
    """The voice in float32 16 kHz mono `audio`; EnrolmentError when it cannot be one."""
    seconds = len(audio) / SAMPLE_RATE
    if seconds < MIN_SECONDS:
        raise EnrolmentError("too_short", f"{seconds:.1f} s of audio; record at least {MIN_SECONDS:.0f} s")
    if seconds > MAX_SECONDS:
        raise EnrolmentError("too_long", f"{seconds:.1f} s of audio; give at most {MAX_SECONDS:.0f} s")
    if float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) < SILENCE_RMS:
        raise EnrolmentError("silence", "the recording is silent: check the microphone")
    mask = speech_mask(audio, vad_model_path)
    speech_s = float(mask.sum()) / SAMPLE_RATE
    if speech_s == 0:
        raise EnrolmentError("no_speech", "no speech in the recording, only noise")
    if speech_s < MIN_SPEECH_S:
        raise EnrolmentError(
            "too_little_speech",
            f"only {speech_s:.1f} s of speech; the lecturer must speak for at least {MIN_SPEECH_S:.0f} s",
        )
    emb = embedder.embed(audio[mask])
    return Enrolment(emb, round(seconds, 2), round(speech_s, 2))
