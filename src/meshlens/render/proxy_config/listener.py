"""``proxy-config listener``: istioctl's listener table (``configdump/listener.go``).

Layer: L6. Imports: dump, errors, render.proxy_config.

Padding 1. Verbose (the default): one row per filter chain, ``ADDRESSES PORT MATCH DESTINATION``,
chains sorted by DESTINATION descending and listeners by (port, address, type), all with Go's
unstable sort. ``--verbose=false``: one row per listener with its TYPE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from envoy.config.route.v3 import route_components_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from google.protobuf.message import DecodeError

from meshlens.dump import ConfigDump, listeners_of
from meshlens.errors import DumpError
from meshlens.render.proxy_config.common import check_format, message_list_output
from meshlens.render.proxy_config.gosort import go_sort_slice
from meshlens.render.proxy_config.route import describe_match
from meshlens.render.proxy_config.table import render_table

HTTP_LISTENER = "envoy.filters.network.http_connection_manager"
TCP_LISTENER = "envoy.filters.network.tcp_proxy"
BLACKHOLE = b"BlackHoleCluster"

# Label → ALPN list, checked for exact equality (listener.go protDescrs). The lists are all
# different, so Go's random map order cannot change the result.
_ALPN_LABELS = (
    ("App: HTTP TLS", ["http/1.0", "http/1.1", "h2c", "istio-http/1.0", "istio-http/1.1",
                       "istio-h2"]),
    ("App: Istio HTTP Plain", ["istio", "istio-http/1.0", "istio-http/1.1", "istio-h2"]),
    ("App: TCP TLS", ["istio-peer-exchange", "istio"]),
    ("App: HTTP", ["http/1.0", "http/1.1", "h2c"]),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ListenerFilter:
    """istioctl's ``ListenerFilter``."""

    address: str = ""
    port: int = 0
    type: str = ""
    verbose: bool = True

    def verify(self, lst: Any) -> bool:
        if not (self.address or self.port or self.type):
            return True
        if self.address:
            addresses = additional_addresses(lst) + [listener_address(lst)]
            if not any(a.lower() == self.address.lower() for a in addresses):
                return False
        if self.port and listener_port(lst) != self.port:
            return False
        return not (self.type and listener_type(lst).lower() != self.type.lower())


def sorted_listeners(dump: ConfigDump) -> list[Any]:
    """Listeners in dump order (dynamic active, then static).

    Raises:
        DumpError: no ListenersConfigDump section, or no listeners in it.
    """
    if dump.listeners is None:
        raise DumpError("listener dump: config dump has no configuration type "
                        "type.googleapis.com/envoy.admin.v3.ListenersConfigDump")
    listeners = listeners_of(dump.listeners)
    if not listeners:
        raise DumpError("no listeners found")
    return listeners


def filter_chains(lst: Any) -> list[Any]:
    chains = list(lst.filter_chains)
    if lst.HasField("default_filter_chain"):
        chains.append(lst.default_filter_chain)
    return chains


def listener_address(lst: Any) -> str:
    which = lst.address.WhichOneof("address")
    if which == "socket_address":
        return str(lst.address.socket_address.address)
    if which == "pipe":
        return str(lst.address.pipe.path)
    return ""


def additional_addresses(lst: Any) -> list[str]:
    return [a.address.socket_address.address for a in lst.additional_addresses]


def listener_port(lst: Any) -> int:
    return int(lst.address.socket_address.port_value)


def listener_type(lst: Any) -> str:
    """HTTP, TCP, HTTP+TCP or UNKNOWN (a BlackHole tcp_proxy does not count)."""
    n_http = n_tcp = 0
    for chain in filter_chains(lst):
        for f in chain.filters:
            if f.name == HTTP_LISTENER:
                n_http += 1
            elif f.name == TCP_LISTENER and BLACKHOLE not in f.typed_config.value:
                n_tcp += 1
    if n_http > 0:
        return "HTTP" if n_tcp == 0 else "HTTP+TCP"
    return "TCP" if n_tcp > 0 else "UNKNOWN"


