"""The frames waiting for one socket, and the one task that sends them (a live client, a follower).

Frames go into a bounded queue; `run` sends them in order and closes the socket after the last
(`end`). A client that does not read is cut off alone: `cut` drops what waits and queues the
`slow_client` error and the close; a send that takes longer than SEND_TIMEOUT_S (the client stopped
reading and its socket is full) closes the socket with 1008. Nobody else waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from aiohttp import WSCloseCode, web

from shared.messages import ErrorEvent, Msg, to_client_json

SEND_TIMEOUT_S = 10.0


class Outbox:
    def __init__(self, ws: web.WebSocketResponse, size: int) -> None:
        self.ws = ws
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(size)
        self.cut_off = False

    def offer(self, msg: Msg) -> bool:
        """Queues a frame if there is room; False when the queue is full (or was cut off)."""
        if self.cut_off:
            return False
        try:
            self.queue.put_nowait(to_client_json(msg))
        except asyncio.QueueFull:
            return False
        return True

    async def put(self, msg: Msg) -> bool:
        """Queues a frame, waiting up to SEND_TIMEOUT_S for room; False when none came (or cut off)."""
        if self.cut_off:
            return False
        try:
            await asyncio.wait_for(self.queue.put(to_client_json(msg)), SEND_TIMEOUT_S)
        except TimeoutError:
            return False
        return True

    def cut(self, message: str) -> None:
        """Drops what waits; the client gets `slow_client` with `message`, then the close."""
        self.cut_off = True
        self.queue = asyncio.Queue(2)
        self.queue.put_nowait(to_client_json(ErrorEvent(code="slow_client", message=message)))
        self.queue.put_nowait(None)

    def end(self) -> None:
        """After the frames queued so far, the sender closes the socket."""
        if self.cut_off:
            return  # the close is queued already
        try:
            self.queue.put_nowait(None)
        except asyncio.QueueFull:
            self.cut_off = True
            self.queue = asyncio.Queue(1)
            self.queue.put_nowait(None)

    async def run(self, slow_reason: bytes, on_slow: Callable[[], None] | None = None) -> None:
        """The sender: every queued frame in order, then the close; `on_slow` when a send timed out."""
        while True:
            text = await self.queue.get()
            if text is None or self.ws.closed:
                await self.ws.close()
                return
            try:
                await asyncio.wait_for(self.ws.send_str(text), SEND_TIMEOUT_S)
            except (TimeoutError, ConnectionResetError) as e:
                if isinstance(e, TimeoutError) and on_slow is not None:
                    on_slow()
                with contextlib.suppress(Exception):
                    await self.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=slow_reason)
                return
