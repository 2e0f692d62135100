"""A session's audio kept as it was received, by the VAD worker that owns the session.

While audio comes, every sample the VAD reads is appended in order to `<sid>.pcm` (raw PCM16), and
the file is flushed before each checkpoint, whose `samples` count says how long it must be. A
replica that takes the session over cuts the file back to that length (or pads it with silence,
should it have been lost) before it re-reads the audio after the checkpoint: the recording has no
gap and no sample twice, across takeovers and resumes alike. When the audio ends the spool is
encoded to Ogg Opus (`<sid>.opus`, via a temporary file and a rename) by a child process at low
priority (`python -m services.vad.recording <spool> <opus> <sid>`: in a thread its GIL holds tripled
the VAD loop's p99 lag) and removed; a spool left behind by a worker that died meanwhile is encoded
by the VAD's sweep for orphans.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np

from shared.logs import setup_logging
from shared.messages import SAMPLE_RATE
from shared.recordings import OPUS_BITRATE

log = logging.getLogger(__name__)
ENCODE_BLOCK = SAMPLE_RATE  # samples read and encoded at a time: short GIL holds, the loop goes on


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


async def finish(spool: Path, opus: Path, sid: str) -> None:
    """Encode in a child process at low priority; log, never raise (it runs in the background)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.vad.recording", str(spool), str(opus), sid, preexec_fn=_lower_priority
    )
    if await proc.wait() != 0:
        log.error(
            "sid=%s recording could not be encoded (code %s); the spool %s is kept",
            sid,
            proc.returncode,
            spool,
        )


def _lower_priority() -> None:
    os.nice(10)


def main(argv: list[str]) -> int:
    """`python -m services.vad.recording <spool> <opus> <sid>`: encode one finished recording."""
    setup_logging("vad", os.environ.get("LOG_LEVEL", "INFO"))
    spool, opus, sid = Path(argv[0]), Path(argv[1]), argv[2]
    try:
        encode(spool, opus, sid)
    except FileNotFoundError:
        return 0  # another worker finished it first
    except Exception:
        log.exception("sid=%s recording could not be encoded", sid)
        return 1
    return 0


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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
