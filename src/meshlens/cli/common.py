"""Options and helpers shared by the CLI's commands.

Layer: L8.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from meshlens.diagnostics import Diagnostic, Level
from meshlens.errors import LoadError, UsageError

err = Console(stderr=True, highlight=False, soft_wrap=True)


class Output(str, Enum):
    json = "json"
    yaml = "yaml"


Files = Annotated[list[str], typer.Option("-f", "--filename", help="File, folder or - (stdin); repeatable.")]
Namespace = Annotated[str | None, typer.Option("-n", "--namespace", help="Namespace of PROXY.")]
MeshConfigOpt = Annotated[str | None, typer.Option("--mesh-config", help="MeshConfig file, or the istio ConfigMap.")]
Strict = Annotated[bool, typer.Option("--strict", help="Exit 2 on any rejected resource.")]
Revision = Annotated[str, typer.Option(
    "--revision", help="Istio revision asked about (its webhooks, istio-REV ConfigMap, istiod-REV).")]
AssumeInjection = Annotated[str, typer.Option(
    "--assume-injection", metavar="true|false",
    help="Namespaces without a Namespace object in the input are labelled for injection.")]
PilotEnv = Annotated[list[str], typer.Option(
    "--pilot-env", metavar="NAME=VALUE", help="An istiod feature flag; repeatable; over the input's.")]


def load_settings(revision: str, assume_injection: str, pilot_env: list[str]) -> Any:
    """The pipeline's LoadSettings from the CLI options (usage error on a bad value)."""
    from meshlens.pipeline import LoadSettings

    value = assume_injection.strip().lower()
    if value not in ("true", "false", "1", "0", "yes", "no"):
        fail(f"--assume-injection {assume_injection!r}: expected true or false")
    for item in pilot_env:
        if "=" not in item or item.startswith("="):
            fail(f"--pilot-env {item!r}: expected NAME=VALUE")
    return LoadSettings(revision=revision, assume_injection=value in ("true", "1", "yes"),
                        pilot_env=tuple(pilot_env))


class ProxyKind(str, Enum):
    sidecar = "sidecar"
    router = "router"


ProxyTypeOpt = Annotated[ProxyKind | None, typer.Option(
    "--proxy-type", help="sidecar or router (a gateway); inferred from the pod by default.")]


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"error: {message}", markup=False)
    raise typer.Exit(code)


def report(diags: list[Diagnostic], errors: list[LoadError], *, strict: bool, quiet: bool = False) -> None:
    """Print diagnostics to stderr; exit 2 on load errors (or any error with --strict)."""
    for e in errors:
        err.print(str(e), markup=False)
    if not quiet:
        for d in diags:
            err.print(d.format(), markup=False)
    if errors or (strict and any(d.level == Level.ERROR for d in diags)):
        raise typer.Exit(2)


def load_files(files: list[str], mesh_config: str | None, strict: bool = False, *,
               limits: Any = None, settings: Any = None) -> Any:
    """Load manifests and report their diagnostics (exit 2 on unusable input)."""
    from meshlens.loader import Limits
    from meshlens.pipeline import load

    if not files:
        fail("no input: give manifests with -f FILE (a file, a folder, or - for stdin)")
    loaded = load(files, mesh_config=mesh_config, limits=limits or Limits(), settings=settings)
    report(loaded.diagnostics, loaded.errors, strict=strict)
    return loaded


def compile_loaded(loaded: Any, proxy: str, namespace: str | None, proxy_type: Any = None, *,
                   only: Any = None) -> Any:
    """Compile PROXY from loaded manifests and report the compiler's diagnostics.

    ``proxy_type`` (a :class:`ProxyKind`) forces sidecar or router; by default it is inferred.
    ``only``: a targeted compile (``meshlens.compiler.Wanted``; trace).
    """
    from meshlens.pipeline import compile_for

    try:
        result = compile_for(loaded, proxy, namespace=namespace,
                             proxy_type=proxy_type.value if proxy_type is not None else None, only=only)
    except UsageError as exc:
        fail(str(exc))
    for d in result.diagnostics:
        err.print(d.format(), markup=False)
    return result


def compile_files(files: list[str], proxy: str, namespace: str | None, mesh_config: str | None,
                  strict: bool = False, *, limits: Any = None, settings: Any = None,
                  proxy_type: Any = None) -> Any:
    """Load manifests, report their diagnostics, and compile PROXY (exit 2 on unusable input).

    ``limits`` (a :class:`meshlens.loader.Limits`) bounds the input; the default is Limits().
    """
    return compile_loaded(load_files(files, mesh_config, strict, limits=limits, settings=settings),
                          proxy, namespace, proxy_type)


def quiet_gc() -> None:
    """One-shot commands build large acyclic trees: the cyclic GC only costs time there."""
    import gc

    gc.freeze()
    gc.disable()
