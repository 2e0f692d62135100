"""glibc's allocator set so that large freed blocks go back to the system: flat memory over a day.

glibc serves a request of at least the mmap threshold (128 KiB) with a mapping of its own, returned
to the system when freed, but it raises that threshold to the size of every such block freed (up to
32 MiB). After the first few utterances, then, every audio array, mel spectrogram and CTranslate2
buffer of a service, and every large stream entry of the embedded Redis (Valkey built with libc
malloc), is carved from the heap instead, and a heap keeps what it once held: a backlog's peak stays
resident for good. Measured here (`bench/soak.py` and the README's soak section): after three batches
of 8 twenty-second finals the transcriber stayed at 830 MB resident against 390 MB with the
threshold fixed; Valkey, filled with 200 MB of entries and trimmed, stayed at 219 MB against 15 MB.

`return_freed_memory()` fixes the threshold (`mallopt(M_MMAP_THRESHOLD)`, which also stops its
growth) in a service's own process; `server_env()` does the same for a server process through glibc's
environment variable. An operator's own `MALLOC_MMAP_THRESHOLD_` wins; off glibc both do nothing.

The transcriber is the exception: with the threshold fixed, each of a decode's large CTranslate2
buffers is a fresh mapping whose pages are faulted in and zeroed again on every decode, which made a
final 0.1 s slower alone and 0.24 s slower in context (base on 2 cores, 0.43 -> 0.54 s and 0.54 ->
0.78 s). It keeps glibc's growing threshold, so that a decode reuses the heap, and instead gives
the heap's free memory back with `malloc_trim` once more than a bound of it is free (`HeapTrim`):
between the finals of lectures about 100 MB is free and reused; a backlog's batches leave far more,
which is returned. Below that bound free memory can still settle a step higher after a busy minute
(+80 MB over a 90-minute soak with 256 MB), so whatever more than `FLOOR_MB` is free is also trimmed
at most once every `every_s` (5 minutes): one decode then faults its buffers in again, not every one.
"""

from __future__ import annotations

import ctypes
import logging
import os
import time
from collections.abc import Callable

log = logging.getLogger(__name__)
MMAP_THRESHOLD = 128 * 1024  # glibc's initial value, kept fixed
M_MMAP_THRESHOLD = -3  # <malloc.h>
ENV = "MALLOC_MMAP_THRESHOLD_"
FLOOR_MB = 64  # free heap kept between periodic trims: about one decode's buffers


def return_freed_memory() -> bool:
    """Fix this process's mmap threshold; True if it was set here."""
    if ENV in os.environ:  # glibc read it at start
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks")
        + ("fordblks", "keepcost")
    ]


class HeapTrim:
    """Gives free heap memory back to the system once more than `limit_mb` of it is free, and once
    every `every_s` (0: never) if more than FLOOR_MB is (glibc 2.33+; elsewhere it does nothing)."""

    def __init__(
        self, limit_mb: int, every_s: float = 0.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit, self.floor = limit_mb << 20, min(limit_mb, FLOOR_MB) << 20
        self.every_s, self.clock = every_s, clock
        self.last = clock()  # the last trim (or the start)
        try:
            libc = ctypes.CDLL(None)
            self._info, self._trim = libc.mallinfo2, libc.malloc_trim
        except (OSError, AttributeError):  # not glibc, or one too old for mallinfo2
            self._info = self._trim = None
            return
        self._info.argtypes, self._info.restype = [], _MallInfo2
        self._trim.argtypes, self._trim.restype = [ctypes.c_size_t], ctypes.c_int

    def free_bytes(self) -> int | None:
        """Bytes free in the heap (every arena), kept by the allocator for reuse."""
        return None if self._info is None else int(self._info().fordblks)

    def due(self, free: int) -> bool:
        if free > self.limit:
            return True
        return self.every_s > 0 and free > self.floor and self.clock() - self.last >= self.every_s

    def __call__(self) -> int:
        """Trim if it is due; the bytes that were free when it did (else 0)."""
        free = self.free_bytes()
        if self._trim is None or free is None or not self.due(free):
            return 0
        self._trim(0)
        self.last = self.clock()
        return free


def server_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a child server process (the embedded Redis): the threshold fixed."""
    out = dict(os.environ if env is None else env)
    out.setdefault(ENV, str(MMAP_THRESHOLD))
    return out
