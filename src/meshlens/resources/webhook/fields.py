"""Field checks shared by several kinds: IP addresses and CIDRs, ports and port names,
protocols, unix socket paths, percentages, ``exportTo``, workload selectors and destinations.

Layer: L2 (package meshlens.resources.webhook). Imports: source.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from meshlens.resources.webhook.core import (
    Collector, as_int, as_list, as_num, as_obj, as_str, field_check, go_float, quote,
)
from meshlens.resources.webhook.names import (
    is_label, validate_subset_name, validate_wildcard_domain,
)
from meshlens.source import FieldPath


def ip_address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address ``value`` spells (net.ParseIP), or None."""
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def is_ip(value: str) -> bool:
    return ip_address(value) is not None


def validate_ip(value: str) -> str | None:
    return None if is_ip(value) else f"{value} is not a valid IP"


def validate_ip_subnet(subnet: str) -> str | None:
    if subnet.count("/") == 1:
        try:
            if "%" in subnet:
                raise ValueError(subnet)
            ipaddress.ip_network(subnet, strict=False)
        except ValueError:
            return f"{subnet} is not a valid CIDR block"
        return None
    return validate_ip(subnet)


def validate_port(port: int) -> str | None:
    return None if 1 <= port <= 65535 else f"port number {port} must be in the range 1..65535"


def validate_port_name(name: str) -> str | None:
    return None if is_label(name) else f"invalid port name: {name}"


_PROTOCOLS = {
    p.lower(): p
    for p in ("TCP", "UDP", "GRPC", "GRPC-Web", "HTTP", "HTTP_PROXY", "HTTP2", "HTTPS", "TLS",
              "Mongo", "Redis", "MySQL")
}


def protocol(name: str) -> str:
    """protocol.Parse: the canonical protocol, or "" when istiod does not know it."""
    return _PROTOCOLS.get(name.lower(), "")


def is_http(proto: str) -> bool:
    return proto in ("HTTP", "HTTP2", "HTTP_PROXY", "GRPC", "GRPC-Web")


def is_tls(proto: str) -> bool:
    return proto in ("HTTPS", "TLS")


def validate_protocol(name: str) -> str | None:
    return None if not name or protocol(name) else f"unsupported protocol: {name}"


def validate_unix_address(addr: str) -> str | None:
    if not addr:
        return "unix address must not be empty"
    if addr.startswith("@"):
        return None
    if not addr.startswith("/") or addr.endswith("/"):
        return f"{addr} is not an absolute path to a file"
    return None


def validate_percent(value: int) -> str | None:
    return None if 0 <= value <= 100 else f"percentage {value} is not in range 0..100"


@field_check
def validate_percentage(v: Collector, path: FieldPath, pct: dict[str, Any]) -> None:
    value = as_num(pct.get("value"))
    if value < 0.0 or value > 100.0 or 0.0 < value < 0.0001:
        v.err(path, f"percentage {go_float(value)} is neither 0.0, nor in range [0.0001, 100.0]")


def validate_export_to(
    v: Collector, spec: dict[str, Any], *, service_entry: bool = False,
    dr_with_selector: bool = False,
) -> None:
    """validateExportTo on ``spec.exportTo`` (``~`` only for a ServiceEntry)."""
    path: FieldPath = ("spec", "exportTo")
    export_to = as_list(spec.get("exportTo"))
    if not export_to:
        return
    ns = v.namespace
    seen: set[str] = set()
    for i, entry in enumerate(export_to):
        e = as_str(entry)
        key = ns if e == "." else e
        if key in seen:
            v.err(
                path + (i,),
                f"duplicate entries in exportTo: . and current namespace {ns}"
                if key != e
                else f"duplicate entries in exportTo for entry {e}",
            )
            continue
        if service_entry and e == "~":
            seen.add(key)
        elif key == "~":
            v.err(path + (i,), "exportTo ~ (none) is not allowed for Istio configuration objects")
        elif key not in (".", "*") and not is_label(key):
            v.err(path + (i,), "only .,*, or a valid DNS 1123 label is allowed as exportTo entry")
        else:
            seen.add(key)
    if dr_with_selector and seen:
        if ns in seen:
            if len(seen) > 1:
                v.err(
                    path,
                    "destination rule with workload selector cannot have multiple entries "
                    "in exportTo",
                )
        else:
            v.err(
                path,
                "destination rule with workload selector cannot have exportTo beyond "
                "current namespace",
            )
    if "*" in seen and len(export_to) > 1:
        v.err(path, "cannot have both public (*) and non-public exportTo values for a resource")
    if "~" in seen and len(export_to) > 1:
        v.err(path, "cannot export service entry to no one (~) and someone")


def _selector_labels(v: Collector, path: FieldPath, labels: dict[str, Any]) -> bool:
    """The labels of a selector: no empty key, no ``*``; False if any is reported."""
    ok = True
    for k, val in labels.items():
        shown = quote(f"{k}={as_str(val)}")
        if k == "":
            v.err(path, f"empty key is not supported in selector: {shown}")
            ok = False
        if "*" in str(k) or "*" in as_str(val):
            v.err(path + (k,), f"wildcard is not supported in selector: {shown}")
            ok = False
    return ok


@field_check
def validate_workload_selector(v: Collector, path: FieldPath, sel: dict[str, Any]) -> None:
    """validateWorkloadSelector (type.v1beta1.WorkloadSelector, ``matchLabels``)."""
    labels = as_obj(sel.get("matchLabels")) or {}
    _selector_labels(v, path + ("matchLabels",), labels)
    if not labels:
        v.warn(path, "workload selector specified without labels")


def alpha_selector(v: Collector, path: FieldPath, selector: Any, who: str) -> bool:
    """ValidateAlphaWorkloadSelector (networking WorkloadSelector, ``labels``).

    Returns False when istiod stops validating the resource there (it returns the error alone).
    """
    sel = as_obj(selector)
    if sel is None:
        return True
    labels = as_obj(sel.get("labels")) or {}
    ok = _selector_labels(v, path + ("labels",), labels)
    if ok and not labels:
        v.warn(
            path,
            f"{who}: workload selector specified without labels, will be applied to all "
            "services in namespace",
        )
    return ok


@field_check
def validate_destination(v: Collector, path: FieldPath, dest: dict[str, Any]) -> None:
    """validateDestination: host (not ``*``), subset name, port number."""
    host = as_str(dest.get("host"))
    if host == "*":
        v.err(path + ("host",), f"invalid destination host {host}")
    else:
        v.err(path + ("host",), validate_wildcard_domain(host))
    if as_str(dest.get("subset")):
        v.err(path + ("subset",), validate_subset_name(as_str(dest.get("subset"))))
    port = as_obj(dest.get("port"))
    if port is not None:
        v.err(path + ("port",), validate_port(as_int(port.get("number"))))
