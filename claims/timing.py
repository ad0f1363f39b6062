"""How long each stage of a check took.

The pipeline opens a recorder for each check (:func:`recording`); code below it
times its stages with :func:`stage`, on the same thread, and nothing is
recorded when no recorder is open. Times are seconds, summed per stage name.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_current: ContextVar[dict[str, float] | None] = ContextVar("claimsieve_timings", default=None)


@contextmanager
def recording(timings: dict[str, float] | None = None) -> Iterator[dict[str, float]]:
    """Record the stages timed inside this block into ``timings`` (a new dict by default)."""
    found: dict[str, float] = {} if timings is None else timings
    token = _current.set(found)
    try:
        yield found
    finally:
        _current.reset(token)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Add the time this block takes to stage ``name`` of the open recorder, if any."""
    timings = _current.get()
    if timings is None:
        yield
        return
    began = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - began
