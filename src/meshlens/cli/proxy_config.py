"""``meshlens proxy-config``: istioctl's proxy-config views for compiled config or a real dump.

Layer: L8. Imports: anything.

Each command reads its input from exactly one place: ``-f PATH... PROXY`` compiles the
manifests for PROXY; ``--config-dump FILE`` reads a sidecar's ``/config_dump`` (``-`` for
stdin); ``endpoint`` also takes ``--clusters-dump FILE`` (``/clusters?format=json``). The text
comes from ``meshlens.render.proxy_config`` and is written to stdout as is. A bad input file is
``error: FILE: message`` on stderr and exit code 2.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, NoReturn

import typer

from meshlens.dump import (
    ConfigDump,
    clusters_status_of,
    from_message,
    parse_clusters,
    parse_config_dump,
    read_dump,
)
from meshlens.errors import DumpError, UsageError

proxy_config_app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="istioctl's proxy-config views, byte for byte: for the config meshlens compiles "
         "(-f PATH... PROXY) or for a real sidecar's dump (--config-dump FILE).")

Proxy = Annotated[str | None, typer.Argument(
    help="POD[.NAMESPACE] or deploy/NAME[.NAMESPACE] to compile for (with -f).",
    show_default=False)]
Files = Annotated[list[str] | None, typer.Option(
    "-f", "--filename", help="Manifests: a file, a folder or - (stdin); repeatable.",
    show_default=False)]
Namespace = Annotated[str | None, typer.Option("-n", "--namespace", help="Namespace of PROXY.")]
MeshConfigOpt = Annotated[str | None, typer.Option(
    "--mesh-config", help="MeshConfig file, or the istio ConfigMap.")]
ConfigDumpOpt = Annotated[str | None, typer.Option(
    "--config-dump", help="A sidecar's /config_dump JSON (or meshlens compile -o json); - for "
                          "stdin.", show_default=False)]
FileAlias = Annotated[str | None, typer.Option("--file", hidden=True, show_default=False)]
Output = Annotated[str, typer.Option("-o", "--output", help="short, json or yaml.")]
Port = Annotated[int, typer.Option("--port", min=0, help="Filter by port.")]
Address = Annotated[str, typer.Option("--address", help="Filter by address.")]
Verbose = Annotated[bool, typer.Option(
    "--verbose/--no-verbose", help="Full rows (istioctl's --verbose, on by default).")]
ExplainPorts = Annotated[bool, typer.Option(
    "--explain-ports", help="Add the four port layers: capture, listener, Service port, "
                            "targetPort.")]


@dataclass(frozen=True, slots=True)
class _Source:
    dump: ConfigDump
    label: str  # the file name, or "compiled config of PROXY", for messages


def _fail(message: str) -> NoReturn:
    sys.stderr.write(f"error: {message}\n")
    raise typer.Exit(2)


def _note(message: str) -> None:
    sys.stderr.write(f"note: {message}\n")


def _read(path: str) -> str:
    try:
        return read_dump(path)
    except DumpError as exc:
        _fail(f"{'<stdin>' if path == '-' else path}: {exc}")


def _parse_dump(path: str) -> _Source:
    label = "<stdin>" if path == "-" else path
    try:
        dump = parse_config_dump(_read(path))
    except DumpError as exc:
        _fail(f"{label}: {exc}")
    if dump.skipped_types:
        _note(f"{label}: skipped {len(dump.skipped_types)} unknown type(s) this meshlens has no "
              f"protobuf for: {', '.join(dump.skipped_types)}")
    return _Source(dump, label)


def _compile(files: list[str], proxy: str, namespace: str | None,
             mesh_config: str | None) -> _Source:
    from meshlens.emit import config_dump, to_dict
    from meshlens.pipeline import compile_for, load

    loaded = load(files, mesh_config=mesh_config)
    for e in loaded.errors:
        sys.stderr.write(f"{e}\n")
    for d in loaded.diagnostics:
        sys.stderr.write(d.format() + "\n")
    if loaded.errors:
        raise typer.Exit(2)
    try:
        result = compile_for(loaded, proxy, namespace=namespace)
    except UsageError as exc:
        _fail(str(exc))
    for d in result.diagnostics:
        sys.stderr.write(d.format() + "\n")
    message = config_dump(result)
    raw = json.dumps(to_dict(message), indent=2)
    return _Source(from_message(message, raw=raw), f"compiled config of {proxy}")


def _source(command: str, proxy: str | None, files: list[str] | None, namespace: str | None,
            mesh_config: str | None, dump_path: str | None, *,
            required: bool = True) -> _Source | None:
    files = files or []
    if dump_path is not None and (files or proxy):
        _fail(f"proxy-config {command}: give either PROXY with -f PATH, or --config-dump FILE, "
              "not both")
    if dump_path is not None:
        return _parse_dump(dump_path)
    if files and proxy:
        return _compile(files, proxy, namespace, mesh_config)
    if files:
        _fail(f"proxy-config {command}: PROXY is required with -f (for example "
              "deploy/productpage.default)")
    if proxy:
        _fail(f"proxy-config {command}: give the manifests to compile {proxy} from with -f PATH, "
              "or a real dump with --config-dump FILE")
    if required:
        _fail(f"proxy-config {command} requires PROXY with -f PATH, or --config-dump FILE")
    return None


def _run(source: _Source, render: Callable[[ConfigDump], str]) -> None:
    try:
        text = render(source.dump)
    except DumpError as exc:
        _fail(f"{source.label}: {exc}")
    except UsageError as exc:
        _fail(str(exc))
    sys.stdout.write(text)


def _check_output(output: str) -> None:
    from meshlens.render.proxy_config.common import check_format

    try:
        check_format(output)
    except UsageError as exc:
        _fail(str(exc))


def _command(name: str, *aliases: str, hidden: bool = False) -> Callable[[Any], Any]:
    """Register a command under its istioctl name and (hidden) aliases."""
    def register(fn: Any) -> Any:
        proxy_config_app.command(name, hidden=hidden)(fn)
        for alias in aliases:
            proxy_config_app.command(alias, hidden=True)(fn)
        return fn
    return register


@_command("cluster", "clusters", "c")
def cluster_cmd(
    proxy: Proxy = None, filename: Files = None, namespace: Namespace = None,
    mesh_config: MeshConfigOpt = None, config_dump: ConfigDumpOpt = None, file: FileAlias = None,
    fqdn: Annotated[str, typer.Option("--fqdn", help="Filter by name (substring).")] = "",
    port: Annotated[int, typer.Option("--port", min=0, help="Filter by port (|PORT| in the "
                                                            "name).")] = 0,
    subset: Annotated[str, typer.Option("--subset", help="Filter by subset (substring).")] = "",
    direction: Annotated[str, typer.Option("--direction", help="Filter by direction "
                                                               "(substring).")] = "",
    explain_ports: ExplainPorts = False,
    output: Output = "short",
) -> None:
    """Clusters: SERVICE FQDN, PORT, SUBSET, DIRECTION, TYPE, DESTINATION RULE."""
    from meshlens.render.proxy_config.cluster import ClusterFilter, render_clusters
    from meshlens.render.proxy_config.ports import build_port_layers

    _check_output(output)
    src = _source("cluster", proxy, filename, namespace, mesh_config, config_dump or file)
    assert src is not None
    f = ClusterFilter(fqdn=fqdn, port=port, subset=subset, direction=direction)
    _run(src, lambda d: render_clusters(
        d, filter=f, output=output, ports=build_port_layers(d) if explain_ports else None))


@_command("endpoint", "endpoints", "ep")
def endpoint_cmd(
    proxy: Proxy = None, filename: Files = None, namespace: Namespace = None,
    mesh_config: MeshConfigOpt = None, config_dump: ConfigDumpOpt = None,
    clusters_dump: Annotated[str | None, typer.Option(
        "--clusters-dump", help="Envoy's /clusters?format=json output (health and outlier "
                                "status); - for stdin.", show_default=False)] = None,
    file: FileAlias = None,
    address: Address = "", port: Port = 0,
    cluster: Annotated[str, typer.Option("--cluster", help="Filter by cluster name.")] = "",
    status: Annotated[str, typer.Option("--status", help="Filter by health status.")] = "",
    explain_ports: ExplainPorts = False,
    output: Output = "short",
) -> None:
    """Endpoints as Envoy's /clusters lists them: ENDPOINT, STATUS, OUTLIER CHECK, CLUSTER.

    Without --clusters-dump the hosts come from the config (compiled, or --config-dump), with their EDS health and no outlier failures.
    """  # noqa: E501 - one line, so the help text wraps cleanly
    from meshlens.render.proxy_config.endpoint import EndpointFilter, render_endpoints
    from meshlens.render.proxy_config.ports import build_port_layers

    _check_output(output)
    clusters_path = clusters_dump or file  # istioctl's --file is /clusters for `endpoint`
    src = _source("endpoint", proxy, filename, namespace, mesh_config, config_dump,
                  required=clusters_path is None)
    if clusters_path is not None:
        label = "<stdin>" if clusters_path == "-" else clusters_path
        try:
            statuses = parse_clusters(_read(clusters_path)).clusters
        except DumpError as exc:
            _fail(f"{label}: {exc}")
    else:
        assert src is not None
        statuses = clusters_status_of(src.dump)
    ports = None
    if explain_ports:
        ports = build_port_layers(src.dump) if src is not None else build_port_layers(ConfigDump())
    f = EndpointFilter(address=address, port=port, cluster=cluster, status=status)
    text = render_endpoints(statuses, filter=f, output=output, ports=ports)
    sys.stdout.write(text)


@_command("eds", hidden=True)
def eds_cmd(
    proxy: Proxy = None, filename: Files = None, namespace: Namespace = None,
    mesh_config: MeshConfigOpt = None, config_dump: ConfigDumpOpt = None, file: FileAlias = None,
    address: Address = "", port: Port = 0,
    cluster: Annotated[str, typer.Option("--cluster", help="Filter by cluster name.")] = "",
    status: Annotated[str, typer.Option("--status", help="Filter by health status.")] = "",
    output: Output = "short",
) -> None:
    """ClusterLoadAssignments from the dump's EDS section: NAME, STATUS, LOCALITY, CLUSTER."""
    from meshlens.render.proxy_config.endpoint import EndpointFilter, render_eds

    _check_output(output)
    src = _source("eds", proxy, filename, namespace, mesh_config, config_dump or file)
    assert src is not None
    f = EndpointFilter(address=address, port=port, cluster=cluster, status=status)
    _run(src, lambda d: render_eds(d, filter=f, output=output))


