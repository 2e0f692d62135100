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
"""

from __future__ import annotations

import ctypes
import logging
import os

log = logging.getLogger(__name__)
MMAP_THRESHOLD = 128 * 1024  # glibc's initial value, kept fixed
M_MMAP_THRESHOLD = -3  # <malloc.h>
ENV = "MALLOC_MMAP_THRESHOLD_"


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


def server_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a child server process (the embedded Redis): the threshold fixed."""
    out = dict(os.environ if env is None else env)
    out.setdefault(ENV, str(MMAP_THRESHOLD))
    return out
