"""``meshlens proxy-config``: istioctl's proxy-config views for compiled config or a real dump.

Layer: L8. Imports: anything.

Each command reads its input from exactly one place: ``-f PATH... PROXY`` compiles the
manifests for PROXY; ``--config-dump FILE`` reads a sidecar's ``/config_dump`` (``-`` for
stdin); ``endpoint`` also takes ``--clusters-dump FILE`` (``/clusters?format=json``). The text
comes from ``meshlens.render.proxy_config`` and is written to stdout as is. A bad input file is
``error: FILE: message`` on stderr and exit code 2.
"""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from meshlens.cli.common import ProxyTypeOpt
if TYPE_CHECKING:
    from meshlens.dump import ConfigDump
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
Fqdn = Annotated[str, typer.Option("--fqdn", help="Filter clusters by name (substring).")]
Subset = Annotated[str, typer.Option("--subset", help="Filter clusters by subset (substring).")]
Direction = Annotated[str, typer.Option("--direction",
                                        help="Filter clusters by direction (substring).")]
ClusterName = Annotated[str, typer.Option("--cluster", help="Filter by cluster name.")]
Status = Annotated[str, typer.Option("--status", help="Filter by health status.")]
ListenerType = Annotated[str, typer.Option("--type", help="Filter listeners by type: HTTP, TCP, "
                                                          "HTTP+TCP.")]
RouteName = Annotated[str, typer.Option("--name", help="Only this route configuration.")]
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
    from meshlens.dump import read_dump  # lazy: only proxy-config reads dumps

    try:
        return read_dump(path)
    except DumpError as exc:
        _fail(f"{'<stdin>' if path == '-' else path}: {exc}")


def _parse_dump(path: str) -> _Source:
    label = "<stdin>" if path == "-" else path
    from meshlens.dump import parse_config_dump  # lazy: only proxy-config reads dumps

    try:
        dump = parse_config_dump(_read(path))
    except DumpError as exc:
        _fail(f"{label}: {exc}")
    if dump.skipped_types:
        _note(f"{label}: skipped {len(dump.skipped_types)} unknown type(s) this meshlens has no "
              f"protobuf for: {', '.join(dump.skipped_types)}")
    return _Source(dump, label)


def _compile(files: list[str], proxy: str, namespace: str | None,
             mesh_config: str | None, proxy_type: Any = None) -> _Source:
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
        result = compile_for(loaded, proxy, namespace=namespace,
                             proxy_type=proxy_type.value if proxy_type is not None else None)
    except UsageError as exc:
        _fail(str(exc))
    for d in result.diagnostics:
        sys.stderr.write(d.format() + "\n")
    message = config_dump(result)
    raw = json.dumps(to_dict(message), indent=2)
    from meshlens.dump import from_message  # lazy: only proxy-config reads dumps
    return _Source(from_message(message, raw=raw), f"compiled config of {proxy}")


def _source(command: str, proxy: str | None, files: list[str] | None, namespace: str | None,
            mesh_config: str | None, dump_path: str | None, *,
            required: bool = True, proxy_type: Any = None) -> _Source | None:
    files = files or []
    if dump_path is not None and (files or proxy):
        _fail(f"proxy-config {command}: give either PROXY with -f PATH, or --config-dump FILE, "
              "not both")
    if dump_path is not None:
        return _parse_dump(dump_path)
    if files and proxy:
        return _compile(files, proxy, namespace, mesh_config, proxy_type)
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


@dataclass(frozen=True, slots=True)
class _Input:
    """Where a view reads from: the options every proxy-config command shares."""

    command: str
    proxy: str | None
    filename: list[str] | None
    namespace: str | None
    mesh_config: str | None
    config_dump: str | None
    file: str | None  # istioctl's --file: the config dump (the /clusters dump for `endpoint`)
    proxy_type: Any = None  # --proxy-type sidecar|router (inferred from the pod by default)

    def source(self, *, dump_path: str | None = None, required: bool = True) -> _Source | None:
        return _source(self.command, self.proxy, self.filename, self.namespace, self.mesh_config,
                       dump_path, required=required, proxy_type=self.proxy_type)

    def dump(self) -> _Source:
        src = self.source(dump_path=self.config_dump or self.file)
        assert src is not None
        return src


