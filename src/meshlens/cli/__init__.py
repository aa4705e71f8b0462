"""The command line: argument parsing, calls into the pipeline, rendering, exit codes.

Layer: L8. Imports: anything.

Thin on purpose (httpx's `_main.py`): no business logic lives here. Machine output
(``-o json|yaml``) is written straight to stdout, bypassing rich.
"""

from __future__ import annotations

from meshlens import interrupts

interrupts.install_for_command_line()  # first: Ctrl-C while the imports below run is handled

import sys  # noqa: E402
from importlib import resources as pkg_resources
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from meshlens.cli.analyze import analyze_cmd
from meshlens.cli.common import (
    AssumeInjection,
    Files,
    MeshConfigOpt,
    Namespace,
    Output,
    PilotEnv,
    ProxyTypeOpt,
    Revision,
    Strict,
    compile_files,
    err,
    load_settings,
)
from meshlens.cli.explain import explain_app
from meshlens.cli.extras import hint_for_exception, missing_for_command
from meshlens.cli.helpfmt import plain_help
from meshlens.cli.lab import lab_app
from meshlens.cli.proxy_config import proxy_config_app
from meshlens.cli.describe import describe_app
from meshlens.cli.status import status_cmd
from meshlens.cli.review import diff_cmd, drift_cmd, report_cmd
from meshlens.cli.snapshot import snapshot_cmd
from meshlens.cli.trace import trace_cmd
from meshlens.errors import MeshlensError
from meshlens.loader import Limits

plain_help()  # `-f FILENAME`, not typer's `<list[str]>`

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Compile Kubernetes + Istio manifests into the Envoy config istiod would "
                       "push to one sidecar, and explain it.")


def _emit(data: Any, output: Output) -> None:
    """Write machine output; a stream tree (emit.stream) is written as it is produced.

    A reader that stops early (``| head``) ends the writing quietly, exit code 0, as when the
    whole text was written in one go; stdout then points at /dev/null so no later flush fails.
    """
    from meshlens.emit.stream import write

    try:
        write(data, output.value, sys.stdout)
    except BrokenPipeError:
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


@app.command("compile")
def compile_cmd(
    proxy: Annotated[str, typer.Argument(help="POD[.NAMESPACE] or deploy/NAME[.NAMESPACE]")],
    filename: Files = [],  # noqa: B006 - typer reads the default
    namespace: Namespace = None,
    output: Annotated[Output, typer.Option("-o", "--output")] = Output.json,
    mesh_config: MeshConfigOpt = None,
    strict: Strict = False,
    proxy_type: ProxyTypeOpt = None,
    max_file_bytes: Annotated[int, typer.Option(
        "--max-file-bytes", min=1, help="Reject input files larger than this.")
    ] = Limits().max_file_bytes,
    max_documents: Annotated[int, typer.Option(
        "--max-documents", min=1, help="Reject input with more YAML documents than this.")
    ] = Limits().max_documents,
    max_depth: Annotated[int, typer.Option(
        "--max-depth", min=1, help="Reject documents that nest deeper than this.")
    ] = Limits().max_depth,
    max_scalar_bytes: Annotated[int, typer.Option(
        "--max-scalar-bytes", min=1, help="Reject documents with a longer string than this.")
    ] = Limits().max_scalar_bytes,
    max_alias_nodes: Annotated[int, typer.Option(
        "--max-alias-nodes", min=0,
        help="Reject documents whose YAML aliases expand to more extra nodes than this.")
    ] = Limits().max_alias_nodes,
    revision: Revision = "",
    assume_injection: AssumeInjection = "true",
    pilot_env: PilotEnv = [],  # noqa: B006 - typer reads the default
) -> None:
    """Print the proxy's config dump, as Envoy's /config_dump?include_eds would."""
    from meshlens.emit import config_dump_tree

    limits = Limits(max_file_bytes=max_file_bytes, max_documents=max_documents, max_depth=max_depth,
                    max_scalar_bytes=max_scalar_bytes, max_alias_nodes=max_alias_nodes)
    result = compile_files(filename, proxy, namespace, mesh_config, strict, limits=limits,
                           settings=load_settings(revision, assume_injection, pilot_env),
                           proxy_type=proxy_type)
    _emit(config_dump_tree(result), output)


