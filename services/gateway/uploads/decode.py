"""Decoding an uploaded file with PyAV: probe it, then PCM16 16 kHz mono in 1-s chunks, in a thread."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import av

from services.gateway.errors import ApiError
from shared.messages import (
    SAMPLE_RATE,
)

log = logging.getLogger(__name__)
CHUNK_BYTES = SAMPLE_RATE * 2  # one AudioChunk: 1 s of PCM16
PROBE_FRAMES = 200  # frames read to find the first one with audio
ACCEPTED = "send WAV, MP3, M4A, WebM, OGG or FLAC audio"


def decodable_frames(container: av.container.InputContainer) -> Iterator[av.AudioFrame]:
    """The first audio stream's frames, skipping the ones that do not decode (as faster-whisper does)."""
    frames = container.decode(audio=0)
    while True:
        try:
            yield next(frames)
        except StopIteration:
            return
        except av.error.InvalidDataError:
            continue


def container_duration(container: av.container.InputContainer) -> float | None:
    if container.duration:
        return container.duration / av.time_base
    stream = container.streams.audio[0]
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return None


def probe(path: Path) -> float | None:
    """Checks that the file opens and decodes to audio; its duration when the container tells it."""
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise ApiError(400, f"the file has no audio track; {ACCEPTED}", "file", "no_audio")
            for n, frame in enumerate(decodable_frames(container)):
                if frame.samples:
                    return container_duration(container)
                if n >= PROBE_FRAMES:
                    break
    except av.error.FFmpegError as e:
        reason = getattr(e, "strerror", None) or type(e).__name__
        raise ApiError(
            400, f"not a decodable audio file ({reason}); {ACCEPTED}", "file", "invalid_audio"
        ) from None
    raise ApiError(400, f"no decodable audio in the file; {ACCEPTED}", "file", "invalid_audio")


def pcm_chunks(path: Path) -> Iterator[bytes]:
    """The file as 16 kHz mono PCM16, in 1 s chunks (the last one shorter)."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    buf = bytearray()
    with av.open(str(path), metadata_errors="ignore") as container:
        for frame in decodable_frames(container):
            frame.pts = None  # timestamps of broken files must not stop the resampler
            for out in resampler.resample(frame):
                buf += out.to_ndarray().tobytes()
            while len(buf) >= CHUNK_BYTES:
                yield bytes(buf[:CHUNK_BYTES])
                del buf[:CHUNK_BYTES]
        for out in resampler.resample(None):
            buf += out.to_ndarray().tobytes()
    for i in range(0, len(buf) - len(buf) % 2, CHUNK_BYTES):
        yield bytes(buf[i : i + CHUNK_BYTES])


def take(chunks: Iterator[bytes], n: int) -> list[bytes]:
    return [c for _, c in zip(range(n), chunks, strict=False)]
