"""Reading back the recorded audio (Ogg Opus) in tests: its duration, by decoding every sample."""

from __future__ import annotations

import io

import av


def opus_seconds(data: bytes) -> float:
    """The duration of an Ogg Opus file's audio, from its decoded samples (pre-skip excluded)."""
    with av.open(io.BytesIO(data)) as c:
        stream = c.streams.audio[0]
        samples = sum(frame.samples for frame in c.decode(stream))
        return samples / stream.sample_rate
