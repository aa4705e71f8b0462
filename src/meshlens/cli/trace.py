"""``meshlens trace``: follow one request through the compiled config of PROXY.

Layer: L8.
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from typing import Annotated

import typer

from meshlens.cli.common import (Files, MeshConfigOpt, Namespace, ProxyTypeOpt, compile_loaded, fail,
                                 load_files)


class TraceOutput(str, Enum):
    tree = "tree"
    json = "json"
    mermaid = "mermaid"


def trace_cmd(
    proxy: Annotated[str, typer.Argument(help="POD[.NAMESPACE] or deploy/NAME[.NAMESPACE]")],
    url: Annotated[str, typer.Argument(help="http://host[:port]/path, https://..., or tcp://host:port")],
    filename: Files = [],  # noqa: B006
    header: Annotated[list[str], typer.Option("-H", "--header", help="'name: value'; repeatable")] = [],  # noqa: B006
    method: Annotated[str, typer.Option("-X", "--request", help="HTTP method")] = "GET",
    namespace: Namespace = None,
    mesh_config: MeshConfigOpt = None,
    output: Annotated[TraceOutput, typer.Option("-o", "--output")] = TraceOutput.tree,
    proxy_type: ProxyTypeOpt = None,
) -> None:
    """Trace a request: capture → listener → route → cluster → endpoints → server sidecar.

    For a gateway (router) the request arrives at its Service port instead of being captured.
    """
    from meshlens.pipeline import server_compiler
    from meshlens.render.trace import render_mermaid, render_tree
    from meshlens.simulate import Request, simulate

    try:
        req = Request.parse(url, headers=header, method=method)
    except ValueError as exc:
        fail(str(exc))
    loaded = load_files(filename, mesh_config)
    result = compile_loaded(loaded, proxy, namespace, proxy_type)
    if result.proxy.is_router:  # a gateway: the request arrives at its Service port
        from meshlens.simulate_gateway import simulate_gateway

        t = simulate_gateway(result, req, server=server_compiler(loaded))
    else:
        t = simulate(result, req, server=server_compiler(loaded))
    if output == TraceOutput.json:
        sys.stdout.write(json.dumps(t.to_dict(), indent=2) + "\n")
    elif output == TraceOutput.mermaid:
        sys.stdout.write(render_mermaid(t))
    else:
        sys.stdout.write(render_tree(t))
