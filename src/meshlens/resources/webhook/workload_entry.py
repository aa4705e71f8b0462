"""WorkloadEntry (``ValidateWorkloadEntry``), whose checks a ServiceEntry's endpoints share.

Layer: L2 (package meshlens.resources.webhook). Imports: source.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshlens.resources.webhook.core import Collector, as_int, as_obj, as_str, quote
from meshlens.resources.webhook.fields import (
    is_ip, validate_port, validate_port_name, validate_unix_address,
)
from meshlens.resources.webhook.names import validate_fqdn, validate_labels
from meshlens.source import FieldPath


def validate(v: Collector, spec: dict[str, Any], labels: Mapping[str, str]) -> None:
    """ValidateWorkloadEntry: the address may be an FQDN; there is no ServiceEntry port list."""
    validate_workload_entry(v, ("spec",), spec, None, allow_fqdn=True)


def validate_workload_entry(
    v: Collector, path: FieldPath, we: dict[str, Any], service_ports: set[str] | None, *,
    allow_fqdn: bool,
) -> None:
    """ValidateWorkloadEntry, and a STATIC ServiceEntry's endpoints (``service_ports`` then
    names the ServiceEntry's ports and ``allow_fqdn`` is False)."""
    addr, network = as_str(we.get("address")), as_str(we.get("network"))
    if not addr:
        if not network:
            v.err(path, "address is required")
            return
        v.warn(path, f"address is unset with network {quote(network)}")
    ports = as_obj(we.get("ports")) or {}
    unix = addr.startswith("unix://")
    if unix:
        v.err(path + ("address",), validate_unix_address(addr[len("unix://") :]))
        if ports:
            v.err(path + ("ports",), f"unix endpoint {addr} must not include ports")
    elif addr and not is_ip(addr):
        if not allow_fqdn:
            v.err(path + ("address",), f"endpoint address {quote(addr)} is not a valid IP address")
        elif validate_fqdn(addr):
            v.err(
                path + ("address",),
                f"endpoint address {quote(addr)} is not a valid FQDN or an IP address",
            )
    endpoint_ports(v, path + ("ports",), ports, service_ports)
    v.errs(path + ("labels",), validate_labels(as_obj(we.get("labels")) or {}))
    if unix and service_ports is not None and len(service_ports) != 1:
        v.err(path, "exactly 1 service port required for unix endpoints")


def endpoint_ports(
    v: Collector, path: FieldPath, ports: Mapping[str, Any], service_ports: set[str] | None
) -> None:
    """An endpoint's named ports: valid names and numbers, each a port of the ServiceEntry."""
    for name, port in ports.items():
        number = as_int(port)
        if service_ports is not None and name not in service_ports:
            v.err(path + (name,), f"endpoint port {number} is not defined by the service entry")
        v.err(path + (name,), validate_port_name(str(name)))
        v.err(path + (name,), validate_port(number))
