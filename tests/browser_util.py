"""Helpers for the browser end-to-end tests: a system Chromium driven by Playwright, a fake microphone.

Playwright never downloads a browser here: it drives the distribution's Chromium
(`/usr/bin/chromium`, or `$CHROMIUM`), which plays a WAV file as the microphone
(`--use-file-for-fake-audio-capture`) in real time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from testkit.browser import (  # noqa: F401 (the browser tests import these from here)
    FAKE_DEVICE_RATE,
    INSTALL_HINT,
    OpenPage,
    chromium_args,
    find_chromium,
    launched,
    missing_browser,
    open_page,
    resample_pcm,
    write_fake_mic,
)

DESKTOP = {"width": 1280, "height": 900}  # the viewport of the browser tests that look at the layout


def browser_marks() -> list[pytest.MarkDecorator]:
    """A browser test module's `pytestmark`: slow (the whole stack), and skipped, saying how to fix
    it, where Chromium or Playwright is missing (in CI that is an error: `missing_browser`)."""
    missing = missing_browser()
    return [pytest.mark.slow, pytest.mark.skipif(missing is not None, reason=str(missing))]


@dataclass
class Connection:
    """One WebSocket the page opened: what it sent and what it received."""

    sent_text: list[dict[str, Any]] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    audio_bytes: int = 0
    audio_frames: int = 0
    odd_frames: int = 0
    refused: bool = False  # opened while the test held the network down: closed at once, never connected
    frames: list[bytes] = field(default_factory=list)  # every binary frame the page sent, in order
    lost_frames: int = 0  # frames the page sent that a cut swallowed (never reached the server)
    lost_messages: int = 0  # messages from the server a cut swallowed (never reached the page)

    @property
    def offset(self) -> int:
        """The byte of session audio this connection's first frame starts at (0 for a new session)."""
        start = next((m for m in self.sent_text if m.get("type") == "start"), {})
        return int(start.get("offset") or 0)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.received if m.get("type") == kind]


