"""How this process's C allocator treats freed memory: kept for reuse, not returned to the system.

glibc's malloc serves large blocks (above an adaptive threshold, at most 32 MiB) straight from
the kernel with mmap and unmaps them when freed, and trims the heap top above 128 KiB; every
fresh activation tensor of a pass then costs page faults on first touch: about 530,000 in one
pass over a batch of 8 pairs at 256 px, and 36% of its CPU time (240 against 154 ms a pair with
this setting, one thread; ``bench/bench_throughput.py``).
Setting the thresholds with ``mallopt`` at run time has the effect of the MALLOC_MMAP_THRESHOLD_ /
MALLOC_TRIM_THRESHOLD_ / MALLOC_TOP_PAD_ environment variables without restarting the process.
"""
from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3  # glibc malloc.h
SETTINGS = ((M_MMAP_THRESHOLD, 1 << 30),  # blocks below 1 GiB come from the heap and are reused
            (M_TRIM_THRESHOLD, 1 << 30),  # up to 1 GiB of free heap is kept, not given back
            (M_TOP_PAD, 64 << 20))  # the heap grows 64 MiB at a time


def keep_freed_memory() -> bool:
    """Apply the settings; False where the C library is not glibc (nothing changes then)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return all(mallopt(option, value) == 1 for option, value in SETTINGS)
