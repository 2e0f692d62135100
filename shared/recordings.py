"""Where a lecture's recorded audio lives: `<DATA_DIR>/audio/<sid>.opus` (Ogg Opus, mono 16 kHz,
24 kb/s: about 16 MB for 90 minutes), spooled as raw PCM16 in `<sid>.pcm` while the session's
audio still comes (services/vad/recording.py writes both; the gateway serves and deletes them)."""

from __future__ import annotations

from pathlib import Path

from shared.settings import CommonSettings

OPUS_BITRATE = 24_000


def audio_dir(settings: CommonSettings) -> Path:
    return Path(settings.data_dir) / "audio"


def opus_path(settings: CommonSettings, sid: str) -> Path:
    return audio_dir(settings) / f"{sid}.opus"


def spool_path(settings: CommonSettings, sid: str) -> Path:
    return audio_dir(settings) / f"{sid}.pcm"


def remove(settings: CommonSettings, sid: str) -> bool:
    """Deletes the session's audio files; True when there were any."""
    found = False
    for path in (opus_path(settings, sid), spool_path(settings, sid)):
        try:
            path.unlink()
            found = True
        except FileNotFoundError:
            pass
    return found
