"""Helpers of the fault-injection tests: a protocol client that survives a dropped connection, and
checks on what it received. The cluster of real processes they stop, kill and restart one by one
(Redis included) is in `cluster_util.py` (imported from here as before).

Every wait here is on an external condition (a health check, a heartbeat key, a log line, a message)
with a deadline; nothing sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from tests.client import FRAME_BYTES
from tests.cluster_util import POLL_S, Cluster, service_of, start_cluster, wait_for  # noqa: F401
from tests.transcripts import assert_heard, sentence_parts
from tests.util import Lecture

# --- the client ---------------------------------------------------------------------------------

RECONNECT_S = 0.5  # the client's wait before it tries a failed resume again


class Dropped(Exception):
    """The connection to the gateway went away before the session ended; `sent` bytes had been sent."""

    def __init__(self, sent: int, total: int) -> None:
        super().__init__(f"connection dropped after {sent} of {total} bytes")
        self.sent = sent


class Client:
    """One protocol session seen from the client, across connections (a drop is resumed by id).

    `conns` holds the messages of each connection in order of arrival.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.sid: str | None = None
        self.conns: list[list[dict[str, Any]]] = []
        self.close_codes: list[int | None] = []
        self.http: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.reader: asyncio.Task | None = None
        self.progress = asyncio.Event()
        self.drops: list[int] = []  # bytes of audio sent when a drop was noticed
        self.audio = bytearray()  # the session's audio as the client means it (what it was asked to send)
        self.received = 0  # the `received` of the last `session` message: what the server holds

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [m for c in self.conns for m in c]

    @property
    def connected(self) -> bool:
        return (
            self.ws is not None and not self.ws.closed and self.reader is not None and not self.reader.done()
        )

    async def connect(self, start: dict[str, Any] | None = None) -> None:
        """Open a connection: a new session (`start`), or a resume of this one once it has an id."""
        await self.disconnect()
        self.http = aiohttp.ClientSession()
        self.ws = await self.http.ws_connect(self.url)
        msgs: list[dict[str, Any]] = []
        self.conns.append(msgs)
        first = {"type": "start", "session": self.sid} if self.sid else (start or {"type": "start"})
        await self.ws.send_str(json.dumps(first))
        self.reader = asyncio.create_task(self._read(self.ws, msgs))
        has_session = lambda: any(m["type"] == "session" for m in msgs)  # noqa: E731
        await self.wait_until(lambda: has_session() or self.reader.done(), 30, "the session id")
        if not has_session():  # closed first (e.g. `unavailable` while Redis fails over)
            raise Dropped(0, 0)
        session = next(m for m in msgs if m["type"] == "session")
        assert self.sid in (None, session["session"]), (self.sid, session)
        self.sid, self.received = session["session"], session["received"]

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, msgs: list[dict[str, Any]]) -> None:
        try:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    msgs.append(json.loads(msg.data))
                    self.progress.set()
        finally:
            self.close_codes.append(ws.close_code)
            self.progress.set()

    async def disconnect(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            await asyncio.gather(self.reader, return_exceptions=True)
        if self.http is not None:
            await self.http.close()
        self.ws = self.reader = self.http = None

    async def send_audio(self, pcm: bytes, speed: float | None = None, record: bool = True) -> None:
        """Send PCM in 100 ms frames (paced at `speed`× real time, else as fast as possible); `record`:
        it is the next part of the session's audio (False: it is a resend of recorded audio)."""
        if record:
            self.audio += pcm
        t0 = time.monotonic()
        for i in range(0, len(pcm), FRAME_BYTES):
            if speed:
                due = t0 + i / 32000 / speed
                await asyncio.sleep(max(0.0, due - time.monotonic()))  # pacing, not synchronisation
            if not self.connected:
                raise Dropped(i, len(pcm))
            assert self.ws is not None
            try:
                await self.ws.send_bytes(pcm[i : i + FRAME_BYTES])
            except (ConnectionError, aiohttp.ClientError) as e:
                raise Dropped(i, len(pcm)) from e

    async def stop(self) -> None:
        assert self.ws is not None
        await self.ws.send_str(json.dumps({"type": "stop"}))

    async def wait_until(self, cond: Callable[[], Any], within: float, what: str) -> Any:
        """Wait for messages until `cond()` holds (checked after each message); fail after `within` s."""
        deadline = time.monotonic() + within
        while True:
            got = cond()
            if got:
                return got
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out after {within:.0f}s waiting for {what}; got {self.conns}")
            self.progress.clear()
            try:
                await asyncio.wait_for(self.progress.wait(), min(remaining, 1.0))
            except TimeoutError:
                pass

    def acked(self, conns: list[list[dict[str, Any]]] | None = None) -> int:
        """The largest `ack` received (on `conns`, by default on every connection so far)."""
        msgs = [m for c in (self.conns if conns is None else conns) for m in c]
        return max((m["received"] for m in msgs if m["type"] == "ack"), default=0)

    def final_count(self) -> int:
        return len({m["segment"] for m in self.messages if m["type"] == "transcript" and m["final"]})

    async def wait_finals(self, n: int, within: float = 60) -> None:
        await self.wait_until(lambda: self.final_count() >= n, within, f"{n} finals")

    async def wait_end_or_drop(self, within: float = 120) -> bool:
        """True once this connection got `end`, False if it dropped before."""
        msgs = self.conns[-1]
        await self.wait_until(
            lambda: (msgs and msgs[-1]["type"] == "end") or not self.connected, within, "end"
        )
        return bool(msgs) and msgs[-1]["type"] == "end"


async def finish(client: Client, pcm: bytes, speed: float | None = None, within: float = 120) -> int:
    """Send the rest of the audio, then stop, and wait for `end`; a dropped connection is resumed, and
    the audio goes on from the `received` the server reports (what died in the socket, or was not yet
    read when the gateway went, is sent again); a resume that is closed before its `session` (the
    server's storage failing over) is tried again after RECONNECT_S. Returns the number of resumes."""
    resumes, stopped = 0, False
    pos = len(client.audio)  # the session byte the next frame starts at
    client.audio += pcm
    deadline = time.monotonic() + within
    while True:
        try:
            if not client.connected:
                try:
                    await client.connect()
                except Dropped:
                    assert time.monotonic() < deadline, "no resume"
                    await asyncio.sleep(RECONNECT_S)  # a client's reconnect backoff, as the page's
                    continue
                resumes += 1
                pos = client.received
                if stopped and pos == len(client.audio):  # the stop may not have reached the gateway
                    await client.stop()
            if not stopped or pos < len(client.audio):
                await client.send_audio(bytes(client.audio[pos:]), speed, record=False)
                pos = len(client.audio)
                await client.stop()
                stopped = True
        except Dropped as e:
            pos += e.sent
            client.drops.append(pos)
            continue
        if await client.wait_end_or_drop(max(1.0, deadline - time.monotonic())):
            return resumes
        assert time.monotonic() < deadline, "no end"


# --- checks on what the client received ------------------------------------------------------------


def check_connection(msgs: list[dict[str, Any]]) -> dict[int, str]:
    """One connection: each final at most once, no transcript of a segment after its final."""
    shown: dict[int, str] = {}
    for m in msgs:
        if m["type"] != "transcript":
            continue
        assert m["segment"] not in shown, f"segment {m['segment']} after its final: {m}"
        if m["final"]:
            shown[m["segment"]] = m["text"]
    return shown


def check_transcript(
    conns: list[list[dict[str, Any]]], lecture: Lecture, until_s: float, allowed_errors: tuple[str, ...] = ()
) -> dict[int, str]:
    """The session ended cleanly, and the last connection (a resume replays the whole session) got
    every utterance of the audio streamed exactly once, each one the right sentence; finals that came
    on earlier connections are identical."""
    last = conns[-1]
    assert last and last[-1] == {"type": "end"}, last[-3:]
    errors = [m for c in conns for m in c if m["type"] == "error" and m["code"] not in allowed_errors]
    assert not errors, errors
    views = [check_connection(c) for c in conns]
    shown = views[-1]
    for v in views[:-1]:
        for seg, text in v.items():
            assert shown.get(seg) == text, f"segment {seg} changed: {text!r} then {shown.get(seg)!r}"
    speech = [s for s in lecture.speech if s["end"] <= until_s]
    assert sorted(shown) == list(range(len(shown))), shown  # numbered from 0, none missing
    spans = {m["segment"]: m for m in last if m["type"] == "transcript" and m["final"]}
    sentence_parts([spans[seg] for seg in sorted(shown)], speech)
    assert_heard([s["text"] for s in speech], [shown[seg] for seg in sorted(shown)])
    return shown


def alert_categories(conns: list[list[dict[str, Any]]]) -> list[str]:
    """Alerts of the last connection (the whole session, replayed after a resume)."""
    return sorted(m["category"] for m in conns[-1] if m["type"] == "alert")