def _shared_params() -> list[inspect.Parameter]:
    def p(name: str, annotation: Any) -> inspect.Parameter:
        return inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None,
                                 annotation=annotation)
    return [p("proxy", Proxy), p("filename", Files), p("namespace", Namespace),
            p("mesh_config", MeshConfigOpt), p("config_dump", ConfigDumpOpt),
            p("file", FileAlias), p("proxy_type", ProxyTypeOpt)]


_SHARED = tuple(q.name for q in _shared_params())


def _view(name: str, *aliases: str, hidden: bool = False) -> Callable[[Any], Any]:
    """Register ``fn(inp: _Input, **its own options)`` as a command under its istioctl name and
    (hidden) aliases. The shared input options come first; ``-o`` is checked before anything
    is read."""
    def register(fn: Any) -> Any:
        own = list(inspect.signature(fn, eval_str=True).parameters.values())[1:]

        def command(**kwargs: Any) -> None:
            if "output" in kwargs:
                _check_output(kwargs["output"])
            inp = _Input(name, **{k: kwargs.pop(k) for k in _SHARED})
            fn(inp, **kwargs)

        params = [*_shared_params(), *own]
        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {q.name: q.annotation for q in params}
        command.__doc__, command.__name__ = fn.__doc__, fn.__name__
        for i, command_name in enumerate((name, *aliases)):
            proxy_config_app.command(command_name, hidden=hidden or i > 0)(command)
        return fn
    return register


@_view("cluster", "clusters", "c")
def cluster_cmd(
    inp: _Input, fqdn: Fqdn = "",
    port: Annotated[int, typer.Option("--port", min=0, help="Filter by port (|PORT| in the "
                                                            "name).")] = 0,
    subset: Subset = "", direction: Direction = "", explain_ports: ExplainPorts = False,
    output: Output = "short",
) -> None:
    """Clusters: SERVICE FQDN, PORT, SUBSET, DIRECTION, TYPE, DESTINATION RULE."""
    from meshlens.render.proxy_config.cluster import ClusterFilter, render_clusters
    from meshlens.render.proxy_config.ports import build_port_layers

    f = ClusterFilter(fqdn=fqdn, port=port, subset=subset, direction=direction)
    _run(inp.dump(), lambda d: render_clusters(
        d, filter=f, output=output, ports=build_port_layers(d) if explain_ports else None))


@_view("endpoint", "endpoints", "ep")
def endpoint_cmd(
    inp: _Input,
    clusters_dump: Annotated[str | None, typer.Option(
        "--clusters-dump", help="Envoy's /clusters?format=json output (health and outlier "
                                "status); - for stdin.", show_default=False)] = None,
    address: Address = "", port: Port = 0, cluster: ClusterName = "", status: Status = "",
    explain_ports: ExplainPorts = False,
    output: Output = "short",
) -> None:
    """Endpoints as Envoy's /clusters lists them: ENDPOINT, STATUS, OUTLIER CHECK, CLUSTER.

    Without --clusters-dump the hosts come from the config (compiled, or --config-dump), with their EDS health and no outlier failures.
    """  # noqa: E501 - one line, so the help text wraps cleanly
    from meshlens.render.proxy_config.endpoint import EndpointFilter, render_endpoints
    from meshlens.render.proxy_config.ports import build_port_layers

    clusters_path = clusters_dump or inp.file  # istioctl's --file is /clusters for `endpoint`
    src = inp.source(dump_path=inp.config_dump, required=clusters_path is None)
    if clusters_path is not None:
        label = "<stdin>" if clusters_path == "-" else clusters_path
        from meshlens.dump import parse_clusters  # lazy: only proxy-config reads dumps

        try:
            statuses = parse_clusters(_read(clusters_path)).clusters
        except DumpError as exc:
            _fail(f"{label}: {exc}")
    else:
        assert src is not None
        from meshlens.dump import clusters_status_of  # lazy: only proxy-config reads dumps
        statuses = clusters_status_of(src.dump)
    ports = None
    if explain_ports:
        from meshlens.dump import ConfigDump  # lazy: only proxy-config reads dumps
        ports = build_port_layers(src.dump) if src is not None else build_port_layers(ConfigDump())
    f = EndpointFilter(address=address, port=port, cluster=cluster, status=status)
    text = render_endpoints(statuses, filter=f, output=output, ports=ports)
    sys.stdout.write(text)