@_command("listener", "listeners", "l")
def listener_cmd(
    proxy: Proxy = None, filename: Files = None, namespace: Namespace = None,
    mesh_config: MeshConfigOpt = None, config_dump: ConfigDumpOpt = None, file: FileAlias = None,
    address: Address = "", port: Port = 0,
    type_: Annotated[str, typer.Option("--type", help="Filter by type: HTTP, TCP, HTTP+TCP.")] = "",
    verbose: Verbose = True,
    output: Output = "short",
) -> None:
    """Listeners: ADDRESSES, PORT, MATCH, DESTINATION (one row per filter chain)."""
    from meshlens.render.proxy_config.listener import ListenerFilter, render_listeners

    _check_output(output)
    src = _source("listener", proxy, filename, namespace, mesh_config, config_dump or file)
    assert src is not None
    f = ListenerFilter(address=address, port=port, type=type_, verbose=verbose)
    _run(src, lambda d: render_listeners(d, filter=f, output=output))


@_command("route", "routes", "r")
def route_cmd(
    proxy: Proxy = None, filename: Files = None, namespace: Namespace = None,
    mesh_config: MeshConfigOpt = None, config_dump: ConfigDumpOpt = None, file: FileAlias = None,
    name: Annotated[str, typer.Option("--name", help="Only this route configuration.")] = "",
    verbose: Verbose = True,
    output: Output = "short",
) -> None:
    """Routes: NAME, VHOST NAME, DOMAINS, MATCH, VIRTUAL SERVICE."""
    from meshlens.render.proxy_config.route import RouteFilter, render_routes

    _check_output(output)
    src = _source("route", proxy, filename, namespace, mesh_config, config_dump or file)
    assert src is not None
    f = RouteFilter(name=name, verbose=verbose)
    _run(src, lambda d: render_routes(d, filter=f, output=output))


