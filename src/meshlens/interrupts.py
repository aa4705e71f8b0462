"""Ctrl-C and SIGTERM at any moment: one exception, raised where the program is.

Layer: L0. Imports: stdlib only.

Python's default turns SIGINT into ``KeyboardInterrupt`` (a traceback if it arrives while modules
are still being imported) and lets SIGTERM kill the process outright (no ``finally``, so a lab
would leave its folder, with private keys, behind). asyncio's own signal handlers only run when
the event loop gets control, so a signal during a long compile inside the loop was not seen until
the compile ended. While the command line's modules are imported, a signal prints one line and
exits at once (nothing to clean up yet); then :func:`install` replaces both with a handler that
raises :class:`Interrupted` in the main thread at once when no event loop runs (loading,
compiling), and every ``finally`` on the way out runs. Inside the event loop (:func:`run`) it
cancels the main task instead -- an exception thrown into the loop at an arbitrary point can land
in grpc's C poller and crash the process -- so the lab's ``async with`` ends its children and
removes its folder at the next ``await``; pure-Python work inside the loop (a recompile) runs
under :func:`raising`, where the signal raises at once as outside the loop. The command line
turns :class:`Interrupted` into one line and exit code 128 + signal number (130 for SIGINT, 143
for SIGTERM).

Cleanup that must not be cut short runs under :func:`deferred`: a signal arriving then is
remembered and raised when the block ends.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """A SIGINT or SIGTERM; ``code`` is the exit code a shell expects (128 + signal).

    Not a ``KeyboardInterrupt``: click turns those into "Aborted!" and exit 1, and asyncio stops
    its loop at once for them; a plain ``BaseException`` unwinds the task (cleanup included) and
    is not caught by ``except Exception``.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.code = 128 + signum

    @property
    def message(self) -> str:
        return "terminated (SIGTERM)" if self.signum == signal.SIGTERM else "interrupted (Ctrl-C)"


_state: dict[str, Any] = {"installed": False, "defer": 0, "pending": 0, "raising": 0,
                          "main": None}


def _early_handler(signum: int, frame: FrameType | None) -> None:
    # Nothing has started yet (no child, no folder): say so and leave at once.
    exc = Interrupted(signum)
    try:
        sys.stderr.write(exc.message + "\n")
        sys.stderr.flush()
    finally:
        os._exit(exc.code)


def _handler(signum: int, frame: FrameType | None) -> None:
    if _state["defer"]:
        _state["pending"] = _state["pending"] or signum
        return
    # asyncio is imported only by the commands that run a loop (the lab): without it in
    # sys.modules there is no loop, and the CLI's start does not pay for importing it.
    aio = sys.modules.get("asyncio")
    loop = None
    if aio is not None:
        try:
            loop = aio.get_running_loop()
        except RuntimeError:
            loop = None
    if loop is None or _state["raising"]:
        raise Interrupted(signum)
    # Inside the event loop, an exception raised at an arbitrary point may land in a C
    # extension's callback (grpc's poller: a segfault). Cancel the main task instead: it unwinds
    # at its next await, and :func:`run` turns the cancellation into Interrupted.
    _state["pending"] = _state["pending"] or signum
    loop.call_soon_threadsafe(_cancel_main)


def _cancel_main() -> None:
    task = _state["main"]
    if task is not None and not task.done():
        task.cancel()


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coro)``; a signal cancels it (cleanup runs) and raises :class:`Interrupted`."""
    import asyncio

    async def main() -> T:
        _state["main"] = asyncio.current_task()
        try:
            return await coro
        finally:
            _state["main"] = None

    try:
        return asyncio.run(main())
    except asyncio.CancelledError:
        pending, _state["pending"] = _state["pending"], 0
        if pending:
            raise Interrupted(pending) from None
        raise


@contextmanager
def raising() -> Iterator[None]:
    """Pure-Python work run inside the event loop (loading, compiling): a signal raises right
    there instead of waiting for the next ``await``."""
    _state["raising"] += 1
    try:
        yield
    finally:
        _state["raising"] -= 1


def install(*, early: bool = False) -> None:
    """Handle SIGINT and SIGTERM (main thread only; idempotent).

    Args:
        early: while modules are imported: print one line and exit at once (there is nothing
            to clean up yet). Otherwise raise :class:`Interrupted` where the program is.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in SIGNALS:
        signal.signal(sig, _early_handler if early else _handler)
    _state["installed"] = True


def installed() -> bool:
    return bool(_state["installed"])


def install_for_command_line() -> None:
    """``install(early=True)``, but only when meshlens itself is the program (not when imported
    by a test runner or another program, whose signals are its own)."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    argv0 = sys.argv[0].rsplit("/", 1)[-1] if sys.argv else ""
    if argv0 == "meshlens" or (spec is not None and spec.name == "meshlens.__main__"):
        install(early=True)


@contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM during the block; the first one that came is raised after it."""
    _state["defer"] += 1
    try:
        yield
    finally:
        _state["defer"] -= 1
        pending = _state["pending"]
        if not _state["defer"] and pending:
            _state["pending"] = 0
            raise Interrupted(pending)
