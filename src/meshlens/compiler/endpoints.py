"""EDS: ClusterLoadAssignments, and the load_assignment of DNS clusters.

Layer: L4. Imports: model, compiler.provenance, xDS protos.

`xds/endpoints/endpoint_builder.go` (selection, filtering, locality grouping, metadata),
`mtls_checker.go` (tlsMode metadata) and `core/loadbalancer/loadbalancer.go` (priorities).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from envoy.config.core.v3 import base_pb2, health_check_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2 as ec_pb2
from envoy.config.endpoint.v3 import endpoint_pb2

from meshlens.model.destination_rules import ConsolidatedRule
from meshlens.model.peer_auth import DISABLE, PeerAuthentications
from meshlens.model.registry import Endpoint, Service, ServicePort, canonical_name, canonical_revision

_HEALTH = {"HEALTHY": health_check_pb2.HEALTHY, "UNHEALTHY": health_check_pb2.UNHEALTHY,
           "DRAINING": health_check_pb2.DRAINING, "UNKNOWN": health_check_pb2.UNKNOWN}


def _ip_version(addr: str) -> int:
    try:
        return ipaddress.ip_address(addr).version
    except ValueError:
        return 0


_OD_LB = ("outlierDetection", "loadBalancer")


def _od_lb_values(ref: Any, port: int) -> tuple[dict[str, Any], bool]:
    """`port_level`'s outlierDetection and loadBalancer values alone (no Blocks, no reasons)."""
    entry = ref.port_entry(port)
    src = ref.tp if entry is None else entry[1]
    return {b: src[b] if isinstance(src[b], dict) else {} for b in _OD_LB
            if b in src and src[b] is not None}, entry is not None


def merged_od_and_lb(rule: ConsolidatedRule | None, subset: str, port: int) -> tuple[Any, Any]:
    """OD and LB of the subset + port-level policy, without the mesh baseline (EDS's view):
    the values ``subset_policy(port_level(...))`` gives for these two blocks."""
    if rule is None or rule.policy is None and not subset:
        return None, None
    values, _ = _od_lb_values(rule.policy, port) if rule.policy is not None else ({}, False)
    sub = rule.subset(subset) if subset else None
    if sub is not None and sub.policy is not None:
        own, has_port = _od_lb_values(sub.policy, port)
        for name in _OD_LB:
            if name in own or has_port:
                values.pop(name, None)
                if name in own:
                    values[name] = own[name]
    return values.get("outlierDetection"), values.get("loadBalancer")


def supports_unhealthy(svc: Service, rule: ConsolidatedRule | None, subset: str, port: int,
                       options: Any, *, od_lb: tuple[Any, Any] | None = None) -> bool:
    """`supportsUnhealthy`: send not-ready endpoints unless OD asks for a minimum health.

    ``od_lb``: :func:`merged_od_and_lb` of the same arguments, when the caller has it."""
    if options.send_unhealthy_endpoints or svc.traffic_distribution:
        return True
    if not options.auto_send_unhealthy_endpoints:
        return False
    od, _ = od_lb if od_lb is not None else merged_od_and_lb(rule, subset, port)
    mhp = od.get("minHealthPercent") if isinstance(od, dict) else None
    return not (isinstance(mhp, int) and mhp > 0)


def tls_mode_for_rule(rule: ConsolidatedRule | None, subset: str, port: int) -> str | None:
    """`tlsModeForDestinationRule`: per-field fallback subset-port → subset → port → top."""
    if rule is None:
        return None
    candidates = []
    sub = rule.subset(subset) if subset else None
    if sub is not None and sub.policy is not None:
        entry = sub.policy.port_entry(port)
        if entry:
            candidates.append(entry[1].get("tls"))
        candidates.append(sub.policy.tp.get("tls"))
    if rule.policy is not None:
        entry = rule.policy.port_entry(port)
        if entry:
            candidates.append(entry[1].get("tls"))
        candidates.append(rule.policy.tp.get("tls"))
    for tls in candidates:
        if isinstance(tls, dict):
            return str(tls.get("mode", "DISABLE"))
    return None


