"""ServiceEntry: ``ValidateServiceEntry`` (pkg/config/validation/validation.go).

Layer: L2 (package meshlens.resources.webhook). Imports: source.

The checks common to every resolution (hosts, addresses, ports) come first, then the ones of
the entry's resolution (:data:`_BY_RESOLUTION`), as istiod's ``switch`` runs them. A STATIC
entry's endpoints are checked as WorkloadEntries (:mod:`.workload_entry`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from meshlens.resources.webhook.core import Collector, as_int, as_list, as_obj, as_str, has, quote
from meshlens.resources.webhook.fields import (
    alpha_selector, is_http, is_ip, is_tls, protocol, validate_export_to, validate_ip_subnet,
    validate_port, validate_port_name, validate_protocol,
)
from meshlens.resources.webhook.names import (
    validate_fqdn, validate_labels, validate_wildcard_domain,
)
from meshlens.resources.webhook.workload_entry import endpoint_ports, validate_workload_entry
from meshlens.source import FieldPath

_SP: FieldPath = ("spec",)


@dataclass(frozen=True, slots=True)
class _Entry:
    """What the per-resolution checks read of one ServiceEntry."""

    spec: dict[str, Any]
    labels: Mapping[str, str]
    resolution: str
    hosts: list[str]
    addresses: list[str]
    endpoints: list[Any]
    port_names: set[str]

    def ports(self) -> Iterator[tuple[int, str]]:
        """(index, canonical protocol) of each non-null port."""
        for i, entry in enumerate(as_list(self.spec.get("ports"))):
            port = as_obj(entry)
            if port is not None:
                yield i, protocol(as_str(port.get("protocol")))


def validate(v: Collector, spec: dict[str, Any], labels: Mapping[str, str]) -> None:
    """ValidateServiceEntry."""
    if not alpha_selector(
        v, _SP + ("workloadSelector",), spec.get("workloadSelector"), "service entry"
    ):
        return
    resolution = as_str(spec.get("resolution")) or "NONE"
    hosts = [as_str(h) for h in as_list(spec.get("hosts"))]
    addresses = [as_str(a) for a in as_list(spec.get("addresses"))]
    if has(spec, "workloadSelector") and spec.get("endpoints") is not None:
        v.err(_SP, "only one of WorkloadSelector or Endpoints is allowed in Service Entry")
    _validate_hosts(v, hosts, resolution)
    _validate_addresses(v, addresses, resolution)
    auto_allocate = (
        resolution != "NONE"
        and not addresses
        and labels.get("networking.istio.io/enable-autoallocate-ip", "").lower() != "false"
    )
    names = _validate_ports(v, spec, warn_tcp=not addresses and not auto_allocate)
    entry = _Entry(spec, labels, resolution, hosts, addresses, as_list(spec.get("endpoints")),
                   names)
    check = _BY_RESOLUTION.get(resolution)
    if check is not None:
        check(v, entry)
    if resolution != "NONE" and len(hosts) > 1:
        for i, proto in entry.ports():
            if not is_http(proto) and not is_tls(proto):
                v.err(_SP + ("ports", i), "multiple hosts provided with non-HTTP, non-TLS ports")
                break
    validate_export_to(v, spec, service_entry=True)


def _validate_hosts(v: Collector, hosts: list[str], resolution: str) -> None:
    if not hosts:
        v.err(_SP + ("hosts",), "service entry must have at least one host")
    for i, host in enumerate(hosts):
        if host == "*":
            v.err(_SP + ("hosts", i), f"invalid host {host}")
            continue
        v.err(_SP + ("hosts", i), validate_wildcard_domain(host))
        partial = "*" in host and len(host) != 1 and not host.startswith("*.")
        if resolution != "DYNAMIC_DNS" and partial:
            v.warn(_SP + ("hosts", i), f"partial wildcard {quote(host)} not allowed")


def _validate_addresses(v: Collector, addresses: list[str], resolution: str) -> None:
    for i, address in enumerate(addresses):
        v.err(_SP + ("addresses", i), validate_ip_subnet(address))
    if any("/" in a for a in addresses) and resolution not in ("NONE", "STATIC"):
        v.err(
            _SP + ("addresses",),
            "CIDR addresses are allowed only for NONE/STATIC resolution types",
        )


def _validate_ports(v: Collector, spec: dict[str, Any], *, warn_tcp: bool) -> set[str]:
    """Unique names and numbers, valid target ports and protocols; returns the port names."""
    numbers: set[int] = set()
    names: set[str] = set()
    for pp, port in v.entries(_SP + ("ports",), spec.get("ports"),
                              "service entry port may not be null"):
        name, number = as_str(port.get("name")), as_int(port.get("number"))
        proto = as_str(port.get("protocol"))
        if name in names:
            v.err(pp + ("name",), f"service entry port name {quote(name)} already defined")
        if number in numbers:
            v.err(pp + ("number",), f"service entry port {number} already defined")
        names.add(name)
        numbers.add(number)
        if as_int(port.get("targetPort")) != 0:
            v.err(pp + ("targetPort",), validate_port(as_int(port.get("targetPort"))))
        if warn_tcp and proto in ("", "TCP"):
            v.warn(
                pp,
                "addresses are required for ports serving TCP (or unset) protocol when IP "
                "Autoallocation is not enabled",
            )
        v.err(pp + ("name",), validate_port_name(name))
        v.err(pp + ("protocol",), validate_protocol(proto))
        v.err(pp + ("number",), validate_port(number))
    return names


def _resolution_none(v: Collector, e: _Entry) -> None:
    if e.endpoints:
        v.err(_SP + ("endpoints",), "no endpoints should be provided for resolution type none")
    if has(e.spec, "workloadSelector"):
        v.warn(
            _SP + ("workloadSelector",),
            "workloadSelector should not be set when resolution mode is NONE",
        )


def _resolution_static(v: Collector, e: _Entry) -> None:
    for p, ep in v.entries(_SP + ("endpoints",), e.endpoints, "endpoint cannot be nil"):
        validate_workload_entry(v, p, ep, e.port_names, allow_fqdn=False)


#: Protocols that make a DNS entry with addresses and several hosts ambiguous (one VIP:port).
_TCP_LIKE = ("TCP", "HTTPS", "TLS", "Mongo", "Redis", "MySQL")


def _resolution_dns(v: Collector, e: _Entry) -> None:
    if not e.endpoints:
        for i, host in enumerate(e.hosts):
            error = validate_fqdn(host)
            if error:
                v.err(
                    _SP + ("hosts", i),
                    "hosts must be FQDN or contain only prefix wildcards if no endpoints are "
                    f"provided for resolution mode {e.resolution}, {error}",
                )
                break
    if e.resolution == "DNS_ROUND_ROBIN" and len(e.endpoints) > 1:
        v.err(
            _SP + ("endpoints",),
            f"there must only be 0 or 1 endpoint for resolution mode {e.resolution}",
        )
    for p, ep in v.entries(_SP + ("endpoints",), e.endpoints, "endpoint cannot be nil"):
        addr = as_str(ep.get("address"))
        if not is_ip(addr) and validate_fqdn(addr):
            v.err(
                p + ("address",),
                f"endpoint address {quote(addr)} is not a valid FQDN or an IP address",
            )
        v.errs(p + ("labels",), validate_labels(as_obj(ep.get("labels")) or {}))
        endpoint_ports(v, p + ("ports",), as_obj(ep.get("ports")) or {}, e.port_names)
    if e.addresses and len(e.hosts) > 1:
        for i, proto in e.ports():
            if proto in _TCP_LIKE:
                v.warn(
                    _SP + ("ports", i),
                    "service entry can not have more than one host specified simultaneously "
                    "with address and tcp port",
                )
                break


def _resolution_dynamic_dns(v: Collector, e: _Entry) -> None:
    mode = e.resolution
    for i, host in enumerate(e.hosts):
        if not host.startswith("*"):
            v.err(_SP + ("hosts", i), f"host must be wildcarded for resolution mode {mode}")
    if e.addresses:
        v.err(
            _SP + ("addresses",),
            f"addresses cannot be set for resolution type {mode}. HTTP route domains will only "
            "be generatedfrom the hosts field values",
        )
    if e.endpoints:
        v.err(
            _SP + ("endpoints",),
            f"endpoints cannot be set for resolution type {mode}. Destination IP address "
            "determined from hostsfield values",
        )
    for i, proto in e.ports():
        if proto not in ("HTTP", "TLS", "GRPC", "HTTP2"):
            v.err(
                _SP + ("ports", i, "protocol"),
                f"only HTTP, TLS, GRPC, and HTTP2 protocols are supported for resolution type "
                f"{mode}",
            )
    waypoint = e.labels.get("istio.io/use-waypoint", "")
    if e.spec.get("location") == "MESH_INTERNAL" and waypoint and waypoint.lower() != "none":
        v.err(
            _SP + ("location",),
            f"location MESH_INTERNAL with resolution type {mode} is not supported when using "
            "waypoints",
        )


#: resolution → its own checks (istiod's ``switch serviceEntry.Resolution``).
_BY_RESOLUTION: dict[str, Callable[[Collector, _Entry], None]] = {
    "NONE": _resolution_none,
    "STATIC": _resolution_static,
    "DNS": _resolution_dns,
    "DNS_ROUND_ROBIN": _resolution_dns,
    "DYNAMIC_DNS": _resolution_dynamic_dns,
}
