"""The console entry point: the answers that must come at once, without loading the CLI.

Layer: L9. Imports: render.flags (nothing else: no typer, rich or protobuf).

``meshlens``, ``meshlens --help`` and ``meshlens explain flag FLAG`` are asked many times a day
and must answer in well under 0.2 s; loading typer, rich and the xDS protobufs alone takes
longer. The top-level help is the CLI's own rendering, stored at build time in
``cli/help.txt`` (a test renders it with typer and compares; ``--update-goldens`` rewrites it).
Everything else goes to :func:`meshlens.cli.main`.
"""

from __future__ import annotations

import sys

HELP = ("cli", "help.txt")


def main() -> None:
    """The console script: the fast answers, else the CLI."""
    if not fast():
        from meshlens.cli import run  # installs the signal handling first thing

        run()  # exits; heavy commands skip the interpreter's teardown


def fast() -> bool:
    """Answer ``--help`` or ``explain flag FLAG`` if that is what was asked; say whether it was."""
    argv = sys.argv[1:]
    if argv in ([], ["--help"], ["-h"]):
        import os

        with open(os.path.join(os.path.dirname(__file__), *HELP), encoding="utf-8") as fh:
            sys.stdout.write(fh.read())
        return True
    if len(argv) == 3 and argv[:2] == ["explain", "flag"] and not argv[2].startswith("-"):
        from meshlens.render.flags import FLAGS, lookup, render_text

        flags, unknown = lookup(argv[2])
        if unknown:
            sys.stderr.write(f"error: unknown response flag {', '.join(unknown)}; known: "
                             f"{', '.join(sorted(FLAGS))}\n")
            sys.exit(2)
        sys.stdout.write(render_text(flags))
        return True
    return False
