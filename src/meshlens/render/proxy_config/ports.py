"""meshlens's ``--explain-ports``: the four port layers behind each cluster or endpoint row.

Layer: L6. Imports: dump, render.proxy_config.common.

A request's port changes meaning on its way through a sidecar:

1. CAPTURE: iptables sends outbound traffic to the ``virtualOutbound`` listener (15001) and
   inbound traffic to ``virtualInbound`` (15006);
2. LISTENER: the listener (or virtualInbound filter chain) that leads to the cluster, directly
   (``tcp_proxy``) or through its route configuration;
3. SERVICE PORT: the Service port, the number in an outbound cluster's name;
4. TARGET PORT: the port on the endpoints (the Service's targetPort); an inbound cluster's name
   carries it.

Only what the dump contains is shown: without listeners (meshlens compiles clusters and
endpoints today) layers 1 and 2 are ``-``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from google.protobuf.message import DecodeError

from meshlens.dump import ConfigDump, clusters_of, endpoints_of, listeners_of, routes_of
from meshlens.render.proxy_config.common import parse_subset_key

HCM = "envoy.filters.network.http_connection_manager"
TCP_PROXY = "envoy.filters.network.tcp_proxy"


@dataclass(frozen=True, slots=True)
class PortLayers:
    """The port layers of every cluster in one dump; see :func:`build_port_layers`."""

    capture_outbound: str = "-"
    capture_inbound: str = "-"
    listeners: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    targets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    header: tuple[str, ...] = ("CAPTURE", "LISTENER", "SERVICE PORT", "TARGET PORT")

    def for_cluster(self, name: str) -> tuple[str, str, str, str]:
        service, target = _ports_from_name(name)
        if target == "-":
            target = ",".join(self.targets.get(name, ())) or "-"
        return (self._capture(name), ",".join(self.listeners.get(name, ())) or "-", service, target)

    def for_endpoint(self, cluster: str, port: int) -> tuple[str, str, str, str]:
        service, _ = _ports_from_name(cluster)
        return (self._capture(cluster), ",".join(self.listeners.get(cluster, ())) or "-", service,
                str(port) if port else "-")

    def _capture(self, name: str) -> str:
        if "|" not in name:
            return "-"
        if parse_subset_key(name).direction == "inbound":
            return self.capture_inbound
        return self.capture_outbound


def _ports_from_name(name: str) -> tuple[str, str]:
    """(service port, target port) that the cluster name itself tells."""
    if len(name.split("|")) <= 3:
        return "-", "-"
    key = parse_subset_key(name)
    if key.direction == "inbound":  # inbound|TARGETPORT|| (listener_inbound.go)
        return "-", str(key.port)
    return (str(key.port) if key.port else "-"), "-"


def build_port_layers(dump: ConfigDump) -> PortLayers:
    """Index which listeners lead to which cluster, and the endpoint ports of each cluster."""
    listeners = listeners_of(dump.listeners)
    routes = {r.name: r for r in routes_of(dump.routes)}
    leads: dict[str, list[str]] = {}
    capture_out = capture_in = "-"
    for lst in listeners:
        port = lst.address.socket_address.port_value
        if lst.name == "virtualOutbound":
            capture_out = str(port)
        elif lst.name == "virtualInbound":
            capture_in = str(port)
        label = lst.name or f"{lst.address.socket_address.address}:{port}"
        chains = list(lst.filter_chains)
        if lst.HasField("default_filter_chain"):
            chains.append(lst.default_filter_chain)
        for chain in chains:
            for cluster in _chain_clusters(chain, routes):
                names = leads.setdefault(cluster, [])
                if label not in names:
                    names.append(label)
    return PortLayers(capture_outbound=capture_out, capture_inbound=capture_in,
                      listeners={k: tuple(v) for k, v in leads.items()},
                      targets=_endpoint_ports(dump))


def _chain_clusters(chain: Any, routes: Mapping[str, Any]) -> Iterable[str]:
    for f in chain.filters:
        if f.name == HCM:
            hcm = hcm_pb2.HttpConnectionManager()
            try:
                hcm.ParseFromString(f.typed_config.value)
            except DecodeError:
                continue
            if hcm.HasField("route_config"):
                yield from _route_clusters(hcm.route_config)
            elif hcm.rds.route_config_name in routes:
                yield from _route_clusters(routes[hcm.rds.route_config_name])
        elif f.name == TCP_PROXY:
            tcp = tcp_proxy_pb2.TcpProxy()
            try:
                tcp.ParseFromString(f.typed_config.value)
            except DecodeError:
                continue
            if tcp.cluster:
                yield tcp.cluster
            yield from (w.name for w in tcp.weighted_clusters.clusters)


def _route_clusters(route_config: Any) -> Iterable[str]:
    for vh in route_config.virtual_hosts:
        for r in vh.routes:
            if r.WhichOneof("action") != "route":
                continue
            if r.route.cluster:
                yield r.route.cluster
            yield from (w.name for w in r.route.weighted_clusters.clusters)


def _endpoint_ports(dump: ConfigDump) -> dict[str, tuple[str, ...]]:
    clas = {cla.cluster_name: cla for cla in endpoints_of(dump.endpoints)}
    out: dict[str, tuple[str, ...]] = {}
    for c in clusters_of(dump.clusters):
        if c.type == cluster_pb2.Cluster.EDS and c.WhichOneof("cluster_discovery_type") == "type":
            cla = clas.get(c.eds_cluster_config.service_name or c.name)
        else:
            cla = c.load_assignment if c.HasField("load_assignment") else None
        if cla is None:
            continue
        ports = sorted({lb.endpoint.address.socket_address.port_value
                        for loc in cla.endpoints for lb in loc.lb_endpoints
                        if lb.endpoint.address.HasField("socket_address")})
        if ports:
            out[c.name] = tuple(str(p) for p in ports)
    return out
