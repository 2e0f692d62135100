"""Acknowledged audio in a real browser: the network dies under the page, abruptly, several times.

Chromium's fake microphone plays the first 25 s of tests/data/lecture1 to the page; its WebSocket goes
through the test (`SocketLog.route`), which cuts it the way a dead network does: from one frame on,
nothing passes either way (the frames the page sends into the dead socket are lost, and so are the
server's acks) until the page is told 1006; the network stays down a moment while the page buffers.
The first cut comes in the steady stream, the next ones in the middle of the burst of frames the page
sends again right after reconnecting. Then:

- the session's stored audio (every entry of `audio:{sid}`, read as it is written) is byte for byte
  what the page captured (rebuilt from the frames it handed its sockets and the `offset` of each
  resume), and the server's `received` is its length: nothing lost, nothing doubled;
- the finals are those of an uninterrupted run of the same bytes through the protocol client at 1x.
  The stack runs with TRANSCRIBE_BATCH=1: a backlog sent again after a cut may bring two finals
  together, and a batch pads them to the longer one, which changes what tiny.en hears (README); one
  at a time, the transcript is a function of the audio alone.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from shared import keys
from shared.messages import AudioChunk, AudioStop, from_fields
from shared.redis_server import start_redis
from tests.browser_util import FAKE_DEVICE_RATE, SocketLog, browser_marks, open_page, write_fake_mic
from tests.client import finals, stream
from tests.util import Lecture, Stack, free_port, running_stack

pytestmark = browser_marks()

CLIP_S = 25.0
SILENCE_S = 4.0
FIRST_CUT_S = 6.0  # sent audio at the first cut (in the steady stream)
OFFLINE_S = 2.0  # each outage; the page buffers meanwhile, then sends that backlog in one burst
BURST_CUTS = 2  # then cut that many bursts in the middle
HOLD_S = 0.5  # how long the dead network swallows traffic before the page notices


@pytest.fixture(scope="module")
def batch1_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The whole stack on its own Redis, finals decoded one at a time."""
    tmp = tmp_path_factory.mktemp("acks-stack")
    redis_port = free_port()
    server = start_redis(redis_port, tmp / "redis")
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    # Stream nodes of 100 entries whatever their size (the default closes a node at 4 KB, one audio
    # entry): the VAD's approximate trim then removes whole blocks of 100, leaving the tap slack.
    with redis.Redis.from_url(redis_url) as conn:
        conn.config_set("stream-node-max-bytes", 0)
    try:
        with running_stack(redis_url, tmp / "services.log", TRANSCRIBE_BATCH="1") as stack:
            yield stack
    finally:
        server.terminate()
        server.wait(10)


def tap_audio(redis_url: str, key: str, out: str) -> None:
    """In a process of its own: reads `key` as the gateway writes it, appending each entry's audio to
    `out` (`out.err`: an entry out of order or missed; `out.done`: the stop was seen)."""
    r = redis.Redis.from_url(redis_url)
    last, n = "0-0", 0
    with open(out, "wb") as f:
        while True:
            for _, entries in r.xread({key: last}, block=1000) or []:
                for entry_id, fields in entries:
                    last = entry_id
                    msg = from_fields(fields)
                    if isinstance(msg, AudioChunk):
                        if msg.seq != n:
                            Path(out + ".err").write_text(f"entry seq {msg.seq} after {n} entries")
                        n += 1
                        f.write(msg.pcm)
                        f.flush()
                    elif isinstance(msg, AudioStop):
                        Path(out + ".done").write_text(str(n))
                        return


class AudioTap:
    """`audio:{sid}` as it is written, read by a process of its own: the VAD trims what it has
    checkpointed seconds later (on this test's Redis in whole blocks of 100 entries), and the tap
    must see every entry, in order, which it checks."""

    def __init__(self, redis_url: str, key: str, out: Path) -> None:
        self.out = out
        self.proc = multiprocessing.get_context("spawn").Process(
            target=tap_audio, args=(redis_url, key, str(out)), daemon=True
        )

    def start(self) -> None:
        self.proc.start()

    def finish(self, within: float) -> None:
        self.proc.join(within)
        if self.proc.is_alive():
            self.proc.kill()
        err = Path(str(self.out) + ".err")
        assert not err.exists(), err.read_text()
        assert Path(str(self.out) + ".done").exists(), "the tap never saw the stop"

    @property
    def audio(self) -> bytes:
        return self.out.read_bytes()


def view(messages: list[dict[str, Any]]) -> list[tuple[int, str, float, float]]:
    return [(m["segment"], m["text"], m["start"], m["end"]) for m in finals(messages)]


