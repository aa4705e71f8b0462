"""What AuthorizationPolicies and EnvoyFilters really do to each sidecar, read off the compiled
filters: policies that deny everything, ALLOW rules dropped on TCP ports, identity rules that
cannot match without mTLS, and EnvoyFilter patches that change nothing.

Layer: L6. Imports: analyze.core, analyze.inputs, compiler, model.

Checks (each proven on what :mod:`meshlens.compiler.authz` / ``compiler.envoyfilter`` built for
every injected workload, first pod of each controller):

- ML1300: an ALLOW policy without rules (istiod writes a never-matching policy: every request is
  denied), or a DENY rule ``{}`` that matches every request.
- ML1301: on a TCP port, every ALLOW rule uses HTTP-only fields (methods, paths, hosts, request
  principals, headers, JWT claims): istiod drops those rules on TCP chains, so every connection
  is denied (`Generate` with ``forTCP``).
- ML1302: a rule that needs the peer's identity (``principals``, ``namespaces``,
  ``serviceAccounts``, ``source.principal``...) on a workload whose PeerAuthentication mode is
  DISABLE: without mTLS the peer has no certificate, the rule never matches.
- ML1303: an EnvoyFilter patch that changed nothing on any proxy it selects (sidecars, and
  gateways for GATEWAY/ANY patches); an EXTENSION_CONFIG ADD counts when a filter asks for it.
- ML1304: a BOOTSTRAP patch (nothing applies those since Istio 1.21).
- ML1305: an EXTENSION_CONFIG whose type the filter asking for it refuses (from the compiler).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from meshlens.analyze.core import CodeDoc, Context, Finding, Metadata, finding
from meshlens.analyze.inputs import proxy_ref

METADATA = Metadata(
    name="meshlens.AuthorizationEffect",
    description="Authorization policies and EnvoyFilters as compiled for each sidecar",
    inputs=("AuthorizationPolicy", "EnvoyFilter", "PeerAuthentication", "Pod"),
    codes=("ML1300", "ML1301", "ML1302", "ML1303", "ML1304", "ML1305"),
)
IDENTITY_KEYS = ("principals", "notPrincipals", "namespaces", "notNamespaces", "serviceAccounts",
                 "notServiceAccounts", "trustDomains", "notTrustDomains")
IDENTITY_WHEN = ("source.principal", "source.namespace", "source.serviceAccount", "source.trustDomain")


def _proxies(ctx: Context, *, gateways: bool = False) -> list[Any]:
    """The first pod of each injected controller (and, with ``gateways``, of each gateway)."""
    from meshlens.model.proxy import ROUTER, Proxy, infer_proxy_type

    seen: dict[str, Any] = {}
    for w in sorted(ctx.mesh.registry.workloads, key=lambda w: (w.namespace, w.name)):
        kind = infer_proxy_type(w) if gateways else ""
        if kind == ROUTER:
            seen.setdefault(proxy_ref(w), Proxy(w, ROUTER))
        elif w.injected:
            seen.setdefault(proxy_ref(w), Proxy(w))
    return list(seen.values())


def _needs_identity(rule: Any) -> bool:
    if not isinstance(rule, dict):
        return False
    for frm in rule.get("from") or []:
        src = frm.get("source") if isinstance(frm, dict) else None
        if isinstance(src, dict) and any(src.get(k) for k in IDENTITY_KEYS):
            return True
    return any(isinstance(w, dict) and w.get("key") in IDENTITY_WHEN for w in rule.get("when") or [])


def _policies(ctx: Context) -> Iterator[Finding]:
    from meshlens.compiler.authz.policies import select_policies

    root = ctx.mesh.mesh_config.root_namespace
    deny_all: dict[tuple[str, str], list[str]] = {}
    tcp_denied: dict[tuple[str, str], list[str]] = {}
    no_mtls: dict[tuple[str, str, int], list[str]] = {}
    res_of: dict[tuple[str, str], Any] = {}
    for proxy in _proxies(ctx):
        sel = select_policies(ctx.resources, proxy.namespace, proxy.labels, root)
        name = f"{proxy.name}.{proxy.namespace}"
        for res in sel.allow + sel.deny:
            key = (res.namespace, res.name)
            res_of[key] = res
            action = res.spec.get("action") or "ALLOW"
            rules = res.spec.get("rules") or []
            if (action == "ALLOW" and not rules) or (action == "DENY" and {} in rules):
                deny_all.setdefault(key, []).append(name)
            mode = ctx.mesh.peer_authentications.workload_mode(proxy.namespace, proxy.labels, None)
            if mode.mode == "DISABLE":
                for i, rule in enumerate(rules):
                    if _needs_identity(rule):
                        no_mtls.setdefault((*key, i), []).append(name)
        ports = _tcp_ports_denied(ctx, proxy) if any(r.spec.get("rules") for r in sel.allow) else []
        if ports:
            for res in sel.allow:
                if res.spec.get("rules"):
                    tcp_denied.setdefault((res.namespace, res.name), []).append(
                        f"{name} port {', '.join(map(str, ports))}")
                    res_of[(res.namespace, res.name)] = res
    for key, names in deny_all.items():
        yield finding("ML1300", res_of[key], ("spec",), workloads=", ".join(names))
    for key, names in tcp_denied.items():
        yield finding("ML1301", res_of[key], ("spec", "rules"), workloads=", ".join(names))
    for (ns, n, i), names in no_mtls.items():
        yield finding("ML1302", res_of[(ns, n)], ("spec", "rules", i), rule=i,
                      workloads=", ".join(names))


def _tcp_ports_denied(ctx: Context, proxy: Any) -> list[int]:
    """The service target ports whose TCP chains carry an ALLOW network RBAC filter with no
    policy left (every ALLOW rule was HTTP-only)."""
    from envoy.extensions.filters.network.rbac.v3 import rbac_pb2

    from meshlens.compiler import compile_proxy

    result = compile_proxy(ctx.mesh, proxy, cache=ctx.loaded.cache)
    vi = next((x for x in result.listeners or [] if x.name == "virtualInbound"), None)
    ports: set[int] = set()
    for fc in vi.filter_chains if vi is not None else []:
        port = fc.filter_chain_match.destination_port.value
        for f in fc.filters:
            if f.typed_config.Is(rbac_pb2.RBAC.DESCRIPTOR):
                cfg = rbac_pb2.RBAC()
                f.typed_config.Unpack(cfg)
                if port and cfg.HasField("rules") and cfg.rules.action == 0 and not cfg.rules.policies:
                    ports.add(port)
    return sorted(ports)


def _envoy_filters(ctx: Context) -> Iterator[Finding]:
    from meshlens.compiler import compile_proxy
    from meshlens.compiler.envoyfilter.patches import envoy_filters_for

    efs = ctx.of_kind("EnvoyFilter")
    if not efs:
        return
    root = ctx.mesh.mesh_config.root_namespace
    applied: set[tuple[str, str, int]] = set()
    selected: dict[tuple[str, str], set[str]] = {}
    reported: set[tuple[str, str]] = set()
    for proxy in _proxies(ctx, gateways=True):
        mine = envoy_filters_for(ctx.resources, proxy.namespace, proxy.labels, root)
        if not mine:
            continue
        for r in mine:
            selected.setdefault((r.namespace, r.name), set()).add(proxy.type)
        result = compile_proxy(ctx.mesh, proxy, cache=ctx.loaded.cache)
        for r in mine:
            done = result.provenance.of("envoyfilter", f"{r.namespace}/{r.name}")
            applied.update((r.namespace, r.name, int(k.split("[")[1].rstrip("]"))) for k in done)
        for d in result.diagnostics:
            if d.code == "ML1305" and (str(d.resource), d.message) not in reported:
                reported.add((str(d.resource), d.message))
                res = next(r for r in mine if r.ref == d.resource)
                yield finding("ML1305", res, d.path, **d.args)
    for ef in efs:
        types = selected.get((ef.namespace, ef.name))
        if types is None:
            continue  # selects no proxy: its workloadSelector is the problem, not a patch
        for i, cp in enumerate(ef.spec.get("configPatches") or []):
            apply_to = str((cp or {}).get("applyTo") or "") if isinstance(cp, dict) else ""
            if apply_to == "BOOTSTRAP":
                yield finding("ML1304", ef, ("spec", "configPatches", i), index=i)
                continue
            ctx_name = str(((cp or {}).get("match") or {}).get("context") or "ANY")
            if ctx_name == "WAYPOINT" or (ctx_name == "GATEWAY" and "router" not in types) or (
                    ctx_name.startswith("SIDECAR") and "sidecar" not in types):
                continue  # nothing of that kind selected (waypoints are not compiled)
            if (ef.namespace, ef.name, i) not in applied:
                yield finding("ML1303", ef, ("spec", "configPatches", i), index=i)


def analyze(ctx: Context) -> Iterator[Finding]:
    if ctx.of_kind("AuthorizationPolicy"):
        yield from _policies(ctx)
    yield from _envoy_filters(ctx)


DOCS = {
    "ML1300": CodeDoc(
        checks="On each selected sidecar's compiled inbound RBAC filters: an ALLOW policy with "
               "no rules, or a DENY rule without from/to/when, matches every request.",
        matters="Every request to the workload is denied: 403 RBAC: access denied (HTTP), or the "
                "connection is closed (TCP).",
        quiet="The ALLOW policy has rules; the DENY rule has conditions; the policy selects no "
              "workload (ML1160 says so).",
        example="AuthorizationPolicy allow-nothing: {selector: {matchLabels: {app: ratings}}, "
                "action: ALLOW}   # no rules: denies all"),
    "ML1301": CodeDoc(
        checks="On the compiled TCP filter chains: every ALLOW rule of a policy uses HTTP-only "
               "fields (methods, paths, hosts, requestPrincipals, headers, JWT claims), which "
               "istiod drops on TCP chains, leaving an ALLOW filter with no rule.",
        matters="Every TCP connection to that port is denied (closed by the server's RBAC).",
        quiet="The port is HTTP; at least one ALLOW rule uses only TCP-level fields (ports, "
              "principals, namespaces, ipBlocks).",
        example="rules: [{to: [{operation: {methods: [GET]}}]}]   # on a port named tcp-db"),
    "ML1302": CodeDoc(
        checks="An ALLOW/DENY rule that needs the peer's mTLS identity (principals, namespaces) "
               "on a workload whose PeerAuthentication disables mTLS.",
        matters="Without mTLS there is no peer identity: an ALLOW rule never matches (403), a "
                "DENY rule never denies.",
        quiet="mTLS is PERMISSIVE or STRICT for the port; the rule matches on ipBlocks.",
        example="PeerAuthentication: {mtls: {mode: DISABLE}}; rules: [{from: [{source: "
                "{principals: [...]}}]}]"),
    "ML1303": CodeDoc(
        checks="An EnvoyFilter configPatch whose match finds no object in the compiled config of "
               "any sidecar it selects (listener, port, filter chain, filter, cluster, route).",
        matters="The patch changes nothing: the behaviour it was written for is absent.",
        quiet="The patch changes at least one sidecar's config.",
        example="match: {context: SIDECAR_INBOUND, listener: {portNumber: 9080}}   # on inbound "
                "the port is the target port, e.g. 8080"),
    "ML1304": CodeDoc(
        checks="An EnvoyFilter configPatch with applyTo BOOTSTRAP on an EnvoyFilter that selects "
               "a proxy.",
        matters="Neither istiod nor pilot-agent applies bootstrap patches since Istio 1.21 (the "
                "experimental bootstrap discovery was removed): the bootstrap is unchanged.",
        quiet="The change is made in the proxy's ProxyConfig or a custom bootstrap template "
              "instead.",
        example="- applyTo: BOOTSTRAP\n  patch: {operation: MERGE, value: {stats_flush_interval: 7s}}"),
    "ML1305": CodeDoc(
        checks="An EXTENSION_CONFIG ADD whose typed_config type is not among the type_urls of the "
               "filter (config_discovery) that asks for it by name.",
        matters="Envoy rejects the ECDS update: the filter keeps no config, its listener stays "
                "warming or the filter uses its default config.",
        quiet="The type is listed in the filter's config_discovery.type_urls.",
        example="config_discovery: {type_urls: [...wasm.v3.Wasm]} but EXTENSION_CONFIG "
                "typed_config @type ...lua.v3.Lua"),
}
