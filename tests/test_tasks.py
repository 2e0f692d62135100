"""`shared.tasks.cancel_and_wait`: a task whose first cancellation is lost still ends."""

from __future__ import annotations

import asyncio
import sys

from shared.tasks import cancel_and_wait


async def loop_around_wait_for(
    cancel_me: list[asyncio.Task], turns: list[int], turned: asyncio.Event
) -> None:
    """A loop around a quick `wait_for`, as a relay's XREAD is in redis-py; the first turn cancels
    this task at the moment the inner operation completes, the instant 3.11 loses the cancel in."""

    async def quick() -> None:
        if not turns:
            asyncio.get_running_loop().call_soon(cancel_me[0].cancel)  # before wait_for's wake-up

    while True:
        await asyncio.wait_for(quick(), 5)
        turns.append(1)
        turned.set()
        await asyncio.sleep(0.01)


async def test_a_lost_cancellation_is_repeated_until_the_task_ends() -> None:
    holder: list[asyncio.Task] = []
    turns: list[int] = []
    turned = asyncio.Event()
    task = asyncio.create_task(loop_around_wait_for(holder, turns, turned))
    holder.append(task)
    waiter = asyncio.create_task(turned.wait())
    await asyncio.wait([task, waiter], timeout=5, return_when=asyncio.FIRST_COMPLETED)  # first turn
    waiter.cancel()
    if sys.version_info < (3, 12):
        assert not task.done() and task.cancelling() == 1  # that cancel was lost: the loop runs on
    assert await cancel_and_wait([task], limit_s=5) == set()
    assert task.cancelled()


async def test_a_task_that_refuses_to_end_is_reported_not_waited_for_forever() -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(1)
            except asyncio.CancelledError:
                pass  # the bug cancel_and_wait cannot cure: it gives up and says so

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    assert await cancel_and_wait([task], limit_s=0.2) == {task}
    release.set()
    task.cancel()
    await asyncio.wait([task], timeout=5)
    assert task.done()
