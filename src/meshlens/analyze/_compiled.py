"""Facts read off compiled xDS, shared by the analyzers that prove findings on Envoy config.

Layer: L6. Imports: compiler, model, resources, analyze.core.

Everything here reads a :class:`CompileResult` (clusters, endpoints, provenance, and the
compiler's own record of which service/port/subset/rule built each cluster); nothing re-derives
Envoy config from YAML.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2

from meshlens.analyze.core import Context, short_list
from meshlens.compiler import CompileResult
from meshlens.compiler.clusters import BuiltCluster
from meshlens.compiler.names import parse_cluster_name
from meshlens.model.policy import Policy, mesh_overlay, port_level, subset_policy
from meshlens.model.registry import Workload
from meshlens.model.virtual_services import VirtualServiceView, index_virtual_services
from meshlens.resources import Resource
from meshlens.source import FieldPath

Cluster = cluster_pb2.Cluster
MAX_U32 = 4294967295
HEALTHY = (0, 1)  # UNKNOWN, HEALTHY: hosts Envoy load-balances to

NONE, AUTO, ISTIO, SIMPLE, MUTUAL = "plaintext", "auto mTLS", "ISTIO_MUTUAL", "SIMPLE", "MUTUAL"


def tls_state(c: cluster_pb2.Cluster) -> str:
    """What the cluster sends: plaintext, auto mTLS (per endpoint), Istio mTLS, or user TLS."""
    if c.transport_socket_matches:
        return AUTO
    ts = c.transport_socket
    if not c.HasField("transport_socket"):
        return NONE
    if ts.name == "envoy.transport_sockets.upstream_proxy_protocol":
        return NONE if not ts.typed_config.value else _inner_tls(ts)
    if ts.name != "envoy.transport_sockets.tls":
        return NONE
    ctx = tls_pb2.UpstreamTlsContext()
    ts.typed_config.Unpack(ctx)
    certs = [s.name for s in ctx.common_tls_context.tls_certificate_sds_secret_configs]
    if "default" in certs:
        return ISTIO
    return MUTUAL if certs else SIMPLE


def _inner_tls(ts: Any) -> str:
    from envoy.extensions.transport_sockets.proxy_protocol.v3 import upstream_proxy_protocol_pb2

    cfg = upstream_proxy_protocol_pb2.ProxyProtocolUpstreamTransport()
    ts.typed_config.Unpack(cfg)
    inner = Cluster(transport_socket=cfg.transport_socket)
    return tls_state(inner)


@dataclass(frozen=True, slots=True)
class Host:
    """One endpoint of a compiled cluster."""

    address: str
    port: int
    health: int
    tls_mode: str  # the envoy.transport_socket_match tlsMode metadata, "" when absent


class _ByIdentity:
    """Facts derived from a compile's lists, kept for the last few lists (by identity).

    Every analyzer walks every compiled proxy's clusters: what they all derive (which clusters
    are outbound, the EDS assignments by name, the hosts of an assignment) is derived once per
    list. An entry holds its list, so the list's id cannot be reused while the entry lives, and
    it is checked against the list's length (a compile's lists are final once returned).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: OrderedDict[int, tuple[list[Any], int, Any]] = OrderedDict()

    def get(self, owner: list[Any], build: Callable[[], Any]) -> Any:
        hit = self.items.get(id(owner))
        if hit is not None and hit[0] is owner and hit[1] == len(owner):
            return hit[2]
        value = build()
        self.items[id(owner)] = (owner, len(owner), value)
        if len(self.items) > self.size:
            self.items.popitem(last=False)
        return value


_OUTBOUND = _ByIdentity(256)
_CLAS = _ByIdentity(256)
#: id(ClusterLoadAssignment) -> (the assignment, its hosts); emptied by forget()
_HOSTS: dict[int, tuple[endpoint_pb2.ClusterLoadAssignment, tuple[Host, ...]]] = {}


def forget() -> None:
    """Drop the derived facts (the runner calls it when a run ends).

    Compiles held by a module past the run would be freed only at interpreter exit, which
    then costs seconds for a large mesh.
    """
    _OUTBOUND.items.clear()
    _CLAS.items.clear()
    _HOSTS.clear()


def cla_index(result: CompileResult) -> dict[str, endpoint_pb2.ClusterLoadAssignment]:
    """The compiled EDS assignments by cluster name (do not change it: it is shared)."""

    found: dict[str, endpoint_pb2.ClusterLoadAssignment] = _CLAS.get(
        result.endpoints, lambda: {e.cluster_name: e for e in result.endpoints})
    return found


def hosts(result: CompileResult, c: cluster_pb2.Cluster,
          index: dict[str, endpoint_pb2.ClusterLoadAssignment] | None = None) -> list[Host] | None:
    """The endpoints Envoy gets for ``c`` (EDS assignment or inline load_assignment).

    None for clusters without endpoints by design (ORIGINAL_DST, BlackHole). Pass ``index``
    (:func:`cla_index`) when looking up many clusters of one result.
    """
    if c.type == Cluster.EDS:
        name = c.eds_cluster_config.service_name or c.name
        if index is None:
            index = cla_index(result)
        cla = index.get(name)
        if cla is None:
            return []
        # EDS hosts are read once per assignment: the build cache shares an assignment between
        # the proxies of a run, so it is kept by identity (with the message, so the id stays
        # its own until forget()); inline ones are few (STATIC, STRICT_DNS).
        hit = _HOSTS.get(id(cla))
        if hit is None or hit[0] is not cla:
            hit = _HOSTS[id(cla)] = (cla, tuple(_hosts(cla)))
        return list(hit[1])
    elif c.HasField("load_assignment"):
        cla = c.load_assignment
    else:
        return None
    return list(_hosts(cla))


