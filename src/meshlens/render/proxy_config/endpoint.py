"""``proxy-config endpoint`` and ``eds``: istioctl's two endpoint writers.

Layer: L6. Imports: dump, render.proxy_config.

* :func:`render_endpoints` is the ``/clusters?format=json`` writer
  (``writer/envoy/clusters/clusters.go``): ``ENDPOINT  STATUS  OUTLIER CHECK  CLUSTER``, one row
  per host, ``unix://`` for pipes, the port left out when it is 0, sorted by (address, port,
  cluster).
* :func:`render_eds` is the config-dump EDS writer (``configdump/endpoint.go``), also the
  ENDPOINTS section of ``proxy-config all``: ``NAME  STATUS  LOCALITY  CLUSTER``, addresses always
  ``ip:port``, raw pipe paths, ClusterLoadAssignments sorted by subset key, and ``--address``
  matching the rendered ``ip:port`` strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from envoy.admin.v3 import clusters_pb2
from envoy.config.core.v3 import health_check_pb2

from meshlens.dump import ConfigDump, endpoints_of
from meshlens.render.proxy_config.common import (
    check_format,
    message_list_output,
    sort_key_of,
    subset_key_less,
)
from meshlens.render.proxy_config.gosort import go_sort_slice
from meshlens.render.proxy_config.ports import PortLayers
from meshlens.render.proxy_config.table import render_table

_HEALTH = {v: k for k, v in health_check_pb2.HealthStatus.items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointFilter:
    """istioctl's ``EndpointFilter`` (the same fields for both writers, different matching)."""

    address: str = ""
    port: int = 0
    cluster: str = ""
    status: str = ""

    def empty(self) -> bool:
        return not (self.address or self.port or self.cluster or self.status)


def _fold_eq(a: str, b: str) -> bool:
    # strings.EqualFold
    return a.lower() == b.lower() or a.casefold() == b.casefold()


# --- the /clusters writer ------------------------------------------------------------------


def _host_address(host: Any) -> str:
    addr = host.address
    which = addr.WhichOneof("address")
    if which == "socket_address":
        return str(addr.socket_address.address)
    if which == "pipe":
        return "unix://" + str(addr.pipe.path)
    if which == "envoy_internal_address" and addr.envoy_internal_address.WhichOneof(
            "address_name_specifier") == "server_listener_name":
        internal = addr.envoy_internal_address
        return f"envoy://{internal.server_listener_name}/{internal.endpoint_id}"
    return "unknown"


def _host_port(host: Any) -> int:
    addr = host.address
    if addr.WhichOneof("address") != "socket_address":
        return 0
    return int(addr.socket_address.port_value)


def _verify_host(f: EndpointFilter, host: Any, cluster: str) -> bool:
    if f.empty():
        return True
    if f.address and not _fold_eq(_host_address(host), f.address):
        return False
    if f.port and _host_port(host) != f.port:
        return False
    if f.cluster and not _fold_eq(cluster, f.cluster):
        return False
    status = _HEALTH.get(host.health_status.eds_health_status, "")
    return not (f.status and not _fold_eq(status, f.status))


def render_endpoints(clusters: clusters_pb2.Clusters, *,
                     filter: EndpointFilter = EndpointFilter(),  # noqa: A002
                     output: str = "short", ports: PortLayers | None = None) -> str:
    """Render ``proxy-config endpoint`` from ``/clusters?format=json``."""
    check_format(output)
    if output != "short":
        chosen = [cs for cs in clusters.cluster_statuses
                  if any(_verify_host(filter, h, cs.name) for h in cs.host_statuses)]
        return message_list_output(chosen, output)
    rows: list[tuple[str, int, str, int, bool]] = []
    for cs in clusters.cluster_statuses:
        for host in cs.host_statuses:
            if _verify_host(filter, host, cs.name):
                rows.append((_host_address(host), _host_port(host), cs.name,
                             host.health_status.eds_health_status,
                             host.health_status.failed_outlier_check))

    def less(a: tuple[str, int, str, int, bool], b: tuple[str, int, str, int, bool]) -> bool:
        if a[0] == b[0]:
            if a[1] == b[1]:
                return a[2] < b[2]
            return a[1] < b[1]
        return a[0] < b[0]

    header = ["ENDPOINT", "STATUS", "OUTLIER CHECK", "CLUSTER"]
    if ports is not None:
        header += list(ports.header)
    table = [header]
    for address, port, cluster, status, failed in go_sort_slice(rows, less):
        row = [f"{address}:{port}" if port else address, _HEALTH.get(status, ""),
               "FAILED" if failed else "OK", cluster]
        if ports is not None:
            row += list(ports.for_endpoint(cluster, port))
        table.append(row)
    return render_table(table, padding=5)


