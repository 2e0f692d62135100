"""Chromium for the browser tests and the page benchmark: finding it, its flags, a WAV file as its
fake microphone (played in real time), and starting it with one page open (`launched`, `open_page`).
"""

from __future__ import annotations

import ctypes.util
import importlib.util
import inspect
import os
import shutil
import wave
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INSTALL_HINT = (
    "the browser test needs Chromium and Playwright for Python: "
    "`apt-get install chromium libatomic1` (Playwright's driver needs the latter) and `pip install playwright` (or `pip install -e '.[dev]'`); "
    "no `playwright install` is needed, set $CHROMIUM if Chromium is not /usr/bin/chromium"
)


def find_chromium() -> str | None:
    """The system Chromium: $CHROMIUM, /usr/bin/chromium, or chromium on PATH."""
    for path in (os.environ.get("CHROMIUM"), "/usr/bin/chromium"):
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return shutil.which("chromium") or shutil.which("chromium-browser")


def missing_browser() -> str | None:
    """Why the browser tests cannot run here (with how to fix it), or None when they can.
    In CI (CI=true) they must run: a missing browser is an error there, not a skip."""
    why = None
    if importlib.util.find_spec("playwright") is None:
        why = f"playwright is not importable; {INSTALL_HINT}"
    elif find_chromium() is None:
        why = f"no Chromium found; {INSTALL_HINT}"
    elif ctypes.util.find_library("atomic") is None:  # the driver fails to start with no clear error
        why = f"Playwright's driver (Node.js) cannot load libatomic.so.1; {INSTALL_HINT}"
    if why and os.environ.get("CI") == "true":
        raise RuntimeError(f"CI runs the browser tests, but {why}")
    return why


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


# The rate Chromium's fake capture device runs at here (MediaStreamTrack.getSettings().sampleRate with
# the browser's voice processing off; 48000 with it on). A WAV at another rate is resampled by
# Chromium itself, with a low-pass of its own below 8 kHz; a WAV at the device's rate is played as
# it is (what the page sent from a 44.1 kHz WAV matches the 16 kHz clip at 73 dB SNR below 4 kHz,
# 58 dB at 4-6.5 kHz: tests/test_capture_rate.py).
FAKE_DEVICE_RATE = 44100


def resample_pcm(pcm: bytes, rate: int, out_rate: int) -> bytes:
    """16-bit mono PCM from `rate` to `out_rate` (libswresample through PyAV: flat to 0.97 x the lower
    Nyquist frequency)."""
    if rate == out_rate:
        return pcm
    import av  # a dependency of the project (uploads)
    import numpy as np

    resampler = av.AudioResampler(format="s16", layout="mono", rate=out_rate)
    frame = av.AudioFrame.from_ndarray(np.frombuffer(pcm, "<i2").reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = rate
    out = resampler.resample(frame) + resampler.resample(None)
    return b"".join(f.to_ndarray().astype("<i2").tobytes() for f in out)


def write_fake_mic(
    pcm: bytes, out: Path, *, rate: int = 16000, seconds: float, silence_s: float, wav_rate: int | None = None
) -> Path:
    """A 16-bit mono WAV: the first `seconds` of `pcm` (16-bit mono at `rate`), then `silence_s` of silence;
    resampled to `wav_rate` when given (FAKE_DEVICE_RATE: played without Chromium resampling it)."""
    n = int(seconds * rate) * 2
    wav_rate = wav_rate or rate
    body = resample_pcm(pcm[:n], rate, wav_rate)
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(wav_rate)
        w.writeframes(body + b"\0\0" * int(silence_s * wav_rate))
    return out


@asynccontextmanager
async def launched(mic: Path | None = None) -> AsyncIterator[Any]:
    """The system Chromium, headless (with `mic` as its microphone), through Playwright; closed on exit."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        args = chromium_args(mic) if mic is not None else ["--no-sandbox"]
        browser = await pw.chromium.launch(executable_path=find_chromium(), headless=True, args=args)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class OpenPage:
    """A page of the app in its own browser context, and the uncaught errors it has thrown so far."""

    page: Any
    context: Any
    errors: list[str] = field(default_factory=list)


@asynccontextmanager
async def open_page(
    base_url: str,
    mic: Path | None = None,
    *,
    permissions: tuple[str, ...] = ("microphone",),
    before_load: Callable[[Any], Any] | None = None,
    path: str = "/",
    **context_options: Any,
) -> AsyncIterator[OpenPage]:
    """`launched(mic)`, a context (locale en-US and `context_options`, e.g. viewport, timezone_id)
    granted `permissions` on `base_url`, and one page, its errors collected, loaded at `base_url` +
    `path` after `before_load(page)` (awaited when it returns an awaitable: routing its sockets, an init
    script). Closed on exit."""
    async with launched(mic) as browser:
        context = await browser.new_context(locale="en-US", **context_options)
        if permissions:
            await context.grant_permissions(list(permissions), origin=base_url)
        opened = OpenPage(await context.new_page(), context)
        opened.page.on("pageerror", lambda exc: opened.errors.append(str(exc)))
        if before_load is not None and inspect.isawaitable(ready := before_load(opened.page)):
            await ready
        await opened.page.goto(base_url + path)
        yield opened