@_command("secret", "secrets", "s")
def secret_cmd(
    proxy: Proxy = None, filename: Files = None, namespace: Namespace = None,
    mesh_config: MeshConfigOpt = None, config_dump: ConfigDumpOpt = None, file: FileAlias = None,
    output: Output = "short",
) -> None:
    """Secrets: certificate type, status, validity now, serial number and dates."""
    from meshlens.render.proxy_config.secret import render_secrets

    _check_output(output)
    src = _source("secret", proxy, filename, namespace, mesh_config, config_dump or file)
    assert src is not None
    _run(src, lambda d: render_secrets(d, output=output))


@_command("bootstrap", "b")
def bootstrap_cmd(
    proxy: Proxy = None, filename: Files = None, namespace: Namespace = None,
    mesh_config: MeshConfigOpt = None, config_dump: ConfigDumpOpt = None, file: FileAlias = None,
    output: Annotated[str, typer.Option("-o", "--output",
                                        help="json (default), yaml or short.")] = "json",
) -> None:
    """The bootstrap (json), or the Istio and Envoy versions (-o short)."""
    from meshlens.render.proxy_config.bootstrap import render_bootstrap

    _check_output(output)
    src = _source("bootstrap", proxy, filename, namespace, mesh_config, config_dump or file)
    assert src is not None
    _run(src, lambda d: render_bootstrap(d, output=output))