@_view("eds", hidden=True)
def eds_cmd(
    inp: _Input, address: Address = "", port: Port = 0, cluster: ClusterName = "",
    status: Status = "", output: Output = "short",
) -> None:
    """ClusterLoadAssignments from the dump's EDS section: NAME, STATUS, LOCALITY, CLUSTER."""
    from meshlens.render.proxy_config.endpoint import EndpointFilter, render_eds

    f = EndpointFilter(address=address, port=port, cluster=cluster, status=status)
    _run(inp.dump(), lambda d: render_eds(d, filter=f, output=output))


@_view("listener", "listeners", "l")
def listener_cmd(
    inp: _Input, address: Address = "", port: Port = 0, type_: ListenerType = "",
    verbose: Verbose = True, output: Output = "short",
) -> None:
    """Listeners: ADDRESSES, PORT, MATCH, DESTINATION (one row per filter chain)."""
    from meshlens.render.proxy_config.listener import ListenerFilter, render_listeners

    f = ListenerFilter(address=address, port=port, type=type_, verbose=verbose)
    _run(inp.dump(), lambda d: render_listeners(d, filter=f, output=output))


@_view("route", "routes", "r")
def route_cmd(
    inp: _Input, name: RouteName = "", verbose: Verbose = True, output: Output = "short",
) -> None:
    """Routes: NAME, VHOST NAME, DOMAINS, MATCH, VIRTUAL SERVICE."""
    from meshlens.render.proxy_config.route import RouteFilter, render_routes

    f = RouteFilter(name=name, verbose=verbose)
    _run(inp.dump(), lambda d: render_routes(d, filter=f, output=output))


BootstrapOutput = Annotated[str, typer.Option("-o", "--output",
                                              help="json (default), yaml or short.")]

#: Views with no options but -o: (names, module of meshlens.render.proxy_config, its renderer
#: ``render(dump, output=...)``, help, the -o option, its default).
_PLAIN_VIEWS: list[tuple[tuple[str, ...], str, str, str, Any, str]] = [
    (("secret", "secrets", "s"), "secret", "render_secrets",
     "Secrets: certificate type, status, validity now, serial number and dates.", Output, "short"),
    (("bootstrap", "b"), "bootstrap", "render_bootstrap",
     "The bootstrap (json), or the Istio and Envoy versions (-o short).", BootstrapOutput, "json"),
    (("ecds", "ec"), "ecds", "render_ecds", "Extension configs (ECDS): ECDS NAME, TYPE.", Output,
     "short"),
]


def _plain_view(names: tuple[str, ...], module: str, renderer: str, doc: str, output_opt: Any,
                default: str) -> None:
    def view(inp: _Input, output: str = default) -> None:
        import importlib

        render = getattr(importlib.import_module(f"meshlens.render.proxy_config.{module}"),
                         renderer)
        _run(inp.dump(), lambda d: render(d, output=output))

    view.__annotations__ = {"inp": _Input, "output": output_opt, "return": None}
    view.__doc__, view.__name__ = doc, f"{names[0]}_cmd"
    _view(*names)(view)


for _names, _module, _renderer, _doc, _opt, _default in _PLAIN_VIEWS:
    _plain_view(_names, _module, _renderer, _doc, _opt, _default)


@_view("all", "a")
def all_cmd(
    inp: _Input,
    with_headers: Annotated[bool, typer.Option(
        "--with-headers", help="A ------ X INFO ------ line before each section.")] = False,
    verbose: Verbose = True, fqdn: Fqdn = "", direction: Direction = "", subset: Subset = "",
    port: Annotated[int, typer.Option("--port", min=0, help="Filter clusters, listeners and "
                                                            "endpoints by port.")] = 0,
    address: Annotated[str, typer.Option("--address", help="Filter listeners and endpoints by "
                                                           "address.")] = "",
    type_: ListenerType = "",
    name: Annotated[str, typer.Option("--name", help="Filter routes by name.")] = "",
    output: Output = "short",
) -> None:
    """Every view in one: bootstrap, clusters, listeners, routes, secrets, endpoints."""
    from meshlens.render.proxy_config.all import missing_sections, render_all
    from meshlens.render.proxy_config.cluster import ClusterFilter
    from meshlens.render.proxy_config.endpoint import EndpointFilter
    from meshlens.render.proxy_config.listener import ListenerFilter
    from meshlens.render.proxy_config.route import RouteFilter

    src = inp.dump()
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
