"""Every ``--help`` names values as a user reads them: no typer type tags (``<str>``, ``<bool>``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from meshlens.cli import app

# typer's tags: <str>, <bool>, <int>, <float>, <list[str]>, <int range>, <path>, <a|b>, ...
TYPE_TAG = re.compile(r"<(?:[a-z]+(?:\[[^\]>]*\])?(?: range)?|[\w-]+(?:\|[\w-]+)+)>")


def _commands(cmd: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    if hasattr(cmd, "commands"):  # a group (click's, as typer vendors it)
        for name, sub in sorted(cmd.commands.items()):
            yield from _commands(sub, (*path, name))


COMMANDS = list(_commands(typer.main.get_command(app)))


def _help(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"},
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_the_tag_pattern_finds_typers_tags() -> None:
    for tag in ("<str>", "<bool>", "<list[str]>", "<int range>", "<json|yaml>", "<float>"):
        assert TYPE_TAG.search(f"--x  {tag}  help"), tag
    assert not TYPE_TAG.search("POD[.NAMESPACE] or deploy/NAME[.NAMESPACE]  FILENAME  json|yaml")


def test_every_command_is_covered() -> None:
    tops = {p[0] for p in COMMANDS if p}
    assert {"compile", "demo", "proxy-config", "trace", "explain", "analyze", "lab"} <= tops
    assert ("proxy-config", "cluster") in COMMANDS and ("lab", "send") in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "meshlens")
def test_help_has_no_type_tags(path: tuple[str, ...]) -> None:
    text = _help(path)
    assert not TYPE_TAG.findall(text), text
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    assert not re.search(r"\{[a-z_]+\}", usage), usage  # typer's `{proxy}` for a required one


def test_help_labels_values_by_name() -> None:
    text = _help(("compile",))
    assert "compile [OPTIONS] PROXY" in text
    assert re.search(r"--filename\s+-f\s+FILENAME\b", text), text
    assert re.search(r"--output\s+-o\s+json\|yaml\b", text), text
    strict = next(line for line in text.splitlines() if "--strict" in line)
    assert re.search(r"--strict\s+Exit 2", strict), strict  # a flag has no value label


def test_the_installed_command_prints_the_same() -> None:
    r = subprocess.run([sys.executable, "-m", "meshlens", "compile", "--help"], capture_output=True,
                       text=True, timeout=60, env={**os.environ, "COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    assert "PROXY" in r.stdout and not TYPE_TAG.findall(r.stdout)


def _run(application: Any, args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(application, args, env={"COLUMNS": "200"})
    return result.exit_code, result.output


@pytest.mark.parametrize("path", [p for p in COMMANDS if p], ids=" ".join)
def test_the_pruned_app_a_run_builds_answers_as_the_whole_app(path: tuple[str, ...]) -> None:
    # `app_for` builds only the command argv[1] names: its help, usage errors and unknown
    # options must read exactly as the whole app's.
    from meshlens.cli import app_for

    pruned = app_for(["meshlens", *path])
    assert pruned is not app and len(pruned.registered_commands) + len(pruned.registered_groups) == 1
    for args in ([*path, "--help"], [*path, "--no-such-option"]):  # neither runs the command
        assert _run(pruned, args) == _run(app, args), args


def test_without_a_command_name_the_whole_app_runs() -> None:
    from meshlens.cli import app_for

    for argv in (["meshlens"], ["meshlens", "--help"], ["meshlens", "--revision", "x", "compile"],
                 ["meshlens", "no-such-command"]):
        assert app_for(argv) is app


@pytest.mark.parametrize("args", [["compile"], ["trace"], ["explain", "cluster"], ["pc", "cluster"]])
def test_the_pruned_app_reports_a_missing_argument_as_the_whole_app(args: list[str]) -> None:
    from meshlens.cli import app_for

    code, text = _run(app_for(["meshlens", *args]), args)
    assert code == 2 and (code, text) == _run(app, args)