def select(eps: list[Endpoint], svc: Service, port: ServicePort, labels: dict[str, str] | None,
           *, eds: bool, unhealthy_ok: bool,
           ip_version: Callable[[str], int] = _ip_version) -> list[Endpoint]:
    """Endpoints of one service port (and subset), filtered as istiod filters them.

    ``ip_version``: the run's parse of an address (``BuildCache.ip_version``)."""
    out = []
    for ep in eps:
        if ep.service_port_name != port.name:
            continue
        if eds and ep.address and ep.port and not ip_version(ep.address):
            continue  # EDS needs IPs; DNS-name endpoints only serve DNS clusters
        if labels and any(ep.labels.get(k) != v for k, v in labels.items()):
            continue
        if not ep.address:
            continue
        # EndpointBuilder.filterIstioEndpoint: unhealthy only when the service supports it,
        # terminating never, draining only to persistent-session (cookie label) services.
        if ep.health == "UNHEALTHY" and not unhealthy_ok:
            continue
        if ep.health == "TERMINATING":
            continue
        if (ep.health == "DRAINING" or ep.labels.get("istio.io/draining")) \
                and not svc.persistent_session_cookie:
            continue
        out.append(ep)
    return out


def _locality(label: str) -> base_pb2.Locality:
    parts = (label.split("/") + ["", "", ""])[:3] if label else ["", "", ""]
    return base_pb2.Locality(region=parts[0], zone=parts[1], sub_zone=parts[2])


def lb_endpoint(ep: Endpoint, mtls: bool, telemetry: bool) -> ec_pb2.LbEndpoint:
    """`buildEnvoyLbEndpoint`: address(es), health, weight and metadata of one endpoint
    (``mtls``: the endpoint gets the tlsMode transport-socket-match label)."""
    lb = ec_pb2.LbEndpoint()
    sa = lb.endpoint.address.socket_address
    sa.address, sa.port_value = ep.address, ep.port
    for extra in ep.addresses[1:]:  # a dual-stack pod (ISTIO_DUAL_STACK)
        more = lb.endpoint.additional_addresses.add().address.socket_address
        more.address, more.port_value = extra, ep.port
    health = "DRAINING" if ep.labels.get("istio.io/draining") else ep.health
    if health != "UNKNOWN":  # buildEnvoyLbEndpoint: HealthStatus by number, UNKNOWN = 0
        lb.health_status = _HEALTH[health]
    lb.load_balancing_weight.value = ep.weight if ep.weight > 0 else 1
    fm = lb.metadata.filter_metadata
    if mtls:
        fm["envoy.transport_socket_match"].fields["tlsMode"].string_value = ep.tls_mode
    if telemetry:
        rev = canonical_revision(ep.labels)
        wl = ";".join([ep.workload_name, ep.namespace, canonical_name(ep.labels, ep.workload_name),
                       "" if rev == "latest" else rev, ep.cluster_id])
        fm["istio"].fields["workload"].string_value = wl
    if not fm:
        lb.ClearField("metadata")
    return lb


def build_locality_endpoints(eps: list[Endpoint], *, mtls: Callable[[Endpoint], bool], telemetry: bool,
                             message: Callable[[Endpoint, bool, bool], ec_pb2.LbEndpoint] = lb_endpoint
                             ) -> list[ec_pb2.LocalityLbEndpoints]:
    """Endpoints grouped by locality. ``message``: :func:`lb_endpoint`, or the run's copy of
    it built once per endpoint and variant (``BuildCache.per_object``)."""
    groups: dict[str, list[Endpoint]] = {}
    for ep in eps:
        groups.setdefault(ep.locality, []).append(ep)
    keys = sorted(groups) if len(groups) >= 2 else list(groups)
    out = []
    for key in keys:
        loc = ec_pb2.LocalityLbEndpoints()
        loc.locality.CopyFrom(_locality(key))
        total = 0
        members = groups[key]
        for ep in members:
            total = min(total + (ep.weight if ep.weight > 0 else 1), 4294967295)
        loc.lb_endpoints.extend([message(ep, ep.tls_mode not in ("", "disabled") and mtls(ep), telemetry)
                                 for ep in members])
        loc.load_balancing_weight.value = total
        out.append(loc)
    return out


