"""The launcher starts transcribers at a lower CPU priority than the other services (TRANSCRIBER_NICE)."""

from __future__ import annotations

import os
import sys

from services.__main__ import Supervisor


def test_niced_children_get_lower_priority() -> None:
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    sup = Supervisor({"transcriber-1": sleeper, "vad": sleeper}, dict(os.environ), nice={"transcriber-1": 5})
    try:
        own = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, sup.procs["transcriber-1"].pid) == min(19, own + 5)
        assert os.getpriority(os.PRIO_PROCESS, sup.procs["vad"].pid) == own
    finally:
        sup.stop()
    assert all(p.poll() is not None for p in sup.procs.values())
