"""``meshlens explain``: where every field of a compiled resource came from; what a response
flag or an analyze code means.

Layer: L8.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from meshlens.cli.common import Files, MeshConfigOpt, Namespace, Output, ProxyTypeOpt, compile_files, fail

explain_app = typer.Typer(no_args_is_help=True,
                          help="Explain compiled config, response flags and analyze codes.")


def _explain(kind: str, name: str, proxy: str, filename: list[str], namespace: str | None,
             mesh_config: str | None, output: Output | None, proxy_type: ProxyTypeOpt = None) -> None:
    from meshlens.render.explain import explain, render_text

    result = compile_files(filename, proxy, namespace, mesh_config, proxy_type=proxy_type)
    e = explain(result, kind, name)
    if e is None:
        names = {"cluster": [c.name for c in result.clusters],
                 "listener": [x.name for x in result.listeners or []],
                 "route": [x.name for x in result.routes or []],
                 "extension_config": [e.config.name for e in result.extension_configs]}[kind]
        close = [n for n in names if name.lower() in n.lower()][:10] or names[:10]
        fail(f"no {kind} named {name!r} for {result.proxy.name}.{result.proxy.namespace}; "
             f"{kind}s: {', '.join(close)}")
    if output == Output.json:
        sys.stdout.write(json.dumps(e.to_dict(), indent=2) + "\n")
    elif output == Output.yaml:
        import yaml

        sys.stdout.write(yaml.safe_dump(e.to_dict(), sort_keys=False, width=1000))
    else:
        sys.stdout.write(render_text(e))


def _register(kind: str, command_name: str | None = None) -> None:
    def command(
        name: Annotated[str, typer.Argument(help="Its name, as proxy-config prints it")],
        proxy: Annotated[str, typer.Argument(help="POD[.NAMESPACE] or deploy/NAME[.NAMESPACE]")],
        filename: Files = [],  # noqa: B006
        namespace: Namespace = None,
        mesh_config: MeshConfigOpt = None,
        output: Annotated[Output | None, typer.Option("-o", "--output")] = None,
        proxy_type: ProxyTypeOpt = None,
    ) -> None:
        _explain(kind, name, proxy, filename, namespace, mesh_config, output, proxy_type)

    command.__doc__ = f"Every field of one Envoy {kind} with its value and origin."
    explain_app.command(command_name or kind)(command)


for _kind in ("cluster", "listener", "route"):
    _register(_kind)
_register("extension_config", "extension-config")  # ECDS resources from EnvoyFilter EXTENSION_CONFIG patches


@explain_app.command("flag")
def flag_cmd(
    flag: Annotated[str, typer.Argument(help="A response flag such as UH, or 'all'")],
    output: Annotated[Output | None, typer.Option("-o", "--output")] = None,
) -> None:
    """What an Envoy response flag means, the layer it points at, and what to check."""
    from dataclasses import asdict

    from meshlens.render.flags import FLAGS, lookup, render_text

    flags, unknown = lookup(flag)
    if unknown:
        fail(f"unknown response flag {', '.join(unknown)}; known: {', '.join(sorted(FLAGS))}")
    if output == Output.json:
        sys.stdout.write(json.dumps([asdict(f) for f in flags], indent=2) + "\n")
        return
    if output == Output.yaml:
        import yaml

        sys.stdout.write(yaml.safe_dump([asdict(f) for f in flags], sort_keys=False, width=1000))
        return
    sys.stdout.write(render_text(flags))


@explain_app.command("code")
def code_cmd(
    code: Annotated[str, typer.Argument(help="An analyze code (ML1241), an IST code meshlens "
                                             "implements (IST0101), or 'all'")],
    output: Annotated[Output | None, typer.Option("-o", "--output")] = None,
) -> None:
    """What an analyze code checks, why it matters, when it stays quiet, and an example."""
    from meshlens.analyze.code_docs import documented, lookup, render_text

    entries = sorted(documented().values(), key=lambda e: e.code) \
        if code.strip().lower() == "all" else lookup(code)
    if not entries:
        known = sorted(documented())
        fail(f"unknown code {code!r}: analyze codes are {known[0]} to {known[-1]} "
             "(meshlens explain code all), or an IST code meshlens implements")
    if output == Output.json:
        sys.stdout.write(json.dumps([e.to_dict() for e in entries], indent=2) + "\n")
    elif output == Output.yaml:
        import yaml

        sys.stdout.write(yaml.safe_dump([e.to_dict() for e in entries], sort_keys=False,
                                        width=1000))
    else:
        sys.stdout.write(render_text(entries))