def describe_chain_match(m: Any | None) -> str:
    """The MATCH cell from a ``FilterChainMatch`` (``getMatches``)."""
    descrs = []
    if m is not None:
        if m.server_names:
            descrs.append("SNI: " + ",".join(m.server_names))
        if m.transport_protocol:
            descrs.append("Trans: " + m.transport_protocol)
        if m.application_protocols:
            alpn = list(m.application_protocols)
            label = next((lbl for lbl, protos in _ALPN_LABELS if protos == alpn), None)
            descrs.append(label or "App: " + ",".join(alpn))
        port = f":{m.destination_port.value}" if m.HasField("destination_port") else ""
        if m.prefix_ranges:
            ranges = ",".join(f"{p.address_prefix}/{p.prefix_len.value}" for p in m.prefix_ranges)
            descrs.append(f"Addr: {ranges}{port}")
        elif port:
            descrs.append(f"Addr: *{port}")
    return "; ".join(descrs) if descrs else "ALL"


def describe_destination(filters: Any) -> str:
    """The DESTINATION cell (``getFilterType``): the first HCM or non-BlackHole tcp_proxy."""
    for f in filters:
        if f.name == HTTP_LISTENER:
            hcm = hcm_pb2.HttpConnectionManager()
            try:
                hcm.ParseFromString(f.typed_config.value)
            except DecodeError as exc:
                return str(exc)
            if hcm.HasField("route_config"):
                return _describe_route_config(hcm.route_config)
            if hcm.rds.route_config_name:
                return f"Route: {hcm.rds.route_config_name}"
            return "HTTP"
        if f.name == TCP_LISTENER and BLACKHOLE not in f.typed_config.value:
            tcp = tcp_proxy_pb2.TcpProxy()
            try:
                tcp.ParseFromString(f.typed_config.value)
            except DecodeError as exc:
                return str(exc)
            if "Cluster" in tcp.cluster:
                return str(tcp.cluster)
            return f"Cluster: {tcp.cluster}"
    return "Non-HTTP/Non-TCP"


def _describe_route_config(rc: Any) -> str:
    cluster = _match_all_cluster(rc)
    if cluster:
        return cluster
    vhosts = []
    for vh in rc.virtual_hosts:
        domains = "" if list(vh.domains) == ["*"] else "/".join(vh.domains)
        routes = ", ".join(describe_match(r.match if r.HasField("match") else None)
                           for r in vh.routes)
        vhosts.append(routes if not domains else f"{domains} {routes}")
    return "Inline Route: " + "; ".join(vhosts)


def _match_all_cluster(rc: Any) -> str:
    if len(rc.virtual_hosts) != 1:
        return ""
    vh = rc.virtual_hosts[0]
    if list(vh.domains) != ["*"] or len(vh.routes) != 1:
        return ""
    r: route_components_pb2.Route = vh.routes[0]
    if r.match.WhichOneof("path_specifier") != "prefix" or r.match.prefix != "/":
        return ""
    if r.WhichOneof("action") != "route" or r.route.WhichOneof("cluster_specifier") != "cluster":
        return ""
    name = r.route.cluster
    return name if "Cluster" in name else f"Cluster: {name}"


def render_listeners(dump: ConfigDump, *, filter: ListenerFilter = ListenerFilter(),  # noqa: A002
                     output: str = "short", with_names: bool = False) -> str:
    """Render ``proxy-config listener``."""
    check_format(output)
    listeners = sorted_listeners(dump)
    verified = [lst for lst in listeners if filter.verify(lst)]
    if output != "short":
        return message_list_output(verified, output)  # dump order, not sorted

    keyed = [(listener_port(lst), listener_address(lst), listener_type(lst), lst)
             for lst in verified]

    def less(a: tuple[int, str, str, Any], b: tuple[int, str, str, Any]) -> bool:
        if a[0] != b[0]:
            return a[0] < b[0]
        if a[1] != b[1]:
            return a[1] < b[1]
        return a[2] < b[2]

    header = ["ADDRESSES", "PORT"] + (["MATCH", "DESTINATION"] if filter.verbose else ["TYPE"])
    if with_names:
        header.insert(0, "NAME")
    rows = [header]
    for port, address, ltype, lst in go_sort_slice(keyed, less):
        addresses = ",".join([address] + additional_addresses(lst))
        prefix = [f"listener/{lst.name}"] if with_names else []
        if filter.verbose:
            chains = [(describe_chain_match(fc.filter_chain_match
                                            if fc.HasField("filter_chain_match") else None),
                       describe_destination(fc.filters)) for fc in filter_chains(lst)]
            for match, dest in go_sort_slice(chains, lambda a, b: a[1] > b[1]):
                rows.append(prefix + [addresses, str(port), match, dest])
        else:
            rows.append(prefix + [addresses, str(port), ltype])
    return render_table(rows, padding=1)