def mtls_checker(rule: ConsolidatedRule | None, subset: str, port: int,
                 pas: PeerAuthentications) -> Callable[[Endpoint], bool]:
    """`checkMtlsEnabled`: the DestinationRule's tls mode, else the server's PeerAuthentication."""
    mode = tls_mode_for_rule(rule, subset, port)
    if mode is not None:
        enabled = mode == "ISTIO_MUTUAL"
        return lambda ep: enabled
    return lambda ep: ep.tls_mode == "istio" and pas.workload_mode(
        ep.namespace, ep.labels, ep.port).mode != DISABLE


def apply_failover(locs: list[ec_pb2.LocalityLbEndpoints], proxy_locality: str,
                   failover: list[dict[str, Any]] | None = None) -> None:
    """`applyLocalityFailover`: priority by distance from the proxy's locality, compacted."""
    pr = (proxy_locality.split("/") + ["", "", ""])[:3] if proxy_locality else ["", "", ""]
    raw = []
    for loc in locs:
        lr = [loc.locality.region, loc.locality.zone, loc.locality.sub_zone]
        if lr[0] == pr[0] and lr[1] == pr[1] and lr[2] == pr[2]:
            p = 0
        elif lr[0] == pr[0] and lr[1] == pr[1]:
            p = 1
        elif lr[0] == pr[0]:
            p = 2
        else:
            p = 3
            for rule in failover or []:
                if rule.get("from") == pr[0] and lr[0] != rule.get("to"):
                    p = 4
        raw.append(loc.priority * 5 + p)
    ranks = {v: i for i, v in enumerate(sorted(set(raw)))}
    for loc, v in zip(locs, raw, strict=True):
        loc.priority = ranks[v]


def apply_zone_aware_failover(locs: list[ec_pb2.LocalityLbEndpoints], proxy_locality: str,
                              failover: list[dict[str, Any]]) -> None:
    """`applyZoneAwareRegionalFailover`: 0 same region, 1 failover target, 2 others; compacted."""
    region = proxy_locality.split("/")[0] if proxy_locality else ""
    raw = []
    for loc in locs:
        p = 0 if loc.locality.region == region else 2
        if p:
            for rule in failover:
                if rule.get("from") == region:
                    p = 1 if loc.locality.region == rule.get("to") else 2
                    break
        raw.append(loc.priority * 3 + p)
    ranks = {v: i for i, v in enumerate(sorted(set(raw)))}
    for loc, v in zip(locs, raw, strict=True):
        loc.priority = ranks[v]


def apply_distribute(locs: list[ec_pb2.LocalityLbEndpoints], proxy_locality: str,
                     distribute: list[dict[str, Any]]) -> None:
    """`applyLocalityWeights`: the first ``from`` matching the proxy sets locality weights."""
    def matches(pattern: str, label: str) -> bool:
        pp, lp = pattern.split("/"), (label.split("/") + ["", "", ""])[:3]
        for i, part in enumerate(pp[:3]):
            if part == "*":
                return True
            if part != lp[i] and not (i > 0 and part == ""):
                return False
        return True

    label_of = {id(loc): "/".join([loc.locality.region, loc.locality.zone, loc.locality.sub_zone])
                for loc in locs}
    for rule in distribute:
        if not matches(str(rule.get("from", "")), proxy_locality):
            continue
        assigned: set[int] = set()
        for pattern, weight in (rule.get("to") or {}).items():
            group = [loc for loc in locs if id(loc) not in assigned and matches(str(pattern), label_of[id(loc)])]
            base = sum(max(loc.load_balancing_weight.value, 1) for loc in group)
            for loc in group:
                assigned.add(id(loc))
                w = max(loc.load_balancing_weight.value, 1)
                loc.load_balancing_weight.value = -(-w * int(weight) // base) if base else 0
        for loc in locs:
            if id(loc) not in assigned:
                del loc.lb_endpoints[:]
        return
