"""The lock's cutting of an utterance into speakers' pieces, and enrolment's refusals, on real audio."""

from __future__ import annotations

import wave

import numpy as np
import pytest

from services.voice.embedder import WINDOW_SAMPLES, Embedder
from services.voice.enrol import EnrolmentError, enrol
from services.voice.lock import LECTURER, OTHER, STEP, LockConfig, pieces, window_starts
from tests.util import DATA

CFG = LockConfig()


def read(path) -> np.ndarray:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768


def unit(v: list[float]) -> np.ndarray:
    x = np.zeros(256, np.float32)
    x[: len(v)] = v
    return x / np.linalg.norm(x)


VOICE = unit([1.0])
SAME, OTHER_V = unit([1.0, 0.2]), unit([0.1, 1.0])


def test_window_starts() -> None:
    assert window_starts(100) == []
    assert window_starts(WINDOW_SAMPLES - 1) == [0]  # shorter than a window: one padded window
    assert window_starts(3 * STEP + WINDOW_SAMPLES) == [0, STEP, 2 * STEP, 3 * STEP]


def test_whole_utterances() -> None:
    assert [p.speaker for p in pieces(2 * STEP, np.stack([SAME, SAME]), VOICE, CFG)] == [LECTURER]
    assert [p.speaker for p in pieces(2 * STEP, np.stack([OTHER_V, OTHER_V]), VOICE, CFG)] == [OTHER]
    assert pieces(100, np.zeros((0, 256), np.float32), VOICE, CFG)[0].speaker == LECTURER  # unsure: keep


def test_a_change_of_speaker_inside_an_utterance() -> None:
    emb = np.stack([SAME, SAME, SAME, OTHER_V, OTHER_V])
    n = 5 * STEP + 1234
    got = pieces(n, emb, VOICE, CFG)
    assert [(p.start, p.end, p.speaker) for p in got] == [(0, 3 * STEP, LECTURER), (3 * STEP, n, OTHER)]


def test_one_odd_second_is_not_a_change_of_speaker() -> None:
    emb = np.stack([SAME, SAME, OTHER_V, SAME, SAME])
    assert [p.speaker for p in pieces(5 * STEP, emb, VOICE, CFG)] == [LECTURER]


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


def test_enrol_real_voice(embedder: Embedder) -> None:
    audio = read(DATA / "voice" / "lj.enrol.wav")
    got = enrol(audio, embedder)
    assert 15 < got.seconds < 17 and 10 < got.speech_seconds <= got.seconds
    lj = read(DATA / "real" / "LJ001-0009.wav")
    other = read(DATA / "voice" / "espeak_f2.wav")
    emb = embedder.at(lj, window_starts(len(lj)))
    assert {p.speaker for p in pieces(len(lj), emb, got.embedding, CFG)} == {LECTURER}
    emb = embedder.at(other, window_starts(len(other)))
    assert {p.speaker for p in pieces(len(other), emb, got.embedding, CFG)} == {OTHER}


@pytest.mark.parametrize(
    "make, code",
    [
        (lambda rng: np.zeros(16000 * 3, np.float32), "too_short"),
        (lambda rng: np.zeros(16000 * 31, np.float32), "too_long"),
        (lambda rng: np.zeros(16000 * 8, np.float32), "silence"),
        (lambda rng: (rng.standard_normal(16000 * 8) * 0.1).astype(np.float32), "no_speech"),
    ],
)
def test_enrol_refuses(embedder: Embedder, make, code: str) -> None:
    with pytest.raises(EnrolmentError) as e:
        enrol(make(np.random.default_rng(1)), embedder)
    assert e.value.code == code


def test_enrol_refuses_too_little_speech(embedder: Embedder) -> None:
    speech = read(DATA / "real" / "LJ001-0009.wav")[: 16000 * 2]  # 2 s of speech in 8 s
    audio = np.concatenate([speech, np.zeros(16000 * 6, np.float32)])
    with pytest.raises(EnrolmentError) as e:
        enrol(audio, embedder)
    assert e.value.code == "too_little_speech"


def test_a_cut_moves_to_the_pause_between_the_speakers() -> None:
    rng = np.random.default_rng(3)
    n = 5 * STEP + 1234
    audio = (rng.standard_normal(n) * 0.3).astype(np.float32)
    gap = 3 * STEP - 4000  # 0.25 s before the second boundary: 0.1 s of silence
    audio[gap : gap + 1600] = 0
    emb = np.stack([SAME, SAME, SAME, OTHER_V, OTHER_V])
    got = pieces(n, emb, VOICE, CFG, audio)
    assert [p.speaker for p in got] == [LECTURER, OTHER]
    assert gap <= got[0].end < gap + 1600 and got[1].start == got[0].end and got[1].end == n
