"""Sidecar: ``ValidateSidecar`` (pkg/config/validation/validation.go).

Layer: L2 (package meshlens.resources.webhook). Imports: source.

Ingress and egress listeners share the port rules (:func:`_listener_port`); server TLS is in
:mod:`.tls` and connection pools in :mod:`.traffic_policy`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from meshlens.resources.webhook.core import Collector, as_int, as_list, as_obj, as_str, has, quote
from meshlens.resources.webhook.fields import (
    alpha_selector, is_http, is_ip, is_tls, protocol, validate_destination, validate_ip,
    validate_port, validate_port_name, validate_protocol, validate_unix_address,
)
from meshlens.resources.webhook.names import is_label, validate_fqdn, validate_wildcard_domain
from meshlens.resources.webhook.tls import validate_server_tls
from meshlens.resources.webhook.traffic_policy import validate_connection_pool
from meshlens.source import FieldPath


def validate(v: Collector, spec: dict[str, Any], labels: Mapping[str, str]) -> None:
    """ValidateSidecar: selector, then ingress, inbound pool, egress and the egress proxy."""
    sp: FieldPath = ("spec",)
    if not alpha_selector(v, sp + ("workloadSelector",), spec.get("workloadSelector"), "sidecar"):
        return
    ingress, egress = as_list(spec.get("ingress")), as_list(spec.get("egress"))
    if (
        not ingress
        and not egress
        and not has(spec, "outboundTrafficPolicy")
        and not has(spec, "inboundConnectionPool")
    ):
        v.findings.clear()  # istiod returns this error alone
        v.err(sp, "sidecar: empty configuration provided")
        return
    _validate_ingress(v, sp + ("ingress",), ingress)
    validate_connection_pool(v, sp + ("inboundConnectionPool",), spec.get("inboundConnectionPool"))
    _validate_egress(v, sp + ("egress",), egress)
    otp = as_obj(spec.get("outboundTrafficPolicy"))
    proxy = as_obj(otp.get("egressProxy")) if otp is not None else None
    if otp is not None and proxy is not None:
        _validate_egress_proxy(v, sp + ("outboundTrafficPolicy", "egressProxy"), otp, proxy)


def _validate_egress_proxy(
    v: Collector, pp: FieldPath, otp: dict[str, Any], proxy: dict[str, Any]
) -> None:
    if as_str(otp.get("mode")) != "ALLOW_ANY":
        v.err(
            pp,
            "sidecar: egress_proxy must be set only with ALLOW_ANY outbound_traffic_policy mode",
        )
        return
    v.err(pp + ("host",), validate_fqdn(as_str(proxy.get("host"))))
    if not has(proxy, "port"):
        v.err(pp, "sidecar: egress_proxy port must be non-nil")
        return
    validate_destination(v, pp, proxy)


@dataclass(slots=True)
class _Seen:
    """Ports and unix socket binds already used by earlier listeners of one direction."""

    numbers: set[int] = field(default_factory=set)
    binds: set[str] = field(default_factory=set)


def _listener_port(
    v: Collector, lp: FieldPath, listener: dict[str, Any], port: dict[str, Any], seen: _Seen, *,
    egress: bool,
) -> None:
    """The port of an ingress or egress listener: targetPort unused, valid, unique."""
    if as_int(port.get("targetPort")) > 0:
        v.err(lp + ("port", "targetPort"), "targetPort has no impact on Sidecars")
    bind = as_str(listener.get("bind"))
    capture = as_str(listener.get("captureMode")) if egress else ""
    _sidecar_port(v, lp + ("port",), port, bind, egress=egress, capture=capture)
    number = as_int(port.get("number"))
    if egress and number == 0:
        if bind in seen.binds:
            v.err(lp + ("bind",), "sidecar: unix domain socket values for listeners must be unique")
        seen.binds.add(bind)
        return
    if number in seen.numbers:
        v.err(lp + ("port",), "sidecar: ports on IP bound listeners must be unique")
    seen.numbers.add(number)


def _sidecar_port(
    v: Collector, path: FieldPath, port: dict[str, Any], bind: str, *, egress: bool, capture: str
) -> None:
    name, number = as_str(port.get("name")), as_int(port.get("number"))
    if name:
        v.err(path + ("name",), validate_port_name(name))
    if egress and number == 0:
        v.err(path + ("protocol",), validate_protocol(as_str(port.get("protocol"))))
        if not bind.startswith("unix://"):
            v.err(path, "sidecar: ports with 0 value must have a unix domain socket bind address")
        else:
            v.err(path, validate_unix_address(bind[len("unix://") :]))
        if capture not in ("", "DEFAULT", "NONE"):
            v.err(
                path, "sidecar: captureMode must be DEFAULT/NONE for unix domain socket listeners"
            )
        return
    v.err(path + ("protocol",), validate_protocol(as_str(port.get("protocol"))))
    v.err(path + ("number",), validate_port(number))
    if bind:
        v.err(path, validate_ip(bind))


def _validate_ingress(v: Collector, path: FieldPath, ingress: list[Any]) -> None:
    seen = _Seen()
    for ip, ing in v.entries(path, ingress, "sidecar: ingress may not be null"):
        port = as_obj(ing.get("port"))
        if port is None:
            v.err(ip, "sidecar: port is required for ingress listeners")
            continue
        _listener_port(v, ip, ing, port, seen, egress=False)
        endpoint = as_str(ing.get("defaultEndpoint"))
        if endpoint:
            _validate_default_endpoint(v, ip + ("defaultEndpoint",), endpoint)
        tls = as_obj(ing.get("tls"))
        if tls is not None:
            _validate_ingress_tls(v, ip + ("tls",), tls, port)
        validate_connection_pool(v, ip + ("connectionPool",), ing.get("connectionPool"))
        pool = as_obj(ing.get("connectionPool"))
        proto = as_str(port.get("protocol"))
        if pool is not None and has(pool, "http") and not is_http(protocol(proto)):
            v.warn(
                ip + ("connectionPool", "http"),
                "sidecar: HTTP connection pool settings are configured for port "
                f"{as_int(port.get('number'))} ({quote(as_str(port.get('name')))}) but its "
                f"protocol is not HTTP ({proto}); only TCP settings will apply",
            )


def _validate_default_endpoint(v: Collector, ep: FieldPath, endpoint: str) -> None:
    if endpoint.startswith("unix://"):
        v.err(ep, validate_unix_address(endpoint[len("unix://") :]))
        return
    host, sport, error = _split_host_port(endpoint)
    v.err(ep, error)
    if host and host not in ("127.0.0.1", "0.0.0.0", "::1", "::"):
        v.err(
            ep,
            "sidecar: defaultEndpoint must be of form 127.0.0.1:<port>,0.0.0.0:<port>,"
            "[::1]:port,[::]:port,unix://filepath or unset",
        )
    if re.fullmatch(r"[+-]?[0-9]{1,18}", sport):
        v.err(ep, validate_port(int(sport)))
    else:
        v.err(
            ep,
            f"sidecar: defaultEndpoint port ({sport}) is not a number: strconv.Atoi: "
            f"parsing {quote(sport)}: invalid syntax",
        )


#: Server TLS fields a Sidecar ingress may not set (a non-empty list), with istiod's message.
_INGRESS_TLS_UNSUPPORTED = (
    ("subjectAltNames", "sidecar: subjectAltNames is not supported in ingress tls"),
    ("credentialNames", "sidecar: credentialNames is not currently supported"),
    ("tlsCertificates", "sidecar: tls_certificates is not currently supported"),
)


def _validate_ingress_tls(
    v: Collector, tp: FieldPath, tls: dict[str, Any], port: dict[str, Any]
) -> None:
    for key, message in _INGRESS_TLS_UNSUPPORTED:
        if as_list(tls.get(key)):
            v.err(tp + (key,), message)
    if tls.get("httpsRedirect") is True:
        v.err(tp + ("httpsRedirect",), "sidecar: httpsRedirect is not supported")
    if as_str(tls.get("credentialName")):
        v.err(tp + ("credentialName",), "sidecar: credentialName is not currently supported")
    mode = as_str(tls.get("mode")) or "PASSTHROUGH"
    if mode in ("ISTIO_MUTUAL", "AUTO_PASSTHROUGH"):
        v.err(
            tp + ("mode",),
            f"configuration is invalid: cannot set mode to {mode} in sidecar ingress tls",
        )
    if not is_tls(protocol(as_str(port.get("protocol")))):
        v.err(tp, "server cannot have TLS settings for non HTTPS/TLS ports")
    validate_server_tls(v, tp, tls)


def _validate_egress(v: Collector, path: FieldPath, egress: list[Any]) -> None:
    seen = _Seen()
    catch_all = False
    for i, entry in enumerate(egress):
        ep = path + (i,)
        eg = as_obj(entry)
        if eg is None:
            v.err(ep, "egress listener may not be null")
            continue
        port = as_obj(eg.get("port"))
        if port is not None:
            _listener_port(v, ep, eg, port, seen, egress=True)
        elif catch_all:
            v.err(ep, "sidecar: egress can have only one listener with empty port")
            continue
        elif i == len(egress) - 1:
            catch_all = True
        else:
            v.err(
                ep,
                "sidecar: the egress listener with empty port should be the last listener in "
                "the list",
            )
        _validate_egress_hosts(v, ep + ("hosts",), [as_str(h) for h in as_list(eg.get("hosts"))])


def _validate_egress_hosts(v: Collector, path: FieldPath, hosts: list[str]) -> None:
    if not hosts:
        v.err(path, "sidecar: egress listener must contain at least one host")
        return
    by_ns: dict[str, set[str]] = {}
    for k, host in enumerate(hosts):
        ns, slash, svc = host.partition("/")
        if slash and not ns.startswith("~"):
            ns = v.namespace if ns == "." else ns
            known = by_ns.setdefault(ns, set())
            if (svc != "*" and (svc in known or "*" in known)) or (svc == "*" and known):
                v.warn(path + (k,), f"duplicated egress host: {host}")
            known.add(svc)
        v.errs(path + (k,), _namespace_slash_host(host))
    if "*" in by_ns.get("*", set()) and len(by_ns) != 1:
        v.warn(path, "`*/*` host select all resources, no other hosts can be added")


def _namespace_slash_host(hostname: str) -> list[str]:
    """agent.ValidateNamespaceSlashWildcardHostname for a Sidecar (``ns/dnsName``)."""
    ns, slash, name = hostname.partition("/")
    if not slash:
        return ["host must be of form namespace/dnsName"]
    errors = []
    if not ns or not name:
        errors.append("config namespace and dnsName in host entry cannot be empty")
    bare = ns[1:] if ns.startswith("~") else ns
    if bare not in ("", "*", ".") and not is_label(bare):
        errors.append(f"invalid namespace value {quote(ns)} in sidecar")
    if name != "*" and "." not in name:
        errors.append("short names (non FQDN) are not allowed")
    error = validate_wildcard_domain(name)
    if error:
        errors.append(error)
        if not is_ip(name):
            errors.append(error)
    if "*" in name and len(name) != 1 and not name.startswith("*."):
        errors.append(f"partial wildcard {quote(name)} not allowed")
    return errors


def _split_host_port(hostport: str) -> tuple[str, str, str | None]:
    """Go's ``net.SplitHostPort``: (host, port, error)."""

    def fail(why: str) -> tuple[str, str, str]:
        return "", "", f"address {hostport}: {why}"

    i = hostport.rfind(":")
    if i < 0:
        return fail("missing port in address")
    j = k = 0
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            return fail("missing ']' in address")
        if end + 1 == len(hostport):
            return fail("missing port in address")
        if end + 1 != i:
            return fail(
                "too many colons in address"
                if hostport[end + 1] == ":"
                else "missing port in address"
            )
        host, j, k = hostport[1:end], 1, end + 1
    else:
        host = hostport[:i]
        if ":" in host:
            return fail("too many colons in address")
    if "[" in hostport[j:]:
        return fail("unexpected '[' in address")
    if "]" in hostport[k:]:
        return fail("unexpected ']' in address")
    return host, hostport[i + 1 :], None