def _demo_manifest() -> str:
    return (pkg_resources.files("meshlens") / "examples" / "llm-server.yaml").read_text()


@app.command("demo")
def demo_cmd(
    dump: Annotated[bool, typer.Option("--dump", help="Print the full config dump instead.")] = False,
    output: Annotated[Output | None, typer.Option("-o", "--output")] = None,
) -> None:
    """Compile the embedded llm-server example for its client and show the four port layers."""
    from meshlens.emit import config_dump_tree
    from meshlens.pipeline import compile_string
    from meshlens.render.summary import notes, summarize

    result = compile_string(_demo_manifest(), "deploy/client.mesh-demo",
                            name="meshlens/examples/llm-server.yaml")
    if dump:
        _emit(config_dump_tree(result), output or Output.json)
        return
    rows = summarize(result)
    if output is not None:
        from dataclasses import asdict

        _emit([asdict(r) for r in rows], output)
        return
    out = Console(highlight=False)
    out.print(f"[bold]Sidecar of {result.proxy.name}.{result.proxy.namespace}[/bold] "
              f"({result.proxy.ip}) - embedded example: llm-server canary (seed section 07)\n")
    out.print("Port layers: the app calls [cyan]llm-server:80[/cyan] -> captured on 15001 -> "
              "listener for port 80 -> cluster [cyan]outbound|80|SUBSET|host[/cyan] "
              "(Service port) -> endpoints [cyan]POD_IP:8080[/cyan] (targetPort)\n")
    for s in rows:
        if s.direction != "outbound":
            continue
        title = f"{s.name}"
        table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
        for col in ("layer", "value"):
            table.add_column(col)
        table.add_row("3 cluster (Service port)", f"{s.service_port}  subset={s.subset or '-'}  "
                      f"type={s.type}  lb={s.lb_policy}")
        lim = s.limits
        table.add_row("circuit breakers", f"max_connections={lim.get('max_connections')} "
                      f"max_pending_requests={lim.get('max_pending_requests')} "
                      f"max_requests={lim.get('max_requests')} max_retries={lim.get('max_retries')}")
        table.add_row("TLS", s.tls)
        if not s.endpoints:
            table.add_row("4 endpoints (targetPort)", "[red]none: a request here fails with 503 UH[/red]")
        for i, ep in enumerate(s.endpoints):
            table.add_row("4 endpoints (targetPort)" if i == 0 else "",
                          f"{ep.address}:{ep.port}  {ep.health}  tlsMode={ep.tls_mode}  {ep.workload}")
        out.print(table)
        for note in notes(result, s.name):
            out.print(f"  [yellow]note:[/yellow] {note}", markup=True, highlight=False)
        out.print()
    others = [s.name for s in rows if s.direction != "outbound"]
    out.print("Other clusters: " + ", ".join(others))
    from meshlens.render.summary import listener_rows, route_rows

    out.print("\n[bold]Layers 1-2: listeners[/bold] (iptables sends outbound TCP to 15001; "
              "virtualOutbound hands it to the listener for the original port)")
    lt = Table(show_edge=False, pad_edge=False)
    for col in ("listener", "address", "chains", "goes to"):
        lt.add_column(col)
    for row in listener_rows(result):
        lt.add_row(*row)
    out.print(lt)
    for name, vhosts in route_rows(result, only=("80",)):
        out.print(f"\n[bold]Route table {name}[/bold] (what the listener on port 80 asks RDS for)")
        rt = Table(show_edge=False, pad_edge=False)
        for col in ("virtual host", "route", "match", "destination"):
            rt.add_column(col)
        for row in vhosts:
            rt.add_row(*row)
        out.print(rt)
    out.print("\nNext: [cyan]meshlens demo --dump[/cyan] prints the full config dump; "
              "[cyan]meshlens compile -f FILE PROXY[/cyan] does the same for your manifests.")


@app.callback()
def _global_options(
    revision: Revision = "",
    assume_injection: AssumeInjection = "true",
    pilot_env: PilotEnv = [],  # noqa: B006 - typer reads the default
) -> None:
    """Options for every command that reads manifests (also accepted by compile itself)."""
    from meshlens.pipeline import DEFAULT_SETTINGS

    DEFAULT_SETTINGS[0] = load_settings(revision, assume_injection, pilot_env)