@_command("ecds", "ec")
def ecds_cmd(
    proxy: Proxy = None, filename: Files = None, namespace: Namespace = None,
    mesh_config: MeshConfigOpt = None, config_dump: ConfigDumpOpt = None, file: FileAlias = None,
    output: Output = "short",
) -> None:
    """Extension configs (ECDS): ECDS NAME, TYPE."""
    from meshlens.render.proxy_config.ecds import render_ecds

    _check_output(output)
    src = _source("ecds", proxy, filename, namespace, mesh_config, config_dump or file)
    assert src is not None
    _run(src, lambda d: render_ecds(d, output=output))


@_command("all", "a")
def all_cmd(
    proxy: Proxy = None, filename: Files = None, namespace: Namespace = None,
    mesh_config: MeshConfigOpt = None, config_dump: ConfigDumpOpt = None, file: FileAlias = None,
    with_headers: Annotated[bool, typer.Option(
        "--with-headers", help="A ------ X INFO ------ line before each section.")] = False,
    verbose: Verbose = True,
    fqdn: Annotated[str, typer.Option("--fqdn", help="Filter clusters by name.")] = "",
    direction: Annotated[str, typer.Option("--direction",
                                           help="Filter clusters by direction.")] = "",
    subset: Annotated[str, typer.Option("--subset", help="Filter clusters by subset.")] = "",
    port: Annotated[int, typer.Option("--port", min=0, help="Filter clusters, listeners and "
                                                            "endpoints by port.")] = 0,
    address: Annotated[str, typer.Option("--address", help="Filter listeners and endpoints by "
                                                           "address.")] = "",
    type_: Annotated[str, typer.Option("--type", help="Filter listeners by type.")] = "",
    name: Annotated[str, typer.Option("--name", help="Filter routes by name.")] = "",
    output: Output = "short",
) -> None:
    """Every view in one: bootstrap, clusters, listeners, routes, secrets, endpoints."""
    from meshlens.render.proxy_config.all import missing_sections, render_all
    from meshlens.render.proxy_config.cluster import ClusterFilter
    from meshlens.render.proxy_config.endpoint import EndpointFilter
    from meshlens.render.proxy_config.listener import ListenerFilter
    from meshlens.render.proxy_config.route import RouteFilter

    _check_output(output)
    src = _source("all", proxy, filename, namespace, mesh_config, config_dump or file)
    assert src is not None
    if output == "short":
        missing = missing_sections(src.dump)
        if missing:
            _note(f"{src.label}: no {', '.join(missing)} in this dump; "
                  f"{'that section is' if len(missing) == 1 else 'those sections are'} left out")
    _run(src, lambda d: render_all(
        d, output=output, with_headers=with_headers,
        clusters=ClusterFilter(fqdn=fqdn, port=port, subset=subset, direction=direction),
        listeners=ListenerFilter(address=address, port=port, type=type_, verbose=verbose),
        routes=RouteFilter(name=name, verbose=verbose),
        endpoints=EndpointFilter(address=address, port=port)))

