"""The voice lock is part of the VAD checkpoint: a session restored from `fields()` has the same voice,
mode, cached windows and segment numbering, and cuts the same pieces."""

from __future__ import annotations

import wave

import numpy as np

from services.vad.segmenter import Segmenter, SegmenterConfig
from services.vad.silero import StreamingVad, load_model
from services.vad.voicelock import SessionLock
from services.vad.worker import SessionState
from services.voice.embedder import Embedder
from services.voice.lock import LockConfig
from shared.messages import SessionConfig
from tests.util import DATA


def read(path) -> np.ndarray:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), np.int16)


def test_lock_survives_a_checkpoint() -> None:
    enrol = read(DATA / "voice" / "lj.enrol.wav").astype(np.float32) / 32768
    voice = Embedder().embed(enrol)
    lock = SessionLock(voice, "label", LockConfig())
    audio = read(DATA / "real" / "LJ001-0009.wav")
    lock.windows(16000, audio[: 16000 * 3])  # the open utterance so far: windows cached
    state = SessionState(
        "sid1", SessionConfig(voice="v1", others="label"), StreamingVad(load_model()), Segmenter()
    )
    state.lock, state.extra = lock, 2
    raw = {k: (v.encode() if isinstance(v, str) else v) for k, v in state.fields().items()}
    back = SessionState.restore("sid1", raw, StreamingVad(load_model()), SegmenterConfig(), LockConfig())
    assert back.lock is not None and back.extra == 2 and back.index(3) == 5
    assert back.lock.others == "label" and back.lock.cache_start == 16000
    assert np.allclose(back.lock.voice, voice, atol=1e-6)
    assert len(back.lock.cache) == len(lock.cache) >= 2
    assert np.array_equal(np.stack(back.lock.cache), np.stack(lock.cache))
    assert back.lock.split(16000, audio) == lock.split(16000, audio)


def test_the_lock_fails_open() -> None:
    """A fault in the lock (here: a voice of the wrong size) keeps the utterance, whole, as the lecturer's."""
    from services.vad.segmenter import Utterance
    from services.vad.voicelock import utterance_pieces

    state = SessionState(
        "sid2", SessionConfig(voice="v", others="drop"), StreamingVad(load_model()), Segmenter()
    )
    state.lock = SessionLock(np.ones(3, np.float32), "drop", LockConfig())
    audio = read(DATA / "real" / "LJ001-0009.wav")
    got = utterance_pieces(state, Utterance(0, 0, audio))
    assert [(seg, start, len(a), who) for seg, start, a, who in got] == [(0, 0, len(audio), "lecturer")]
    assert state.lock.partial_ok(0, audio[: 16000 * 3])
