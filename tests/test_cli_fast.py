"""The fast entry point answers ``--help`` and ``explain flag`` exactly as the full CLI does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HELP = ROOT / "src" / "meshlens" / "cli" / "help.txt"
ENV = {**os.environ, "COLUMNS": "100", "TERM": "dumb", "NO_COLOR": "1"}


def _run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=ENV, timeout=60)


FULL = "import sys; sys.argv[0] = 'meshlens'; from meshlens.cli import main; main()"
FAST = "import sys; sys.argv[0] = 'meshlens'; from meshlens.launcher import main; main()"


def test_stored_help_is_the_cli_s_own(update_goldens: bool) -> None:
    full = _run(FULL, "--help")
    assert full.returncode == 0, full.stderr
    if update_goldens:
        HELP.write_text(full.stdout)
    assert full.stdout == HELP.read_text(), "run pytest --update-goldens after changing commands"


@pytest.mark.parametrize("args", [["--help"], ["-h"], []])
def test_fast_help_without_the_cli(args: list[str]) -> None:
    out = _run(FAST + "; assert 'typer' not in sys.modules and 'google.protobuf' not in sys.modules", *args)
    assert out.returncode == 0, out.stderr
    assert out.stdout == HELP.read_text()


@pytest.mark.parametrize("flag", ["UH", "nc,uo", "all"])
def test_fast_explain_flag_matches_the_cli(flag: str) -> None:
    fast = _run(FAST + "; assert 'typer' not in sys.modules", "explain", "flag", flag)
    full = _run(FULL, "explain", "flag", flag)
    assert fast.returncode == full.returncode == 0, fast.stderr + full.stderr
    assert fast.stdout == full.stdout and fast.stdout.startswith(("UH", "NC", "DC", "UO", "U", "N", "L"))


def test_fast_unknown_flag_is_a_usage_error() -> None:
    fast = _run(FAST, "explain", "flag", "ZZ")
    assert fast.returncode == 2 and fast.stderr.startswith("error: unknown response flag ZZ")


def test_everything_else_goes_to_the_cli() -> None:
    out = _run(FAST, "explain", "flag", "UH", "-o", "json")
    assert out.returncode == 0 and out.stdout.lstrip().startswith("[")