@dataclass
class SocketLog:
    """Every WebSocket frame the page sends and receives, per connection.

    `attach` only watches the page's sockets. `route` puts the test between the page and the server
    (Playwright's WebSocket routing: the page's socket connects to the real server through the test),
    which lets the test simulate a network drop: `drop()` hands the page an abnormal closure (1006), as a
    lost network would, and closes the connection to the server; until `restore()`, sockets the page
    opens are refused the same way, so the page buffers its audio meanwhile.
    """

    connections: list[Connection] = field(default_factory=list)
    offline: bool = False
    drops: int = 0
    _routes: list[tuple[Any, Any]] = field(default_factory=list)  # (page side, server side)
    _dropped: list[tuple[Any, Any]] = field(default_factory=list)
    _cut_at: int | None = None  # armed: cut the connection when it has sent this many audio frames
    _hold_s: float = 0.0
    _cutting: set[int] = field(default_factory=set)  # ids of connections being cut (traffic swallowed)
    _cut_tasks: list[Any] = field(default_factory=list)

    # --- watching only ---

    def attach(self, page: Any) -> None:
        page.on("websocket", self._on_socket)

    def _on_socket(self, ws: Any) -> None:
        conn = Connection()
        self.connections.append(conn)
        ws.on("framesent", lambda payload: self._sent(conn, payload))
        ws.on("framereceived", lambda payload: self._received(conn, payload))

    # --- in the middle ---

    async def route(self, page: Any, url: str = "**/ws/transcribe*") -> None:
        await page.route_web_socket(url, self._on_route)

    async def _on_route(self, ws: Any) -> None:
        conn = Connection()
        self.connections.append(conn)
        if self.offline:
            conn.refused = True
            await ws.close(code=1006, reason="")
            return
        server = ws.connect_to_server()
        self._routes.append((ws, server))

        def dropped() -> bool:
            return any(server is s for _, s in self._dropped)

        def from_page(message: str | bytes) -> None:
            self._sent(conn, message)
            if (
                id(conn) not in self._cutting
                and self._cut_at is not None
                and conn.audio_frames > self._cut_at
            ):
                self._cut_at = None
                self._cutting.add(id(conn))
                self._cut_tasks.append(asyncio.get_running_loop().create_task(self._cut(ws, server)))
            if id(conn) in self._cutting:
                conn.lost_frames += isinstance(message, bytes)
                return
            server.send(message)

        def from_server(message: str | bytes) -> None:
            if id(conn) in self._cutting:
                conn.lost_messages += 1
                return
            self._received(conn, message)
            ws.send(message)

        async def page_closed(code: int | None, reason: str | None) -> None:
            if dropped():  # the page was told 1006; the server sees a client gone mid-session
                await server.close(code=3000, reason="network drop simulated by the test")
            else:
                await server.close(code=code, reason=reason)

        async def server_closed(code: int | None, reason: str | None) -> None:
            if not dropped():
                await ws.close(code=code, reason=reason)

        ws.on_message(from_page)
        ws.on_close(page_closed)
        server.on_message(from_server)
        server.on_close(server_closed)

    async def drop(self) -> None:
        """The network goes down: the live connection is cut (the page first, so that no frame it
        sends is lost in between; then the server), and new connections are refused."""
        assert self._routes, "no connection to drop"
        self.offline = True
        self.drops += 1
        self._dropped.append(self._routes[-1])
        await self._routes[-1][0].close(code=1006, reason="")

    def cut_after(self, frames: int, hold_s: float = 0.5) -> None:
        """Arms an abrupt cut: once the current (or next) connection has sent `frames` audio frames,
        the network dies under it: nothing more passes either way (frames the page sends are lost,
        acks from the server too) for `hold_s`, then the page gets 1006 and the server a close; the
        network stays down until `restore()`."""
        self._cut_at, self._hold_s = frames, hold_s

    async def _cut(self, page_side: Any, server: Any) -> None:
        self.offline = True
        self.drops += 1
        self._dropped.append((page_side, server))
        await asyncio.sleep(self._hold_s)  # the dead network itself, not a synchronisation
        await page_side.close(code=1006, reason="")
        with contextlib.suppress(Exception):  # closed already by `page_closed`
            await server.close(code=3000, reason="network cut simulated by the test")

    @property
    def cutting(self) -> bool:
        """An armed cut has not fired yet, or is in progress."""
        return self._cut_at is not None or any(not t.done() for t in self._cut_tasks)

    def restore(self) -> None:
        """The network is back: the page's next attempt reaches the server."""
        self.offline = False

    # --- the record ---

    def _sent(self, conn: Connection, payload: str | bytes) -> None:
        if isinstance(payload, bytes):
            conn.frames.append(payload)
            conn.audio_bytes += len(payload)
            conn.audio_frames += 1
            conn.odd_frames += len(payload) % 2
        else:
            conn.sent_text.append(json.loads(payload))

    def _received(self, conn: Connection, payload: str | bytes) -> None:
        if isinstance(payload, str):
            conn.received.append(json.loads(payload))

    @property
    def connected(self) -> list[Connection]:
        """The connections that reached the server."""
        return [c for c in self.connections if not c.refused]

    @property
    def sockets(self) -> int:
        return len(self.connections)

    @property
    def received(self) -> list[dict[str, Any]]:
        return [m for c in self.connections for m in c.received]

    @property
    def sent_text(self) -> list[dict[str, Any]]:
        return [m for c in self.connections for m in c.sent_text]

    @property
    def sent_audio_bytes(self) -> int:
        return sum(c.audio_bytes for c in self.connections)

    @property
    def sent_audio_frames(self) -> int:
        return sum(c.audio_frames for c in self.connections)

    @property
    def odd_frames(self) -> int:
        return sum(c.odd_frames for c in self.connections)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.received if m.get("type") == kind]

    def captured_audio(self) -> bytes:
        """The session's audio as the page meant it: each connection's frames from its `offset`
        (resent bytes must equal what they repeat)."""
        audio = bytearray()
        for conn in self.connected:
            data = b"".join(conn.frames)
            at = conn.offset
            assert at <= len(audio), f"connection resumed at byte {at}, past the {len(audio)} sent before"
            overlap = min(len(audio) - at, len(data))
            assert bytes(audio[at : at + overlap]) == data[:overlap], f"resent audio differs at byte {at}"
            if at + len(data) > len(audio):
                audio[at:] = data
        return bytes(audio)


SRT_TIMING = re.compile(r"^(\d\d):([0-5]\d):([0-5]\d),(\d{3}) --> (\d\d):([0-5]\d):([0-5]\d),(\d{3})$")


@dataclass
class Cue:
    number: int
    start_s: float
    end_s: float
    lines: list[str]

    @property
    def text(self) -> str:
        return " ".join(self.lines)


def parse_srt(text: str) -> list[Cue]:
    """A SubRip file, strictly: blocks of number (1, 2, ...), `HH:MM:SS,mmm --> HH:MM:SS,mmm`, then one
    or more non-empty text lines, separated by one blank line; times never go backwards."""
    assert text.strip(), "empty .srt"
    assert "\r" not in text or "\r\n" in text, "stray carriage return"
    blocks = text.replace("\r\n", "\n").strip("\n").split("\n\n")
    cues: list[Cue] = []
    for n, block in enumerate(blocks, 1):
        lines = block.split("\n")
        assert len(lines) >= 3, f"cue {n}: needs a number, a timing and text: {block!r}"
        assert lines[0] == str(n), f"cue {n}: numbered {lines[0]!r}"
        m = SRT_TIMING.match(lines[1])
        assert m, f"cue {n}: bad timing line {lines[1]!r}"
        g = [int(x) for x in m.groups()]
        start = g[0] * 3600 + g[1] * 60 + g[2] + g[3] / 1000
        end = g[4] * 3600 + g[5] * 60 + g[6] + g[7] / 1000
        assert start < end, f"cue {n}: ends before it starts: {lines[1]!r}"
        if cues:
            assert start >= cues[-1].start_s, f"cue {n} starts before cue {n - 1}"
        text_lines = lines[2:]
        assert all(t.strip() for t in text_lines), f"cue {n}: blank text line in {block!r}"
        cues.append(Cue(n, start, end, text_lines))
    return cues
