"""Streaming Silero VAD v6 on onnxruntime: 512-sample windows, 64-sample context, LSTM (h, c) kept.

One `SileroModel` (the ONNX session) is shared by all sessions of a process; each session has its own
`StreamingVad` holding the LSTM state, the context and the samples not yet filling a window.
"""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np
import onnxruntime as ort

WINDOW = 512
CONTEXT = 64


def default_model_path() -> str:
    import faster_whisper

    return os.path.join(os.path.dirname(faster_whisper.__file__), "assets", "silero_vad_v6.onnx")


@lru_cache(maxsize=4)
def load_model(path: str | None = None) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.inter_op_num_threads = 1
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 4
    return ort.InferenceSession(
        path or default_model_path(), providers=["CPUExecutionProvider"], sess_options=opts
    )


class StreamingVad:
    """Speech probability for every complete 512-sample window of a session's audio."""

    def __init__(self, session: ort.InferenceSession) -> None:
        self.session = session
        self.h = np.zeros((1, 1, 128), np.float32)
        self.c = np.zeros((1, 1, 128), np.float32)
        self.context = np.zeros(CONTEXT, np.float32)
        self.pending = np.zeros(0, np.float32)

    def push(self, audio: np.ndarray) -> np.ndarray:
        """Feed float32 samples; return one probability per newly completed window."""
        buf = np.concatenate([self.pending, audio.astype(np.float32, copy=False)])
        n = len(buf) // WINDOW
        self.pending = buf[n * WINDOW :]
        if n == 0:
            return np.zeros(0, np.float32)
        windows = buf[: n * WINDOW].reshape(n, WINDOW)
        contexts = np.vstack([self.context[None, :], windows[:-1, -CONTEXT:]])
        batch = np.concatenate([contexts, windows], axis=1)
        self.context = windows[-1, -CONTEXT:].copy()
        probs, self.h, self.c = self.session.run(None, {"input": batch, "h": self.h, "c": self.c})
        return np.asarray(probs, np.float32).reshape(-1)

    def state(self) -> dict:
        return {
            "h": self.h.tobytes(),
            "c": self.c.tobytes(),
            "context": self.context.tobytes(),
            "pending": self.pending.tobytes(),
        }

    def restore(self, state: dict) -> None:
        self.h = np.frombuffer(state["h"], np.float32).reshape(1, 1, 128).copy()
        self.c = np.frombuffer(state["c"], np.float32).reshape(1, 1, 128).copy()
        self.context = np.frombuffer(state["context"], np.float32).copy()
        self.pending = np.frombuffer(state["pending"], np.float32).copy()
