"""``meshlens diff`` and ``meshlens drift``.

Layer: L8.
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from meshlens.cli.common import MeshConfigOpt, Namespace, err, fail, report


class DiffOutput(str, Enum):
    tree = "tree"
    json = "json"
    markdown = "markdown"
    sarif = "sarif"


class FailOn(str, Enum):
    none = "none"
    new_error = "new-error"
    new_warning = "new-warning"
    any_change = "any-change"


class DriftOutput(str, Enum):
    tree = "tree"
    json = "json"
    istioctl = "istioctl"


def diff_cmd(
    filename: Annotated[list[str], typer.Option("-f", "--filename", help="Files on both sides (with --base: read at REF for the old side); repeatable.")] = [],  # noqa: B006
    old: Annotated[list[str], typer.Option("--old", help="Files only on the old side; repeatable.")] = [],  # noqa: B006
    new: Annotated[list[str], typer.Option("--new", help="Files only on the new side; repeatable.")] = [],  # noqa: B006
    base: Annotated[str | None, typer.Option("--base", help="Git revision: the old side is the -f and --new paths as they were at REF; the working tree is the new side.")] = None,
    proxy: Annotated[list[str], typer.Option("--proxy", help="Only these proxies (POD.NS or deploy/NAME.NS); repeatable.")] = [],  # noqa: B006
    requests: Annotated[str | None, typer.Option("--requests", help="A YAML file 'requests: [{proxy, url, headers, method}]' traced on both sides.")] = None,
    no_risk: Annotated[bool, typer.Option("--no-risk", help="Skip the analyzer findings delta (faster).")] = False,
    fail_on: Annotated[FailOn, typer.Option("--fail-on", help="Exit 1 when the change has a new error, a new warning (or error), or any change.")] = FailOn.none,
    output: Annotated[DiffOutput, typer.Option("-o", "--output")] = DiffOutput.tree,
    mesh_config: MeshConfigOpt = None,
) -> None:
    """What a change does to every proxy: changed fields with their origin, request impact, findings."""
    from meshlens.errors import UsageError
    from meshlens.review.diff import load_git, load_side, read_requests, run_diff
    from meshlens.review.render import render_markdown, render_sarif, render_tree

    if base is None and not (old or new):
        fail("give the two sides: --old/--new (with shared -f), or --base GIT_REF with -f")
    if base is not None and old:
        fail("--old and --base both name the old side: use one")
    try:
        if base is not None:
            before = load_git(filename + new, base, mesh_config=mesh_config)
            old_label, new_label = base, "working tree"
        else:
            before = load_side(filename + old, mesh_config=mesh_config)
            old_label = " ".join(filename + old)
            new_label = " ".join(filename + new)
        after = load_side(filename + new, mesh_config=mesh_config)
        specs = read_requests(requests) if requests else None
    except UsageError as exc:
        fail(str(exc))
    for loaded in (before, after):
        report([], loaded.errors, strict=False)
    r = run_diff(before, after, proxies=proxy, risk=not no_risk, requests=specs,
                 old_label=old_label, new_label=new_label)
    if output == DiffOutput.json:
        sys.stdout.write(json.dumps(r.to_dict(), indent=2, ensure_ascii=False, default=str) + "\n")
    elif output == DiffOutput.markdown:
        sys.stdout.write(render_markdown(r))
    elif output == DiffOutput.sarif:
        import meshlens

        sys.stdout.write(render_sarif(r, version=meshlens.__version__))
    else:
        sys.stdout.write(render_tree(r))
    levels = {f.level_name for f in (r.risk.new if r.risk else [])}
    failed = (fail_on == FailOn.any_change and bool(r.changed or (r.risk and (r.risk.new or r.risk.gone))))\
        or (fail_on == FailOn.new_error and "Error" in levels) \
        or (fail_on == FailOn.new_warning and bool(levels & {"Error", "Warning"}))
    if failed:
        raise typer.Exit(1)


def _read(path: str, what: str) -> str:
    try:
        return sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"{path}: cannot read {what}: {exc}")


def drift_cmd(
    proxy: Annotated[str | None, typer.Argument(help="POD[.NAMESPACE] or deploy/NAME[.NAMESPACE] (with -f)")] = None,
    config_dump: Annotated[str, typer.Option("--config-dump", help="The live sidecar's /config_dump (JSON; - for stdin).")] = "",
    clusters_dump: Annotated[str | None, typer.Option("--clusters-dump", help="The live sidecar's /clusters?format=json, for endpoint health when the dump has no EDS.")] = None,
    against: Annotated[str | None, typer.Option("--against", help="Compare with a second dump (istiod's view) instead of the manifests.")] = None,
    filename: Annotated[list[str], typer.Option("-f", "--filename", help="Manifests: file, folder or -; repeatable.")] = [],  # noqa: B006
    namespace: Namespace = None,
    mesh_config: MeshConfigOpt = None,
    output: Annotated[DriftOutput, typer.Option("-o", "--output", help="tree, json, or istioctl (proxy-status's Match / Don't Match with a unified diff)")] = DriftOutput.tree,
) -> None:
    """Where a live sidecar's config differs from the manifests (or another dump); exit 1 if it does."""
    from meshlens.dump import parse_clusters, parse_config_dump
    from meshlens.errors import DumpError
    from meshlens.review.drift import (compare, endpoint_hosts, endpoints_from_clusters,
                                       proxy_status_text, rds_last_loaded)
    from meshlens.review.render import render_drift
    from meshlens.review.xds import TYPES, of_dump, of_result

    if not config_dump:
        fail("give the live sidecar's dump with --config-dump FILE")
    try:
        live_dump = parse_config_dump(_read(config_dump, "the config dump"))
    except DumpError as exc:
        fail(f"{config_dump}: {exc}")
    live = of_dump(live_dump)
    result = None
    if against is not None:
        try:
            expected = of_dump(parse_config_dump(_read(against, "the config dump")))
        except DumpError as exc:
            fail(f"{against}: {exc}")
    else:
        if proxy is None or not filename:
            fail("give PROXY and -f manifests (or --against DUMP)")
        from meshlens.cli.common import compile_files

        result = compile_files(filename, proxy, namespace, mesh_config)
        expected = of_result(result)
    if output == DriftOutput.istioctl:
        sys.stdout.write(proxy_status_text(expected, live, rds_loaded=rds_last_loaded(live_dump)))
        same = proxy_status_text(expected, live).count("Don't Match") == 0
        raise typer.Exit(0 if same else 1)
    types = TYPES
    if live_dump.endpoints is None:
        if clusters_dump is not None:
            try:
                status = parse_clusters(_read(clusters_dump, "the clusters dump"))
            except DumpError as exc:
                fail(f"{clusters_dump}: {exc}")
            live.update(endpoints_from_clusters(status.clusters))
            expected = {**{k: v for k, v in expected.items() if k[0] != "endpoint"},
                        **endpoint_hosts(expected)}
        else:
            types = tuple(t for t in TYPES if t != "endpoint")
    r = compare(expected, live, result=result, types=types)
    if output == DriftOutput.json:
        sys.stdout.write(json.dumps(r.to_dict(), indent=2, ensure_ascii=False, default=str) + "\n")
    else:
        sys.stdout.write(render_drift(r))
    raise typer.Exit(0 if r.clean else 1)