app.add_typer(explain_app, name="explain")
app.add_typer(lab_app, name="lab")
app.command("trace")(trace_cmd)
app.command("analyze")(analyze_cmd)
app.command("status")(status_cmd)
app.add_typer(describe_app, name="describe")
app.command("diff")(diff_cmd)
app.command("drift")(drift_cmd)
app.command("report")(report_cmd)
app.command("snapshot")(snapshot_cmd)


app.add_typer(proxy_config_app, name="proxy-config")
app.add_typer(proxy_config_app, name="pc", hidden=True)


def main() -> None:
    from meshlens.cli.common import quiet_gc

    if len(sys.argv) > 1 and sys.argv[1] in ("compile", "demo", "trace", "explain", "proxy-config",
                                              "pc", "analyze"):
        quiet_gc()
    hint = missing_for_command(sys.argv[1:])  # e.g. `lab` without pip install 'meshlens[lab]'
    if hint is not None:
        err.print(f"error: {hint}", markup=False)
        sys.exit(2)
    try:
        if interrupts.installed():
            interrupts.install()  # imports done: from now on a signal unwinds (cleanup runs)
        app_for(sys.argv)()
    except MeshlensError as exc:
        err.print(f"error: {hint_for_exception(exc) or exc}", markup=False)
        sys.exit(2)
    except interrupts.Interrupted as exc:
        err.print(exc.message, markup=False)
        sys.exit(exc.code)
    except (KeyboardInterrupt, BrokenPipeError):
        sys.exit(130)
    except ModuleNotFoundError as exc:
        hint = hint_for_exception(exc)
        if hint is None:
            _internal_error(exc)
        err.print(f"error: {hint}", markup=False)
        sys.exit(2)
    except Exception as exc:  # a bug in meshlens: say so in one line, never a traceback
        _internal_error(exc)


def app_for(argv: list[str]) -> typer.Typer:
    """The app, pruned to the one command ``argv[1]`` names (when it names one).

    Typer builds a click command, with a parameter adapter per option, for every registered
    command before it parses anything (~0.1 s for all of them); a run needs only its own. The
    pruned app keeps the global callback, so it stays a group and prints the same usage, help
    and errors (tests compare the help of every command both ways). Anything else (no command,
    a global option first, an unknown name) gets the whole app.
    """
    import copy

    name = argv[1] if len(argv) > 1 else ""
    commands = [c for c in app.registered_commands if c.name == name]
    groups = [g for g in app.registered_groups if g.name == name]
    if not commands and not groups:
        return app
    pruned = copy.copy(app)
    pruned.registered_commands = commands
    pruned.registered_groups = groups
    return pruned


def _internal_error(exc: Exception) -> NoReturn:
    err.print(f"internal error: {type(exc).__name__}: {exc} (this is a meshlens bug; please "
              "report it with the input that caused it)", markup=False)
    sys.exit(3)


#: Commands that build large object graphs and own no process or file to clean up at exit.
HEAVY = ("compile", "demo", "trace", "explain", "proxy-config", "pc", "analyze")


def run() -> NoReturn:
    """The process entry point: :func:`main`, then, for a heavy command, exit without teardown.

    Freeing a large mesh's objects one by one at interpreter exit takes a noticeable share of a
    run (~0.3 s at 1,000 services) and achieves nothing. So once a heavy command has finished
    (returned or exited with an integer code), stdout and stderr are flushed and the process
    leaves with ``os._exit(code)``. If flushing fails (a closed pipe), the ordinary exit runs
    and reports as it always did. In-process callers (tests) call :func:`main`, which never
    does this.
    """
    heavy = len(sys.argv) > 1 and sys.argv[1] in HEAVY
    try:
        main()
        code: object = 0
    except SystemExit as exc:
        if not heavy:
            raise
        code = 0 if exc.code is None else exc.code
        if not isinstance(code, int):
            raise
    if not heavy:
        sys.exit(0)
    import os

    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        sys.exit(code)
    except interrupts.Interrupted as exc:  # a signal while flushing: as during the command
        err.print(exc.message, markup=False)
        os._exit(exc.code)
    os._exit(code)  # type: ignore[arg-type]