async def wait_until(page: Any, log: SocketLog, what: str) -> None:
    """Waits for an armed cut to fire and finish (page-side: the page is reconnecting)."""
    from playwright.async_api import expect

    await expect(page.locator("#status")).to_have_attribute("data-state", "reconnecting", timeout=20_000)
    for _ in range(600):  # the page's reconnect backoff, then the cut's own hold time
        if not log.cutting:
            return
        await asyncio.sleep(0.05)  # polling the cut task, not a synchronisation of the system under test
    raise AssertionError(f"the cut {what} did not complete")


async def test_abrupt_cuts_lose_and_double_nothing(
    batch1_stack: Stack, lecture1: Lecture, tmp_path: Path
) -> None:
    from playwright.async_api import expect

    stack = batch1_stack
    mic = write_fake_mic(
        lecture1.pcm, tmp_path / "mic.wav", seconds=CLIP_S, silence_s=SILENCE_S, wav_rate=FAKE_DEVICE_RATE
    )
    log = SocketLog()
    waiting_shown: list[str] = []
    async with open_page(stack.http, mic, before_load=log.route) as opened:
        page, page_errors = opened.page, opened.errors
        body, status = page.locator("body"), page.locator("#status")
        await page.click("#start")
        await expect(body).to_have_attribute("data-phase", "live", timeout=15_000)
        session_id = page.locator("#session-id")
        await expect(session_id).not_to_be_empty(timeout=15_000)
        sid = await session_id.text_content()
        assert sid
        tap = AudioTap(stack.redis_url, keys.audio(sid), tmp_path / "stored.pcm")
        tap.start()

        # 1: in the steady stream.
        await page.wait_for_function(
            "s => window.classrec.recording.sentSeconds >= s", arg=FIRST_CUT_S, timeout=30_000
        )
        log.cut_after(log.connected[-1].audio_frames, hold_s=HOLD_S)
        await wait_until(page, log, "in the stream")
        for n in range(BURST_CUTS + 1):
            await asyncio.sleep(OFFLINE_S)  # the outage itself, not a synchronisation
            await expect(status).to_contain_text("of audio waiting")  # the banner says how much
            waiting_shown.append(await status.text_content() or "")
            backlog = await page.evaluate("() => window.classrec.recording.conn.pending.length")
            if n < BURST_CUTS:  # 2, 3: the next connection is cut in the middle of its resend
                log.cut_after(backlog // 2, hold_s=HOLD_S)
            log.restore()
            if n < BURST_CUTS:
                await wait_until(page, log, f"in burst {n + 1}")
        await expect(status).to_have_attribute("data-state", "live", timeout=20_000)
        await page.wait_for_function(
            "s => window.classrec.recording.sentSeconds >= s", arg=CLIP_S + 1, timeout=60_000
        )
        await page.click("#stop")
        await expect(body).to_have_attribute("data-phase", "ended", timeout=120_000)
        sent_s = await page.evaluate("() => window.classrec.recording.sentSeconds")
        notices = await page.locator("#notices .notice").all_inner_texts()

    tap.finish(30)
    assert not page_errors, page_errors
    assert not notices, notices
    assert log.drops == 1 + BURST_CUTS
    lost = [c.lost_frames for c in log.connected]
    assert sum(1 for n in lost if n) >= 1 + BURST_CUTS, f"every cut swallowed frames: {lost}"
    assert all("of audio waiting" in t for t in waiting_shown), waiting_shown

    captured = log.captured_audio()
    assert abs(len(captured) / 32000 - sent_s) < 0.01, (len(captured), sent_s)
    stored = tap.audio
    assert len(stored) == len(captured), f"stored {len(stored)} bytes, the page captured {len(captured)}"
    assert stored == captured, "the stored audio differs from what the page captured"
    received = redis.Redis.from_url(stack.redis_url).hget(keys.session(sid), "received")
    assert received is not None and int(received) == len(captured)
    resent = sum(c.audio_bytes for c in log.connected) - len(captured)
    print(
        f"\nacks: {len(log.connected)} connections, {log.drops} cuts, frames lost in the cuts {lost}, "
        f"{resent / 32000:.2f} s sent twice, stored {len(stored) / 32000:.2f} s = captured; "
        f"banner: {waiting_shown}"
    )

    # The finals: the page's last connection replays them all; an uninterrupted run of the same bytes.
    through_page = view(log.connected[-1].received)
    assert len([f for f in through_page if f[1].strip()]) >= 3, through_page
    start = {k: v for k, v in log.connected[0].sent_text[0].items() if k not in ("session", "offset")}
    direct = view(await stream(stack.ws, captured, start=start, speed=1.0))
    assert through_page == direct, (
        "\n".join(f"page {p}\ndirect {d}" for p, d in zip(through_page, direct, strict=False) if p != d)
        or f"{len(through_page)} finals through the page, {len(direct)} direct"
    )
