"""A session's audio kept as it was received, by the VAD worker that owns the session.

While audio comes, every sample the VAD reads is appended in order to `<sid>.pcm` (raw PCM16), and
the file is flushed before each checkpoint, whose `samples` count says how long it must be. A
replica that takes the session over cuts the file back to that length (or pads it with silence,
should it have been lost) before it re-reads the audio after the checkpoint: the recording has no
gap and no sample twice, across takeovers and resumes alike. When the audio ends the spool is
encoded to Ogg Opus (`<sid>.opus`, via a temporary file and a rename) in a background thread and
removed; a spool left behind by a worker that died meanwhile is encoded by `finish_orphans`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np

from shared.messages import SAMPLE_RATE
from shared.recordings import OPUS_BITRATE

log = logging.getLogger(__name__)
ENCODE_BLOCK = SAMPLE_RATE * 10  # samples read and encoded at a time


class Recording:
    def __init__(self, directory: Path, sid: str) -> None:
        self.sid = sid
        self.spool = directory / f"{sid}.pcm"
        self.opus = directory / f"{sid}.opus"
        directory.mkdir(parents=True, exist_ok=True)
        self.file: BinaryIO | None = None

    def open_at(self, samples: int) -> None:
        """Make the spool exactly `samples` long (the checkpoint's count) and append from there."""
        want = samples * 2
        self.file = open(self.spool, "ab")  # noqa: SIM115 — kept open while the session lives
        have = self.file.seek(0, os.SEEK_END)
        if have > want:
            self.file.truncate(want)
            log.info("sid=%s recording cut back from %d to %d bytes (checkpoint)", self.sid, have, want)
        elif have < want:
            log.warning(
                "sid=%s recording %d bytes short of the checkpoint; padded with silence",
                self.sid,
                want - have,
            )
            self.file.write(bytes(want - have))
        self.file.seek(0, os.SEEK_END)

    def append(self, pcm: np.ndarray) -> None:
        if self.file is not None:
            self.file.write(pcm.astype("<i2", copy=False).tobytes())

    def flush(self) -> None:
        """Before a checkpoint: everything appended is in the file."""
        if self.file is not None:
            self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def encode(spool: Path, opus: Path, sid: str) -> float:
    """The spool as Ogg Opus (mono, 16 kHz, OPUS_BITRATE), written to a temporary file and renamed
    into place; the spool removed. Returns the audio's duration in seconds."""
    tmp = opus.with_name(f".{opus.name}.{os.getpid()}.tmp")
    samples = 0
    with open(spool, "rb") as src, av.open(str(tmp), "w", format="ogg") as out:
        stream = out.add_stream("libopus", rate=SAMPLE_RATE, layout="mono")
        stream.bit_rate = OPUS_BITRATE
        while block := src.read(ENCODE_BLOCK * 2):
            pcm = np.frombuffer(block[: len(block) // 2 * 2], "<i2")
            frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = SAMPLE_RATE
            frame.pts = samples
            samples += len(pcm)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    os.replace(tmp, opus)
    spool.unlink(missing_ok=True)
    seconds = samples / SAMPLE_RATE
    log.info("sid=%s recording saved seconds=%.2f bytes=%d", sid, seconds, opus.stat().st_size)
    return seconds


def finish(spool: Path, opus: Path, sid: str) -> None:
    """`encode`, logging instead of raising (it runs in the background)."""
    try:
        encode(spool, opus, sid)
    except FileNotFoundError:
        pass  # another worker finished it first
    except Exception:
        log.exception("sid=%s recording could not be encoded; the spool %s is kept", sid, spool)


def orphan_spools(directory: Path, live: set[str]) -> list[tuple[Path, Path, str]]:
    """Spools of sessions whose audio has ended (not in `live`): a worker died before encoding."""
    if not directory.is_dir():
        return []
    out = []
    for spool in directory.glob("*.pcm"):
        sid = spool.stem
        if sid not in live:
            out.append((spool, spool.with_suffix(".opus"), sid))
    return out
