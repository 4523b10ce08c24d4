"""Make a forked child's allocations land on few pages of the zygote's heap.

A child shares the zygote's heap copy-on-write: every page it writes costs a minor
fault and a 4 KiB copy. glibc's malloc serves a small request from a free chunk of
the right size first, and after torch's import such chunks are scattered over the
whole 200 MB heap, so a child that allocates a few thousand small objects dirties
(and copies) a page for almost every one of them (measured: 2,000 `object()` calls,
1,300 faults). `drain()` takes every chunk that is free in malloc's bins once, in the
zygote, and keeps it for good: it was free memory already, so this costs no memory,
and later allocations (the zygote's and its children's) are carved from the top of
the heap, side by side, a few per page. Only the zygote calls it, once, after its
warm-up; it is a no-op where the C library has no `mallinfo2` (not glibc >= 2.33).
"""

from __future__ import annotations

import ctypes

_SIZES = tuple(1 << k for k in range(20, 3, -1))  # 1 MiB down to 16 bytes
_held: list[int] = []  # chunks taken from the bins; never freed (see above)


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def drain() -> int:
    """Take every free chunk out of the main arena's bins; returns how many were taken."""
    try:
        libc = ctypes.CDLL(None)
        mallinfo2 = libc.mallinfo2
    except (OSError, AttributeError):
        return 0
    mallinfo2.restype = _Mallinfo2
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.sbrk.restype = ctypes.c_void_p
    libc.sbrk.argtypes = [ctypes.c_long]
    info = mallinfo2()
    budget = info.fordblks - info.keepcost  # bytes free in the bins: never take more
    taken = 0
    for size in _SIZES:
        # The top chunk ends at the program break; a chunk at or above its start came
        # from the top, so no free chunk of this size (or larger) is left in the bins.
        top_start = (libc.sbrk(0) or 0) - mallinfo2().keepcost
        while budget >= size:
            chunk = libc.malloc(size)
            if chunk is None:
                break
            if chunk >= top_start:
                libc.free(chunk)
                break
            _held.append(chunk)
            taken += 1
            budget -= size
    return taken
