"""A hang guard for hostile-input tests: fail (never hang) past a time, and check peak memory."""

from __future__ import annotations

import signal
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

MIB = 1024 * 1024


@contextmanager
def bounded(seconds: float = 10.0, mib: float | None = 256.0) -> Iterator[None]:
    """Fail (not hang) past ``seconds``; then check wall time and the Python heap's peak.

    ``mib=None`` leaves memory unmeasured (tracemalloc slows allocation-heavy code several times).
    """

    def expired(signum: int, frame: Any) -> None:
        raise TimeoutError(f"hang guard: still running after {seconds}s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    # Already tracing (a module fixture, for many short runs): only reset the peak, since
    # starting and stopping tracemalloc costs half a second each time.
    owner = mib is not None and not tracemalloc.is_tracing()
    if owner:
        tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0] if mib is not None else 0
    tracemalloc.reset_peak()
    start = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        peak = tracemalloc.get_traced_memory()[1] - base if mib is not None else 0
        if owner:
            tracemalloc.stop()
    elapsed = time.monotonic() - start
    assert elapsed < seconds, f"took {elapsed:.1f}s"
    assert mib is None or peak < mib * MIB, f"peak {peak / MIB:.0f} MiB"
