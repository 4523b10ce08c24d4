"""Keep the cyclic garbage collector off the objects a long-running process starts with.

A web worker starts with ~160,000 tracked objects (Flask, SQLAlchemy's mappers, pydantic and
spectree's models, the catalog), a grading worker with many more (torch, sympy). Python's
full (generation 2) collection walks all of them: measured in a gunicorn worker under
300 submissions/s, 61-172 ms with the GIL held, every few seconds, stalling every request of
that process (docs/PERFORMANCE.md, session 5). Those objects live as long as the process, so
after start-up they are moved to the permanent generation (`gc.freeze`, the recipe of
CPython's gc docs for forking servers): later collections walk only what came after. It also
keeps forked children from touching, and so copying, their parent's pages.
"""

from __future__ import annotations

import gc


def freeze_startup_objects() -> int:
    """Collect once, then exempt every object alive now from later collections.

    Returns how many objects are frozen (all frozen so far in this process)."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
