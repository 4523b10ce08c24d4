"""Keep the cyclic garbage collector off the objects a long-running process starts with.

A web worker starts with ~125,000 tracked objects (Flask, SQLAlchemy's mappers, pydantic and
spectree's models, the catalog), a grading worker with ~270,000 (torch, sympy). Python's
full (generation 2) collection walks all of them: measured in a gunicorn worker under
300 submissions/s, 61-172 ms with the GIL held, every few seconds, stalling every request of
that process (docs/PERFORMANCE.md, session 5). Those objects live as long as the process, so
after start-up they are moved to the permanent generation (`gc.freeze`): later collections
walk only what came after. Children forked afterwards (a prefork pool) also leave those
objects' pages alone when they collect (their reference counts still write to them on
Python 3.11). The cost: a cycle among start-up objects that later becomes garbage is never
freed, a one-off amount per process, not a growing one.
"""

from __future__ import annotations

import gc


def freeze_startup_objects() -> int:
    """Collect once, then exempt every object alive now from later collections.

    Returns how many objects are frozen (all frozen so far in this process)."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
