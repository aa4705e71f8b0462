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


def _epoch(text: str | None) -> float:
    """``--now``: epoch seconds or an ISO 8601 time (UTC unless it says otherwise)."""
    import time
    from datetime import UTC, datetime

    if text is None:
        return time.time()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"--now {text!r} is neither epoch seconds nor an ISO 8601 time") from exc
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


class TraceOutput(str, Enum):
    tree = "tree"
    json = "json"
    mermaid = "mermaid"


def trace_cmd(
    proxy: Annotated[str, typer.Argument(help="POD[.NAMESPACE] or deploy/NAME[.NAMESPACE]")],
    url: Annotated[str, typer.Argument(help="http://host[:port]/path, https://..., tcp://host:port or tls://host:port")],
    filename: Files = [],  # noqa: B006
    header: Annotated[list[str], typer.Option("-H", "--header", help="'name: value'; repeatable")] = [],  # noqa: B006
    method: Annotated[str, typer.Option("-X", "--request", help="HTTP method")] = "GET",
    namespace: Namespace = None,
    mesh_config: MeshConfigOpt = None,
    output: Annotated[TraceOutput, typer.Option("-o", "--output")] = TraceOutput.tree,
    inbound: Annotated[bool, typer.Option(
        "--inbound", help="the connection arrives at PROXY's own inbound side (iptables → "
        "virtualInbound 15006), addressed to URL's host:port")] = False,
    peer: Annotated[str, typer.Option("--peer", help="with --inbound: what the peer speaks: "
                                      "mtls, tls or plaintext")] = "plaintext",
    sni: Annotated[str | None, typer.Option("--sni", help="TLS server name (default: the URL's host for "
                                            "https:// and tls://)")] = None,
    alpn: Annotated[str | None, typer.Option("--alpn", help="ALPN list, comma-separated; replaces the "
                                             "default")] = None,
    http2: Annotated[bool, typer.Option("--http2", help="speak HTTP/2 (h2c, or istio-h2 with --peer mtls)")] = False,
    upstream_status: Annotated[int | None, typer.Option("--upstream-status", help="what-if: the upstream "
                                                        "answers this status")] = None,
    upstream_delay: Annotated[str | None, typer.Option("--upstream-delay", help="what-if: the upstream "
                                                       "answers after this long (250ms, 2s)")] = None,
    upstream_reset: Annotated[bool, typer.Option("--upstream-reset", help="what-if: the upstream resets "
                                                 "the connection")] = False,
    exit_zero: Annotated[bool, typer.Option("--exit-zero", help="exit 0 whatever the verdict")] = False,
    proxy_type: ProxyTypeOpt = None,
    now: Annotated[str | None, typer.Option("--now", help="the time of the request for JWT exp/nbf "
                                            "checks: epoch seconds or ISO 8601 (default: now)")] = None,
) -> None:
    """Trace a request: capture → listener → route → cluster → endpoints → server sidecar.

    Also DNS as the pod resolves it, the fault filter, and the upstream's answer with retries
    and timeouts. Exit code 0 when the verdict is ok, 1 otherwise (2: usage error).

    For a gateway (router) the request arrives at its Service port instead of being captured.
    """
    from meshlens.compiler import Wanted
    from meshlens.pipeline import server_compiler
    from meshlens.render.trace import render_mermaid, render_tree
    from meshlens.simulate import Request, parse_seconds, simulate

    try:
        if upstream_status is not None and not 100 <= upstream_status <= 599:
            raise ValueError(f"--upstream-status {upstream_status} is not an HTTP status")
        if peer != "plaintext" and not inbound:
            raise ValueError("--peer applies to --inbound calls (outbound, the scheme decides: https:// or tls://)")
        req = Request.parse(url, headers=header, method=method, inbound=inbound, peer=peer, sni=sni,
                            alpn=[a.strip() for a in alpn.split(",") if a.strip()] if alpn is not None else None,
                            http2=http2, upstream_status=upstream_status,
                            upstream_delay=parse_seconds(upstream_delay) if upstream_delay else 0.0,
                            upstream_reset=upstream_reset, now=_epoch(now))
    except ValueError as exc:
        fail(str(exc))
    loaded = load_files(filename, mesh_config)
    # Targeted: only the listener, route, clusters and endpoints the request visits are compiled.
    result = compile_loaded(loaded, proxy, namespace, proxy_type, only=Wanted())
    server = server_compiler(loaded, targeted=True)
    if result.proxy.is_router:  # a gateway: the request arrives at its Service port
        from meshlens.simulate_gateway import simulate_gateway

        t = simulate_gateway(result, req, server=server)
    else:
        t = simulate(result, req, server=server)
    if output == TraceOutput.json:
        sys.stdout.write(json.dumps(t.to_dict(), indent=2) + "\n")
    elif output == TraceOutput.mermaid:
        sys.stdout.write(render_mermaid(t))
    else:
        sys.stdout.write(render_tree(t))
    if t.verdict != "ok" and not exit_zero:
        raise typer.Exit(1)
