"""``meshlens describe service``: istioctl's ``x describe service`` from files.

Layer: L8.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from meshlens.cli.common import Files, MeshConfigOpt, Namespace, fail, report

describe_app = typer.Typer(no_args_is_help=True, help="istioctl's x describe, from files.")


def _pods(loaded: Any) -> list[Any]:
    """Pod resources, plus the pods meshlens makes for controllers (Running; istio-proxy ready
    when injected, as istioctl would see them)."""
    from meshlens.resources import Resource

    out = [r for r in loaded.mesh.resources if r.kind == "Pod"]
    have = {(r.namespace, r.name) for r in out}
    for wl in loaded.mesh.registry.workloads:
        if (wl.namespace, wl.name) in have:
            continue
        status: dict[str, Any] = {"phase": "Running", "podIP": wl.ip}
        body_spec = wl.resource.body.get("spec") or {}
        tmpl = ((body_spec.get("template") or {}).get("spec") or {}) if wl.resource.kind != "Pod" else body_spec
        containers = [{**c, "ports": [{"protocol": "TCP", **p} for p in c.get("ports") or []]}
                      for c in tmpl.get("containers") or [] if isinstance(c, dict)]
        status["containerStatuses"] = [{"name": c.get("name"), "ready": wl.ready} for c in containers]
        if wl.injected:  # what the injector adds (the sidecar's Prometheus port)
            containers.append({"name": "istio-proxy", "ports": [
                {"name": "http-envoy-prom", "containerPort": 15090, "protocol": "TCP"}]})
            status["containerStatuses"].append({"name": "istio-proxy", "ready": wl.ready})
        body = {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": wl.name, "namespace": wl.namespace, "labels": dict(wl.labels)},
                "spec": {"containers": containers}, "status": status}
        out.append(Resource("", "v1", "Pod", wl.name, wl.namespace, dict(wl.labels), dict(wl.annotations),
                            body, wl.resource.doc, wl.resource.creation))
    return out


_HELP = {
    "pod": "The pod, its Services (DestinationRule, VirtualService), its effective PeerAuthentication "
           "and the ingress gateways exposing it, as istioctl x describe pod prints them.",
    "service": "The Service's pods, DestinationRule, VirtualService and ingress gateways, as istioctl "
               "x describe service prints them (from the config meshlens compiles for the pods).",
}


Name = Annotated[str, typer.Argument(help="NAME[.NAMESPACE] of the pod or service")]
ConfigDumps = Annotated[list[str], typer.Option(
    "--config-dump", help="POD=FILE: use this real config dump for that pod instead of compiling; "
                          "repeatable")]


def _register(what: str) -> None:
    def command(
        name: Name,
        filename: Files = [],  # noqa: B006
        namespace: Namespace = None,
        mesh_config: MeshConfigOpt = None,
        config_dump: ConfigDumps = [],  # noqa: B006
    ) -> None:
        _describe(what, name, filename, namespace, mesh_config, config_dump)

    command.__doc__ = _HELP[what]
    describe_app.command(what)(command)


def _describe(what: str, name: str, filename: list[str], namespace: str | None, mesh_config: str | None,
              config_dump: list[str]) -> None:
    from meshlens.dump import ConfigDump, DumpError, from_message, parse_config_dump
    from meshlens.emit import config_dump as to_dump
    from meshlens.pipeline import compile_for, load
    from meshlens.render.describe import Inputs, describe_service
    from meshlens.render.describe_pod import describe_pod

    if not filename:
        fail("no input: give manifests with -f FILE (a file, a folder, or - for stdin)")
    loaded = load(filename, mesh_config=mesh_config)
    report(loaded.diagnostics, loaded.errors, strict=False, quiet=True)
    target, _, ns = name.partition(".")
    ns = ns or namespace or "default"
    given: dict[str, ConfigDump] = {}
    for item in config_dump:
        pod, sep, path = item.partition("=")
        if not sep:
            fail(f"--config-dump {item!r}: expected POD=FILE")
        try:
            text = open(path, encoding="utf-8").read()  # noqa: SIM115
            given[pod] = ConfigDump() if text.strip() == "{}" else parse_config_dump(text)
        except (OSError, DumpError) as exc:
            fail(f"--config-dump {path}: {exc}")

    def dump_for(pod: Any) -> ConfigDump | None:
        if pod.name in given:
            return given[pod.name]
        try:
            return from_message(to_dump(compile_for(loaded, f"{pod.name}.{pod.namespace}")))
        except Exception:  # noqa: BLE001 - a pod meshlens cannot compile has no dump, as an unreachable proxy
            return None

    resources = [r for r in loaded.mesh.resources if r.kind != "Pod"] + _pods(loaded)
    try:
        inp = Inputs(resources, namespace or "default", dump_for)
        if what == "pod":
            sys.stdout.write(describe_pod(inp, target, ns, root=loaded.mesh.mesh_config.root_namespace,
                                          peer=loaded.mesh.peer_authentications))
        else:
            sys.stdout.write(describe_service(inp, target, ns))
    except LookupError as exc:
        fail(str(exc))


for _what in ("pod", "service"):
    _register(_what)