def report_cmd(
    filename: Annotated[list[str], typer.Option("-f", "--filename", help="Manifests: file, folder or -; repeatable (both sides with --base/--old/--new).")] = [],  # noqa: B006
    output: Annotated[str, typer.Option("-o", "--output", help="The HTML file to write (- for stdout).")] = "meshlens-report.html",
    base: Annotated[str | None, typer.Option("--base", help="Git revision: highlight what changed since REF.")] = None,
    old: Annotated[list[str], typer.Option("--old", help="Files only on the old side (a change view); repeatable.")] = [],  # noqa: B006
    new: Annotated[list[str], typer.Option("--new", help="Files only on the new side; repeatable.")] = [],  # noqa: B006
    title: Annotated[str, typer.Option("--title", help="The page's title.")] = "",
    mesh_config: MeshConfigOpt = None,
) -> None:
    """Write the mesh as one self-contained HTML graph with findings and panels (an offline Kiali)."""
    from meshlens.errors import UsageError
    from meshlens.review.diff import load_git, load_side
    from meshlens.review.report import build_report
    from meshlens.review.report_html import render_html

    if not filename and not new:
        fail("no input: give manifests with -f FILE (a file, a folder, or - for stdin)")
    try:
        after = load_side(filename + new, mesh_config=mesh_config)
        before = None
        if base is not None:
            before = load_git(filename + new, base, mesh_config=mesh_config)
        elif old:
            before = load_side(filename + old, mesh_config=mesh_config)
    except UsageError as exc:
        fail(str(exc))
    report(after.diagnostics, after.errors, strict=False, quiet=True)
    names = [Path(p).name for p in filename + new]
    default_title = "meshlens report: " + (", ".join(names) if len(names) <= 3 else f"{names[0]} and {len(names) - 1} more")
    data = build_report(after, base=before, title=title or default_title)
    page = render_html(data)
    if output == "-":
        sys.stdout.write(page)
        return
    try:
        Path(output).write_text(page, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {output}: {exc}")
    s = data["summary"]
    err.print(f"wrote {output} ({len(page.encode()) / 1e6:.1f} MB): {s['services']} services, "
              f"{s['workloads']} workloads, {s['edges']} routes, findings {s['findings']}", markup=False)
