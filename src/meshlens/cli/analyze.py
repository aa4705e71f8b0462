"""`meshlens analyze`: argument plumbing, the analysis run, output and istioctl's exit codes.

Layer: L8. Imports: analyze, errors.

Exit codes (as ``istioctl analyze``, for CI): 0 no finding at or above ``--failure-threshold``;
79 at least one; 65 an input file could not be parsed (and no finding reached the threshold);
64 a usage error (bad option value, unknown ``--proxy``, no input). Unlike istioctl, every
``-o`` format sets the exit code.
"""

from __future__ import annotations

import sys
from enum import Enum
from importlib import metadata
from typing import Annotated

import typer
from rich.console import Console

from meshlens.errors import MeshlensError
from meshlens.model import resolve_proxy
from meshlens.model.proxy import ProxyNotFound

_err = Console(stderr=True, highlight=False, soft_wrap=True)


class AnalyzeOutput(str, Enum):
    log = "log"
    json = "json"
    sarif = "sarif"


def _usage(message: str) -> typer.Exit:
    _err.print(f"error: {message}", markup=False)
    from meshlens.analyze.report import EXIT_USAGE

    return typer.Exit(EXIT_USAGE)


def _version() -> str:
    try:
        return metadata.version("meshlens")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "0.0.0"


def _no_issues(files: list[str], unreadable: int, skipped: int) -> str:
    """istioctl's closing line; without the check mark when input was not (all) analyzed."""
    if unreadable:
        what = files[0] if len(files) == 1 else ", ".join(files)
        noun = "file" if unreadable == 1 else "files"
        return (f"No validation issues found when analyzing {what} (but {unreadable} {noun} "
                "could not be read or parsed).")
    if skipped:
        what = files[0] if len(files) == 1 else ", ".join(files)
        noun = "resource" if skipped == 1 else "resources"
        return (f"No validation issues found in what meshlens reads of {what} ({skipped} "
                f"{noun} of other kinds skipped, see above).")
    if len(files) == 1:
        return f"\u2714 No validation issues found when analyzing {files[0]}."
    return "\u2714 No validation issues found when analyzing:\n" + "".join(
        f"  - {f}\n" for f in files).rstrip("\n")


def _unreadable(errors: list[MeshlensError]) -> int:
    """How many distinct files the load errors are about (a file may have several)."""
    return len({getattr(getattr(e, "span", None), "path", None) or str(e) for e in errors})


def analyze_cmd(
    filename: Annotated[list[str], typer.Option(
        "-f", "--filename", help="File, folder or - (stdin); repeatable.")] = [],  # noqa: B006
    proxy: Annotated[list[str], typer.Option(
        "--proxy", help="POD[.NS] or deploy/NAME[.NS] whose compiled config is checked; "
                        "repeatable. Default: every injected workload.")] = [],  # noqa: B006
    output: Annotated[AnalyzeOutput, typer.Option("-o", "--output")] = AnalyzeOutput.log,
    failure_threshold: Annotated[str, typer.Option(
        "--failure-threshold", help="Exit 79 when a finding is at or above this level: Error, "
                                    "Warning or Info.")] = "Error",
    output_threshold: Annotated[str, typer.Option(
        "--output-threshold", help="Print findings at or above this level.")] = "Info",
    suppress: Annotated[list[str], typer.Option(
        "--suppress", "-S", help="CODE=RESOURCE: drop findings with this ML or IST code on "
                                 "this resource, 'Kind name.namespace' or 'Kind namespace/name', "
                                 "'*' globs, e.g. 'IST0102=Namespace *' or "
                                 "'ML1205=DestinationRule *.shop'; repeatable.")] = [],  # noqa: B006
    mesh_config: Annotated[str | None, typer.Option(
        "--mesh-config", help="MeshConfig file, or the istio ConfigMap.")] = None,
    analyzer: Annotated[list[str], typer.Option(
        "--analyzer", help="Run only this analyzer (name from -L); repeatable.")] = [],  # noqa: B006
    list_analyzers: Annotated[bool, typer.Option(
        "--list-analyzers", "-L", help="List the analyzers and exit.")] = False,
) -> None:
    """Find the mistakes that cause 503s (NC, UH, UF, UC, UO), from files, before they ship."""
    # imported here, not at the top: the other commands start without the analyzers
    from meshlens.analyze import ANALYZERS, by_name, load_for_analysis, run
    from meshlens.analyze.report import (
        EXIT_ISSUES,
        EXIT_OK,
        EXIT_PARSE,
        EXIT_USAGE,
        Suppression,
        at_or_above,
        finalize,
        parse_level,
        render_json,
        render_log,
        render_sarif,
        skipped_kinds,
        skipped_line,
    )
    if list_analyzers:
        for a in sorted(ANALYZERS, key=lambda m: m.METADATA.name):
            sys.stdout.write(f"* {a.METADATA.name}:\n    {a.METADATA.description}\n")
        return
    try:
        fail_level = parse_level(failure_threshold)
        out_level = parse_level(output_threshold)
        suppressions = [Suppression.parse(s) for s in suppress]
    except ValueError as exc:
        raise _usage(str(exc)) from exc
    for s in suppressions:
        if not s.known():
            _err.print(f"Warning: Supplied message code '{s.code}' is an unknown message code "
                       "and will not have any effect.", markup=False)
    if not filename:
        raise _usage("no input: give manifests with -f FILE (a file, a folder, or - for stdin)")
    selected = by_name(analyzer) if analyzer else ANALYZERS
    if analyzer and not selected:
        raise _usage(f"unknown analyzer {', '.join(analyzer)} (see meshlens analyze -L)")
    try:
        loaded = load_for_analysis(filename, mesh_config=mesh_config)
    except MeshlensError as exc:
        raise _usage(str(exc)) from exc
    for e in loaded.errors:
        _err.print(str(e), markup=False)
    skipped = skipped_kinds(loaded.diagnostics)
    for kind, count in skipped:
        _err.print(skipped_line(kind, count), markup=False)
    for ref in proxy:
        try:
            resolve_proxy(loaded.mesh.registry.workloads, ref)
        except ProxyNotFound as exc:
            raise _usage(str(exc)) from exc
    findings = finalize(run(loaded, proxies=tuple(proxy) or None, analyzers=selected),
                        loaded.mesh.resources, suppressions)
    shown = at_or_above(findings, out_level)
    if output == AnalyzeOutput.json:
        sys.stdout.write(render_json(shown))
    elif output == AnalyzeOutput.sarif:
        sys.stdout.write(render_sarif(shown, version=_version()))
    elif shown:
        sys.stdout.write(render_log(shown))
    else:
        _err.print(_no_issues(filename, _unreadable(loaded.errors),
                              sum(n for _, n in skipped)), markup=False)
    if at_or_above(findings, fail_level):
        raise typer.Exit(EXIT_ISSUES)
    if loaded.errors:
        raise typer.Exit(EXIT_PARSE)
    raise typer.Exit(EXIT_OK)