def _hosts(cla: endpoint_pb2.ClusterLoadAssignment) -> Iterator[Host]:
    for loc in cla.endpoints:
        for lb in loc.lb_endpoints:
            sa = lb.endpoint.address.socket_address
            fm = lb.metadata.filter_metadata
            mode = fm["envoy.transport_socket_match"].fields["tlsMode"].string_value \
                if "envoy.transport_socket_match" in fm else ""
            yield Host(sa.address, sa.port_value, lb.health_status, mode)


def assignment(result: CompileResult, c: cluster_pb2.Cluster,
               index: dict[str, endpoint_pb2.ClusterLoadAssignment] | None = None
               ) -> endpoint_pb2.ClusterLoadAssignment | None:
    """The EDS assignment of an EDS cluster, else None (see :func:`hosts`)."""
    if c.type != Cluster.EDS:
        return None
    return (index if index is not None else cla_index(result)).get(
        c.eds_cluster_config.service_name or c.name)


def first_time(seen: set[tuple[int, ...]], *parts: object) -> bool:
    """Whether these very objects come together for the first time in this loop.

    The build cache shares a cluster (and its assignment, drop records) between the proxies of
    a run; an analyzer whose hits for one of them are the same in every proxy reads it once.
    The compiles outlive the analyzer's loop, so the ids are not reused meanwhile.
    """
    key = tuple(map(id, parts))
    if key in seen:
        return False
    seen.add(key)
    return True


def outbound(result: CompileResult) -> Iterator[BuiltCluster]:
    """The outbound service clusters of a compile, with what built them."""
    found: list[BuiltCluster] = _OUTBOUND.get(result.built, lambda: [
        bc for bc in result.built if _is_outbound(bc)])
    return iter(found)


def _is_outbound(bc: BuiltCluster) -> bool:
    key = parse_cluster_name(bc.cluster.name)
    return key is not None and key.direction == "outbound" and bc.service is not None \
        and bc.port is not None


def effective_policy(ctx: Context, bc: BuiltCluster) -> Policy:
    """The merged traffic policy of a cluster, from the same model functions the compiler uses."""
    rule, port = bc.rule, bc.port
    assert port is not None
    pol, _ = port_level(rule.policy if rule else None, port.port)
    pol = mesh_overlay(ctx.mesh.mesh_config.default_traffic_policy, pol)
    if bc.subset and rule is not None:
        sub = rule.subset(bc.subset)
        pol = subset_policy(pol, sub.policy if sub else None, port.port)
    return pol


def workloads_by_ip(ctx: Context) -> dict[str, Workload]:
    out: dict[str, Workload] = ctx.memo("compiled.workloads_by_ip", lambda: {
        w.ip: w for w in ctx.mesh.registry.workloads})
    return out


def describe_clusters(names: list[str]) -> str:
    """A compact list of cluster names: a default cluster and its subsets on one line.

    Example:
        >>> describe_clusters(["outbound|80||h", "outbound|80|v1|h", "outbound|80|v2|h"])
        'outbound|80||h (and subsets v1, v2)'
        >>> describe_clusters(["outbound|80|v2|h"])
        'outbound|80|v2|h'
    """
    groups: dict[tuple[int, str], list[str]] = {}
    other: list[str] = []
    for n in sorted(set(names)):
        key = parse_cluster_name(n)
        if key is None:
            other.append(n)
            continue
        groups.setdefault((key.port, key.host), []).append(key.subset)
    parts: list[str] = []
    for (port, host), subsets in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        named = [s for s in subsets if s]
        if "" in subsets:
            tail = f" (and subset{'s' if len(named) > 1 else ''} {', '.join(named)})" if named \
                else ""
            parts.append(f"outbound|{port}||{host}{tail}")
        else:
            parts.extend(f"outbound|{port}|{s}|{host}" for s in named)
    return short_list(parts + other, 4)


def imported_virtual_services(ctx: Context, result: CompileResult) -> list[VirtualServiceView]:
    """The VirtualServices a proxy applies (its Sidecar scope's import, else the mesh index)."""
    vss = getattr(result.scope, "virtual_services", None)
    if isinstance(vss, list):
        return vss
    index = ctx.memo("compiled.vs_index", lambda: index_virtual_services(
        ctx.resources, ctx.mesh.mesh_config))
    found: list[VirtualServiceView] = index.for_namespace(result.proxy.namespace)
    return found


def value_at(res: Resource, path: FieldPath) -> Any:
    """The YAML value at ``path`` in a resource, or None."""
    node: Any = res.body
    for part in path:
        if isinstance(part, int) and isinstance(node, list) and 0 <= part < len(node):
            node = node[part]
        elif isinstance(part, str) and isinstance(node, dict):
            node = node.get(part)
        else:
            return None
    return node
