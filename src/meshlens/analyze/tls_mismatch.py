"""Client TLS versus server mTLS: plaintext (DestinationRule ``tls: DISABLE``, auto mTLS turned
off, or a sidecar-less credentialName) toward a STRICT PeerAuthentication, and explicit
ISTIO_MUTUAL toward a server without a sidecar or with PeerAuthentication DISABLE (the seed: "the
server PeerAuthentication and the client DestinationRule.tls must be set as a pair").

Layer: L6. Imports: analyze.core, analyze._compiled, analyze._routes, compiler, model.

Proven on compiled config, per endpoint: what the cluster sends to it (its transport socket,
or for auto mTLS the endpoint's ``tlsMode`` metadata in EDS) against the mode the server's
workload enforces on that port (its PeerAuthentication, workload and port level included).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from meshlens.analyze._compiled import (
    AUTO,
    ISTIO,
    NONE,
    assignment,
    cla_index,
    describe_clusters,
    effective_policy,
    first_time,
    hosts,
    outbound,
    tls_state,
    workloads_by_ip,
)
from meshlens.analyze.core import CodeDoc, Context, Finding, Metadata, finding, short_list
from meshlens.compiler.clusters import BuiltCluster
from meshlens.compiler.endpoints import tls_mode_for_rule
from meshlens.model.peer_auth import DISABLE, STRICT
from meshlens.resources import Resource
from meshlens.source import FieldPath

METADATA = Metadata(
    name="meshlens.TlsMismatchAnalyzer",
    description="Client TLS (DestinationRule, auto mTLS) versus the server's PeerAuthentication",
    inputs=("DestinationRule", "PeerAuthentication", "Service", "Pod", "Deployment"),
    codes=("ML1250", "ML1251"),
    compiled=True,
)

DOCS = {
    "ML1250": CodeDoc(
        checks="On compiled config, per endpoint: what the client cluster sends (its transport "
               "socket, or for auto mTLS the endpoint's tlsMode in EDS) against the mode the "
               "server workload's PeerAuthentication enforces on that port (mesh, namespace, "
               "workload and port level).",
        matters="Plaintext toward STRICT mTLS: the server sidecar has no filter chain for it "
                "and closes the connection: 503 UC (or UF).",
        quiet="Auto mTLS toward injected servers; ISTIO_MUTUAL; PERMISSIVE servers; ports with "
              "port-level DISABLE.",
        example="DestinationRule: trafficPolicy: {tls: {mode: DISABLE}}; server namespace: "
                "PeerAuthentication {mtls: {mode: STRICT}}"),
    "ML1251": CodeDoc(
        checks="An explicit tls mode ISTIO_MUTUAL toward endpoints without a sidecar, or whose "
               "PeerAuthentication is DISABLE on that port.",
        matters="The server does not speak Istio mTLS: the TLS handshake fails: 503 UF.",
        quiet="Auto mTLS (no tls block), which follows the server; servers with a sidecar and "
              "PERMISSIVE or STRICT.",
        example="DestinationRule legacy: trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}; the "
                "legacy pods have sidecar.istio.io/inject: \"false\""),
}


@dataclass(slots=True)
class _Hit:
    code: str
    res: Resource
    path: FieldPath
    args: dict[str, Any]
    fix: str
    clusters: list[str] = field(default_factory=list)
    endpoints: list[str] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)


def _plaintext_cause(ctx: Context, bc: BuiltCluster, state: str) -> tuple[Resource, FieldPath,
                                                                            str, str]:
    """Why this cluster (or this endpoint) gets plaintext, where, and the fix."""
    pol = effective_policy(ctx, bc)
    tls = pol.get("tls")
    svc = bc.service
    assert svc is not None and bc.port is not None
    if tls is not None and tls.resource is not None:
        mode = str(tls.value.get("mode", "DISABLE"))
        if mode == "DISABLE":
            return (tls.resource, tls.path + ("mode",), f"plaintext (tls mode DISABLE in "
                    f"DestinationRule {tls.resource.namespace}/{tls.resource.name})",
                    "Remove tls mode DISABLE (auto mTLS then sends mTLS to every endpoint with a "
                    "sidecar) or use ISTIO_MUTUAL; or make the server PERMISSIVE on this port.")
        if state == NONE:
            return (tls.resource, tls.path + ("mode",), f"plaintext (tls mode {mode} is not "
                    "applied: credentialName needs a workloadSelector on sidecars)",
                    "Add a workloadSelector to the DestinationRule, or use ISTIO_MUTUAL toward "
                    "mesh workloads.")
        return (tls.resource, tls.path + ("mode",), f"its own TLS (tls mode {mode}), not Istio "
                "mTLS", "Use tls mode ISTIO_MUTUAL (or no tls: auto mTLS) toward mesh workloads.")
    if state == AUTO and bc.rule is not None:
        if tls_mode_for_rule(bc.rule, bc.subset, bc.port.port) == "DISABLE":
            res = bc.rule.resource
            return (res, ("spec", "trafficPolicy", "tls", "mode"), "plaintext (the endpoints carry "
                    f"no tlsMode: EDS still reads tls mode DISABLE of DestinationRule "
                    f"{res.namespace}/{res.name}, which portLevelSettings dropped from the "
                    "cluster)", "Remove tls mode DISABLE from the DestinationRule, or repeat the "
                    "tls mode you want in every portLevelSettings entry.")
    mc = ctx.mesh.mesh_config
    if not mc.auto_mtls:
        return (svc.resource, (), "plaintext (auto mTLS is off: MeshConfig enableAutoMtls false)",
                "Set tls mode ISTIO_MUTUAL for this host, or turn enableAutoMtls back on.")
    ns_mode = ctx.mesh.peer_authentications.namespace_mode(svc.namespace)
    if ns_mode.mode == DISABLE and ns_mode.resource is not None:
        pa = ns_mode.resource
        return (pa, ("spec", "mtls", "mode"), f"plaintext (auto mTLS is off for {svc.hostname}: "
                f"PeerAuthentication {pa.namespace}/{pa.name} disables mTLS for namespace "
                f"{svc.namespace})", "Set tls mode ISTIO_MUTUAL for this host, or align the "
                "namespace-level and workload-level PeerAuthentication modes.")
    return (svc.resource, (), "plaintext", "Set tls mode ISTIO_MUTUAL for this host.")


def analyze(ctx: Context) -> Iterator[Finding]:
    hits: dict[tuple[Any, ...], _Hit] = {}
    pas = ctx.mesh.peer_authentications
    by_ip = workloads_by_ip(ctx)
    modes: dict[tuple[str, str, int], Any] = {}
    seen: set[tuple[int, ...]] = set()  # a shared cluster gives the same hits in every proxy
    for _, result in ctx.compiled():
        index = cla_index(result)
        for bc in outbound(result):
            c = bc.cluster
            if not first_time(seen, c, bc.rule, assignment(result, c, index)):
                continue
            state = tls_state(c)
            for h in hosts(result, c, index) or []:
                w = by_ip.get(h.address)
                if w is None:
                    continue
                mode_key = (w.namespace, w.name, h.port)
                if mode_key not in modes:
                    modes[mode_key] = pas.workload_mode(w.namespace, w.labels, h.port)
                server = modes[mode_key]
                sends = state if state != AUTO else (ISTIO if h.tls_mode == "istio" else NONE)
                endpoint = f"{w.workload_name}.{w.namespace}"
                if w.injected and server.mode == STRICT and sends != ISTIO:
                    res, path, what, fix = _plaintext_cause(ctx, bc, state)
                    pa = server.resource
                    fix += (f" (STRICT comes from PeerAuthentication {pa.namespace}/{pa.name}.)"
                            if pa is not None else "")
                    key = ("ML1250", res.ref, path)
                    hit = hits.setdefault(key, _Hit("ML1250", res, path, {"what": what}, fix))
                elif state == ISTIO and (not w.injected or server.mode == DISABLE):
                    pol = effective_policy(ctx, bc)
                    tls = pol.get("tls")
                    if tls is None or tls.resource is None:
                        continue
                    why = (f"tls mode ISTIO_MUTUAL in DestinationRule {tls.resource.namespace}/"
                           f"{tls.resource.name}")
                    if not w.injected:
                        srv = "run without a sidecar to terminate it"
                        fix = ("Remove tls (auto mTLS sends plaintext to pods without a sidecar) "
                               "or inject a sidecar into the server.")
                    else:
                        pa = server.resource
                        srv = (f"disable mTLS on that port (PeerAuthentication "
                               f"{pa.namespace}/{pa.name})" if pa is not None
                               else "disable mTLS on that port")
                        fix = ("Remove tls mode ISTIO_MUTUAL (auto mTLS follows the server's "
                               "PeerAuthentication), or make the server PERMISSIVE.")
                    key = ("ML1251", tls.resource.ref, tls.path + ("mode",))
                    hit = hits.setdefault(key, _Hit("ML1251", tls.resource, tls.path + ("mode",),
                                                    {"why": why, "server": srv}, fix))
                else:
                    continue
                if c.name not in hit.clusters:
                    hit.clusters.append(c.name)
                if endpoint not in hit.endpoints:
                    hit.endpoints.append(endpoint)
                if h.port not in hit.ports:
                    hit.ports.append(h.port)
    for hit in hits.values():
        args = dict(hit.args)
        if hit.code == "ML1250":
            args["port"] = ", ".join(str(p) for p in sorted(hit.ports))
        else:
            args["server"] = f"{hit.args['server']} (port {', '.join(map(str, sorted(hit.ports)))})"
        yield finding(hit.code, hit.res, hit.path, cluster=describe_clusters(hit.clusters),
                      endpoints=short_list(sorted(hit.endpoints)), fix={"fix": hit.fix}, **args)
