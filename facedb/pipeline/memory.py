"""Hand large freed buffers back to the operating system at once (glibc malloc).

glibc raises its mmap threshold each time a large block is freed, after which buffers of a
decoded photo (Pillow allocates them in 16 MB blocks) come from per-thread heaps that keep
the memory: measured, six concurrent searches with 7000x7000 photos left a server at
3.7 GB for good. A fixed threshold makes every buffer over 1 MB its own mapping, returned
when freed, and a cap on arenas bounds the per-thread heaps.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD_BYTES = 1 << 20
ARENA_MAX = 4


def return_large_buffers() -> bool:
    """Configure glibc malloc as above; return False where that is not glibc (a no-op)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(M_ARENA_MAX, ARENA_MAX)
    )
    if not ok:
        log.info("malloc tuning not applied: this C library refused mallopt")
    return ok
