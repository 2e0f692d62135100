"""Helpers for the browser end-to-end tests: a system Chromium driven by Playwright, a fake microphone.

Playwright never downloads a browser here: it drives the distribution's Chromium
(`/usr/bin/chromium`, or `$CHROMIUM`), which plays a WAV file as the microphone
(`--use-file-for-fake-audio-capture`) in real time.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INSTALL_HINT = (
    "the browser test needs Chromium and Playwright for Python: "
    "`apt-get install chromium` and `pip install playwright` (or `pip install -e '.[dev]'`); "
    "no `playwright install` is needed, set $CHROMIUM if Chromium is not /usr/bin/chromium"
)


def find_chromium() -> str | None:
    """The system Chromium: $CHROMIUM, /usr/bin/chromium, or chromium on PATH."""
    for path in (os.environ.get("CHROMIUM"), "/usr/bin/chromium"):
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return shutil.which("chromium") or shutil.which("chromium-browser")


def missing_browser() -> str | None:
    """Why the browser tests cannot run here (with how to fix it), or None when they can."""
    if importlib.util.find_spec("playwright") is None:
        return f"playwright is not importable; {INSTALL_HINT}"
    if find_chromium() is None:
        return f"no Chromium found; {INSTALL_HINT}"
    return None


def chromium_args(fake_mic: Path) -> list[str]:
    """Headless, quiet, and the WAV as the microphone (played once: `%noloop`)."""
    return [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={fake_mic}%noloop",
        "--autoplay-policy=no-user-gesture-required",
    ]


def write_fake_mic(pcm: bytes, out: Path, *, rate: int = 16000, seconds: float, silence_s: float) -> Path:
    """A 16-bit mono WAV: the first `seconds` of `pcm` (16-bit mono at `rate`), then `silence_s` of silence."""
    n = int(seconds * rate) * 2
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm[:n] + b"\0\0" * int(silence_s * rate))
    return out


@dataclass
class SocketLog:
    """Every WebSocket frame the page sends and receives (attach before the page opens its socket)."""

    received: list[dict[str, Any]] = field(default_factory=list)
    sent_text: list[dict[str, Any]] = field(default_factory=list)
    sent_audio_bytes: int = 0
    sent_audio_frames: int = 0
    odd_frames: int = 0
    sockets: int = 0

    def attach(self, page: Any) -> None:
        page.on("websocket", self._on_socket)

    def _on_socket(self, ws: Any) -> None:
        self.sockets += 1
        ws.on("framesent", self._on_sent)
        ws.on("framereceived", self._on_received)

    def _on_sent(self, payload: str | bytes) -> None:
        if isinstance(payload, bytes):
            self.sent_audio_bytes += len(payload)
            self.sent_audio_frames += 1
            self.odd_frames += len(payload) % 2
        else:
            self.sent_text.append(json.loads(payload))

    def _on_received(self, payload: str | bytes) -> None:
        if isinstance(payload, str):
            self.received.append(json.loads(payload))

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.received if m.get("type") == kind]