# --- the config-dump EDS writer ------------------------------------------------------------


def _endpoint_addresses(lb: Any) -> list[str]:
    addrs = [lb.endpoint.address] + [a.address for a in lb.endpoint.additional_addresses]
    out = []
    for addr in addrs:
        which = addr.WhichOneof("address")
        if which == "socket_address":
            out.append(f"{addr.socket_address.address}:{addr.socket_address.port_value}")
        elif which == "pipe":
            out.append(addr.pipe.path)
        elif which == "envoy_internal_address" and addr.envoy_internal_address.WhichOneof(
                "address_name_specifier") == "server_listener_name":
            internal = addr.envoy_internal_address
            out.append(f"envoy://{internal.server_listener_name}/{internal.endpoint_id}")
        else:
            out.append("unknown")
    return out


def _verify_lb(f: EndpointFilter, lb: Any, cluster: str) -> bool:
    if f.empty():
        return True
    if f.address and not any(_fold_eq(a, f.address) for a in _endpoint_addresses(lb)):
        return False
    if f.port and lb.endpoint.address.socket_address.port_value != f.port:
        return False
    if f.cluster and not _fold_eq(cluster, f.cluster):
        return False
    return not (f.status and not _fold_eq(_HEALTH.get(lb.health_status, ""), f.status))


def sorted_load_assignments(dump: ConfigDump, f: EndpointFilter) -> list[Any]:
    """istioctl's ``retrieveSortedEndpointsSlice``: filtered, emptied CLAs dropped, sorted."""
    out = []
    for cla in endpoints_of(dump.endpoints):
        count = 0
        for loc in cla.endpoints:
            kept = [lb for lb in loc.lb_endpoints if _verify_lb(f, lb, cla.cluster_name)]
            if len(kept) != len(loc.lb_endpoints):
                copies = [type(lb)() for lb in kept]
                for c, lb in zip(copies, kept, strict=True):
                    c.CopyFrom(lb)
                del loc.lb_endpoints[:]
                loc.lb_endpoints.extend(copies)
            count += len(loc.lb_endpoints)
        if count:
            out.append(cla)
    keyed = [(sort_key_of(c.cluster_name), c) for c in out]
    return [c for _, c in go_sort_slice(keyed, lambda a, b: subset_key_less(a[0], b[0]))]


def _locality(loc: Any) -> str:
    if not loc.HasField("locality"):
        return ""
    lo = loc.locality
    out = str(lo.region)
    if not lo.zone:
        return out
    out += "/" + str(lo.zone)
    if not lo.sub_zone:
        return out
    return out + "/" + str(lo.sub_zone)


def render_eds(dump: ConfigDump, *, filter: EndpointFilter = EndpointFilter(),  # noqa: A002
               output: str = "short", with_names: bool = False,
               ports: PortLayers | None = None) -> str:
    """Render ``proxy-config eds`` (and the ENDPOINTS section of ``all``)."""
    check_format(output)
    clas = sorted_load_assignments(dump, filter)
    if output != "short":
        return message_list_output(clas, output)
    header = ["NAME", "STATUS", "LOCALITY", "CLUSTER"]
    if ports is not None:
        header += list(ports.header)
    rows = [header]
    for cla in clas:
        for loc in cla.endpoints:
            for lb in loc.lb_endpoints:
                addr = ",".join(_endpoint_addresses(lb))
                if with_names:
                    addr = "endpoint/" + addr
                row = [addr, _HEALTH.get(lb.health_status, str(lb.health_status)),
                       _locality(loc), cla.cluster_name]
                if ports is not None:
                    row += list(ports.for_endpoint(
                        cla.cluster_name, lb.endpoint.address.socket_address.port_value))
                rows.append(row)
    return render_table(rows, padding=5)
