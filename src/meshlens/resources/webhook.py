"""The semantic checks of istiod's validating webhook, and the API server's object-name rules.

Layer: L2. Imports: source (and resources.schema, resources.re2 of this package).

istiod's webhook (``validation.istio.io``, ``pkg/config/validation/validation.go``,
``virtualservice.go`` and ``agent/validation.go``) runs after the CRD's structural schema and
rejects, or warns about, what the schema cannot express: host names, subset names, durations
finer than a millisecond, percentages, header names and values, RE2 regexes, duplicate ports,
``exportTo`` rules, locality settings, TLS field combinations, and so on. meshlens mirrors it
for the kinds it reads (DestinationRule, VirtualService, ServiceEntry, Sidecar,
PeerAuthentication, WorkloadEntry) so that it accepts exactly what ``kubectl apply`` would get
past admission. Messages keep the webhook's wording; each :class:`Finding` adds the field path
the webhook does not give.

:func:`validate_webhook` expects a resource that already passed :func:`validate_spec` (types
are right) and never raises. Errors reject the resource; warnings (``Finding.warning``) are what
``kubectl`` prints as ``Warning:`` and the resource is kept.

Also here, because they decide whether two objects could ever produce the same Envoy name:
:func:`validate_metadata`, the API server's ``ObjectMeta`` checks (name as a DNS-1123 subdomain,
label or DNS-1035 label by kind, namespace as a DNS-1123 label, label keys and values).

Left out (see the module's tests for the list): Gateway-bound VirtualService rules (meshlens
compiles sidecars), the "unreachable rule" warnings (``meshlens analyze`` reports them as
ML1106/ML1107), and checks that need other resources.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from meshlens.resources.re2 import MAX_REGEX_BYTES, re2_error
from meshlens.resources.schema import Problem, parse_go_duration, render_field
from meshlens.source import FieldPath

__all__ = ["Finding", "validate_metadata", "validate_webhook"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One webhook verdict: where, what (the webhook's words), and whether it only warns."""

    path: FieldPath
    message: str
    warning: bool = False


# --- names (pkg/config/labels, agent.ValidateWildcardDomain & co) ---------------------------------

_LABEL = r"[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?"
_DNS1123_LABEL = re.compile(_LABEL)
_WILDCARD_LABEL = re.compile(r"\*|(?:\*|\*-)?" + _LABEL)
_QUALIFIED = r"(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_TAG_KEY = re.compile(r"(" + _LABEL + r"(?:\." + _LABEL + r")*/)?(" + _QUALIFIED + ")")
_TAG_VALUE = re.compile("(?:" + _QUALIFIED + ")?")
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~A-Za-z0-9]+")
_HEADER_VALUE_BAD = re.compile("[\x00-\x08\x0a-\x1f\x7f]")
_PSEUDO_HEADERS = frozenset({":method", ":scheme", ":authority", ":path", ":status"})
_JWT_CLAIM = "@request.auth.claims"
_MS = 1_000_000


def _is_label(value: str) -> bool:
    return len(value) <= 63 and _DNS1123_LABEL.fullmatch(value) is not None


def _q(value: str) -> str:
    """Go's ``%q``: a double-quoted string with Go escapes.

    Example:
        >>> print(_q('a"b\\x00'))
        "a\\"b\\x00"
    """
    out = ['"']
    for ch in value:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in "\a\b\f\n\r\t\v":
            out.append(
                {
                    "\a": "\\a",
                    "\b": "\\b",
                    "\f": "\\f",
                    "\n": "\\n",
                    "\r": "\\r",
                    "\t": "\\t",
                    "\v": "\\v",
                }[ch]
            )
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out) + '"'


def _gofloat(value: float) -> str:
    """Go's ``%v`` for a float64: shortest digits, exponent form below 1e-4 and from 1e+06.

    Example:
        >>> _gofloat(150.0), _gofloat(0.00001), _gofloat(12.5), _gofloat(1e21)
        ('150', '1e-05', '12.5', '1e+21')
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    dec = Decimal(repr(abs(float(value))))
    _, digits, exponent = dec.as_tuple()
    assert isinstance(exponent, int)
    exp10 = len(digits) + exponent - 1
    if exp10 < -4 or exp10 >= 6:
        ds = "".join(map(str, digits)).rstrip("0") or "0"
        frac = "." + ds[1:] if len(ds) > 1 else ""
        return f"{sign}{ds[0]}{frac}e{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"
    return sign + format(dec.normalize(), "f")


def _dns1123_preconditions(name: str) -> str | None:
    if len(name) > 255:
        return f"domain name {_q(name)} too long (max 255)"
    if not name:
        return "empty domain name not allowed"
    return None


def _dns1123_labels(domain: str) -> str | None:
    parts = domain.split(".")
    tld = parts[-1]
    if re.fullmatch(r"[+-]?[0-9]+", tld):
        return (
            f"domain name {_q(domain)} invalid (top level domain {_q(tld)} cannot be all-numeric)"
        )
    for i, label in enumerate(parts):
        if i == len(parts) - 1 and label == "":
            return None
        if not _is_label(label):
            return f"domain name {_q(domain)} invalid (label {_q(label)} invalid)"
    return None


def validate_fqdn(fqdn: str) -> str | None:
    """agent.ValidateFQDN.

    Example:
        >>> validate_fqdn("reviews.default.svc.cluster.local") is None, validate_fqdn("a|b")
        (True, 'domain name "a|b" invalid (label "a|b" invalid)')
    """
    return _dns1123_preconditions(fqdn) or _dns1123_labels(fqdn)


def validate_wildcard_domain(domain: str) -> str | None:
    """agent.ValidateWildcardDomain: an FQDN whose first label may be a wildcard.

    Example:
        >>> validate_wildcard_domain("*.example.com") is None
        True
        >>> validate_wildcard_domain("reviews:9080")
        'domain name "reviews:9080" invalid (label "reviews:9080" invalid)'
    """
    bad = _dns1123_preconditions(domain)
    if bad:
        return bad
    first, dot, rest = domain.partition(".")
    if len(first) > 63 or not _WILDCARD_LABEL.fullmatch(first):
        return f"domain name {_q(domain)} invalid (label {_q(first)} invalid)"
    return _dns1123_labels(rest) if dot else None


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _validate_ip(value: str) -> str | None:
    return None if _is_ip(value) else f"{value} is not a valid IP"


def _validate_ip_subnet(subnet: str) -> str | None:
    if subnet.count("/") == 1:
        try:
            if "%" in subnet:
                raise ValueError(subnet)
            ipaddress.ip_network(subnet, strict=False)
        except ValueError:
            return f"{subnet} is not a valid CIDR block"
        return None
    return _validate_ip(subnet)


def _validate_port(port: int) -> str | None:
    return None if 1 <= port <= 65535 else f"port number {port} must be in the range 1..65535"


def _validate_port_name(name: str) -> str | None:
    return None if _is_label(name) else f"invalid port name: {name}"


_PROTOCOLS = {
    p.lower(): p
    for p in (
        "TCP",
        "UDP",
        "GRPC",
        "GRPC-Web",
        "HTTP",
        "HTTP_PROXY",
        "HTTP2",
        "HTTPS",
        "TLS",
        "Mongo",
        "Redis",
        "MySQL",
    )
}


def _protocol(name: str) -> str:
    """protocol.Parse: the canonical protocol, or "" when istiod does not know it."""
    return _PROTOCOLS.get(name.lower(), "")


def _is_http(proto: str) -> bool:
    return proto in ("HTTP", "HTTP2", "HTTP_PROXY", "GRPC", "GRPC-Web")


def _is_tls(proto: str) -> bool:
    return proto in ("HTTPS", "TLS")


def _validate_protocol(name: str) -> str | None:
    return None if not name or _protocol(name) else f"unsupported protocol: {name}"


def _validate_unix_address(addr: str) -> str | None:
    if not addr:
        return "unix address must not be empty"
    if addr.startswith("@"):
        return None
    if not addr.startswith("/") or addr.endswith("/"):
        return f"{addr} is not an absolute path to a file"
    return None


def _validate_labels(labels: Mapping[str, Any]) -> list[str]:
    """labels.Instance.Validate: Kubernetes-style keys, values without spaces or ``*``."""
    errors = []
    for key, value in labels.items():
        key, value = str(key), value if isinstance(value, str) else ""
        m = _TAG_KEY.fullmatch(key)
        if m is None:
            errors.append(f"invalid tag key: {_q(key)}")
        elif m.group(1) and len(m.group(1)) - 1 > 253:
            errors.append(f"invalid tag key: {_q(key)} (DNS prefix is too long)")
        elif len(m.group(2)) > 63:
            errors.append(f"invalid tag key: {_q(key)} (name is too long)")
        if not _TAG_VALUE.fullmatch(value):
            errors.append(f"invalid tag value: {_q(value)}")
    return errors


# --- value helpers (the input passed the schema: types are right, nulls mean "absent") ------------


def _obj(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return int(value) if math.isfinite(value) else 0


def _num(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value)


def _has(obj: Mapping[str, Any] | None, key: str) -> bool:
    return obj is not None and obj.get(key) is not None


def _set(obj: Mapping[str, Any] | None, key: str) -> bool:
    """A proto field that is "set": present and not null; a repeated field also not empty."""
    if obj is None or obj.get(key) is None:
        return False
    value = obj[key]
    return not (isinstance(value, list) and not value)


# --- the collector --------------------------------------------------------------------------------


class _V:
    """Collects findings; ``err``/``warn`` take the field path and the webhook's message."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.findings: list[Finding] = []

    def err(self, path: FieldPath, message: str | None) -> None:
        if message:
            self.findings.append(Finding(path, message))

    def errs(self, path: FieldPath, messages: Iterable[str]) -> None:
        for m in messages:
            self.err(path, m)

    def warn(self, path: FieldPath, message: str) -> None:
        self.findings.append(Finding(path, message, True))

    def duration(self, path: FieldPath, value: Any) -> None:
        """agent.ValidateDuration on a field the schema already parsed as a Go duration."""
        self.err(path, _duration_error(value))


def _duration_error(value: Any) -> str | None:
    ns = parse_go_duration(value) if isinstance(value, str) else None
    if ns is None:
        return f"time: invalid duration {_q(str(value))}"
    if ns < _MS:
        return "duration must be greater than 1ms"
    if ns % _MS:
        return "only durations to ms precision are supported"
    return None


def _validate_percent(value: int) -> str | None:
    return None if 0 <= value <= 100 else f"percentage {value} is not in range 0..100"


def _validate_percentage(v: _V, path: FieldPath, percentage: Any) -> None:
    pct = _obj(percentage)
    if pct is None:
        return
    value = _num(pct.get("value"))
    if value < 0.0 or value > 100.0 or 0.0 < value < 0.0001:
        v.err(path, f"percentage {_gofloat(value)} is neither 0.0, nor in range [0.0001, 100.0]")


def _string_duration(v: _V, path: FieldPath, value: Any) -> int | None:
    """A Duration the CRD leaves as a plain string: istiod's decoder parses it (Go syntax)."""
    if value is None:
        return None
    ns = parse_go_duration(value) if isinstance(value, str) else None
    if ns is None:
        v.err(path, f"time: invalid duration {_q(str(value))}")
    return ns


# --- exportTo and selectors -----------------------------------------------------------------------


def _validate_export_to(
    v: _V, path: FieldPath, export_to: list[Any], *, service_entry: bool, dr_with_selector: bool
) -> None:
    if not export_to:
        return
    ns = v.namespace
    seen: set[str] = set()
    for i, entry in enumerate(export_to):
        e = _str(entry)
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
        elif key not in (".", "*") and not _is_label(key):
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


def _validate_workload_selector(v: _V, path: FieldPath, selector: Any) -> None:
    """validateWorkloadSelector (type.v1beta1.WorkloadSelector, ``matchLabels``)."""
    sel = _obj(selector)
    if sel is None:
        return
    labels = _obj(sel.get("matchLabels")) or {}
    for k, val in labels.items():
        if k == "":
            v.err(
                path + ("matchLabels",),
                f"empty key is not supported in selector: {_q(f'{k}={val}')}",
            )
        if "*" in str(k) or "*" in _str(val):
            v.err(
                path + ("matchLabels", k),
                f"wildcard is not supported in selector: {_q(f'{k}={_str(val)}')}",
            )
    if not labels:
        v.warn(path, "workload selector specified without labels")


def _alpha_selector(v: _V, path: FieldPath, selector: Any, who: str) -> bool:
    """ValidateAlphaWorkloadSelector (networking WorkloadSelector, ``labels``).

    Returns False when istiod stops validating the resource there (it returns the error alone).
    """
    sel = _obj(selector)
    if sel is None:
        return True
    labels = _obj(sel.get("labels")) or {}
    ok = True
    for k, val in labels.items():
        if k == "":
            v.err(
                path + ("labels",),
                f"empty key is not supported in selector: {_q(f'{k}={_str(val)}')}",
            )
            ok = False
        if "*" in str(k) or "*" in _str(val):
            v.err(
                path + ("labels", k),
                f"wildcard is not supported in selector: {_q(f'{k}={_str(val)}')}",
            )
            ok = False
    if ok and not labels:
        v.warn(
            path,
            f"{who}: workload selector specified without labels, will be applied to all "
            "services in namespace",
        )
    return ok


# --- DestinationRule ------------------------------------------------------------------------------


def _validate_traffic_policy(v: _V, path: FieldPath, policy: Any) -> None:
    tp = _obj(policy)
    if tp is None:
        return
    keys = (
        "outlierDetection",
        "connectionPool",
        "loadBalancer",
        "tls",
        "portLevelSettings",
        "tunnel",
        "proxyProtocol",
        "retryBudget",
    )
    if not any(_set(tp, k) for k in keys):
        v.err(path, "traffic policy must have at least one field")
        return
    if _has(tp, "tunnel") and _has(tp, "proxyProtocol"):
        v.err(path, "tunnel and proxyProtocol must not be set together")
        return
    od = _obj(tp.get("outlierDetection"))
    _validate_outlier_detection(v, path + ("outlierDetection",), od)
    _validate_connection_pool(v, path + ("connectionPool",), tp.get("connectionPool"))
    _validate_load_balancer(v, path + ("loadBalancer",), tp.get("loadBalancer"), od)
    _validate_tls(v, path + ("tls",), tp.get("tls"))
    _validate_port_level(v, path + ("portLevelSettings",), _list(tp.get("portLevelSettings")))
    tunnel = _obj(tp.get("tunnel"))
    if tunnel is not None:
        tpath = path + ("tunnel",)
        proto = _str(tunnel.get("protocol"))
        if proto not in ("", "CONNECT", "POST"):
            v.err(tpath + ("protocol",), 'tunnel protocol must be "CONNECT" or "POST"')
        host = _str(tunnel.get("targetHost"))
        fqdn_err, ip_err = validate_fqdn(host), _validate_ip(host)
        if fqdn_err and ip_err:
            v.err(
                tpath + ("targetHost",),
                f"tunnel target host must be valid FQDN or IP address: {fqdn_err}; {ip_err}",
            )
        port_err = _validate_port(_int(tunnel.get("targetPort")))
        if port_err:
            v.err(tpath + ("targetPort",), f"tunnel target port is invalid: {port_err}")
    budget = _obj(tp.get("retryBudget"))
    if budget is not None:
        _string_duration(v, path + ("retryBudget", "budgetInterval"), budget.get("budgetInterval"))


def _validate_outlier_detection(v: _V, path: FieldPath, od: dict[str, Any] | None) -> None:
    if od is None:
        return
    if _has(od, "baseEjectionTime"):
        v.duration(path + ("baseEjectionTime",), od["baseEjectionTime"])
    if _int(od.get("consecutiveErrors")) != 0:
        v.warn(
            path + ("consecutiveErrors",),
            "outlier detection consecutive errors is deprecated, use consecutiveGatewayErrors or "
            "consecutive5xxErrors instead",
        )
    if (
        od.get("splitExternalLocalOriginErrors") is not True
        and _int(od.get("consecutiveLocalOriginFailures")) > 0
    ):
        v.err(
            path + ("consecutiveLocalOriginFailures",),
            "outlier detection consecutive local origin failures is specified, but split external "
            "local origin errors is set to false",
        )
    if _has(od, "interval"):
        v.duration(path + ("interval",), od["interval"])
    for key in ("maxEjectionPercent", "minHealthPercent"):
        v.err(path + (key,), _validate_percent(_int(od.get(key))))


def _validate_connection_pool(v: _V, path: FieldPath, pool: Any) -> None:
    cp = _obj(pool)
    if cp is None:
        return
    if not _has(cp, "http") and not _has(cp, "tcp"):
        v.err(path, "connection pool must have at least one field")
        return
    http = _obj(cp.get("http"))
    if http is not None:
        hp = path + ("http",)
        for key, text in (
            ("http1MaxPendingRequests", "http1 max pending requests"),
            ("http2MaxRequests", "http2 max requests"),
            ("maxRequestsPerConnection", "max requests per connection"),
            ("maxRetries", "max retries"),
        ):
            if _int(http.get(key)) < 0:
                v.err(hp + (key,), f"{text} must be non-negative")
        if _has(http, "idleTimeout"):
            v.duration(hp + ("idleTimeout",), http["idleTimeout"])
        if http.get("h2UpgradePolicy") == "UPGRADE" and http.get("useClientProtocol") is True:
            v.err(
                hp + ("useClientProtocol",),
                "use client protocol must not be true when H2UpgradePolicy is UPGRADE",
            )
        if _int(http.get("maxConcurrentStreams")) < 0:
            v.err(hp + ("maxConcurrentStreams",), "max concurrent streams must be non-negative")
        keepalive = _obj(http.get("http2KeepAlive"))
        if keepalive is not None:
            kp = hp + ("http2KeepAlive",)
            for key in ("interval", "timeout"):
                if not _has(keepalive, key):
                    v.err(kp, f"http2 keepalive {key} is required")
                else:
                    v.duration(kp + (key,), keepalive[key])
    tcp = _obj(cp.get("tcp"))
    if tcp is not None:
        tpath = path + ("tcp",)
        if _int(tcp.get("maxConnections")) < 0:
            v.err(tpath + ("maxConnections",), "max connections must be non-negative")
        for key in ("connectTimeout", "maxConnectionDuration"):
            if _has(tcp, key):
                v.duration(tpath + (key,), tcp[key])
        ns = _string_duration(v, tpath + ("idleTimeout",), tcp.get("idleTimeout"))
        # istiod skips the check when the timeout rounds to 0ms: 0s disables it.
        if ns is not None and int(ns / _MS) != 0:
            v.duration(tpath + ("idleTimeout",), tcp["idleTimeout"])
        ka = _obj(tcp.get("tcpKeepalive"))
        if ka is not None:
            for key in ("time", "interval"):
                if _has(ka, key):
                    v.duration(tpath + ("tcpKeepalive", key), ka[key])


def _is_prime(x: int) -> bool:
    """Envoy's primality test (istiod copies it for maglev.tableSize)."""
    if x != 0 and x < 4:
        return True
    if x & 1 == 0:
        return False
    limit = math.isqrt(x)
    return all(x % f for f in range(3, limit + 1, 2))


_TOPOLOGY = (
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
    "topology.istio.io/subzone",
)


def _validate_load_balancer(
    v: _V, path: FieldPath, balancer: Any, od: dict[str, Any] | None
) -> None:
    lb = _obj(balancer)
    if lb is None:
        return
    ch = _obj(lb.get("consistentHash"))
    if ch is not None:
        cpath = path + ("consistentHash",)
        cookie = _obj(ch.get("httpCookie"))
        if cookie is not None:
            if not _str(cookie.get("name")):
                v.err(cpath + ("httpCookie",), "name required for HttpCookie")
            names: set[str] = set()
            for i, attr in enumerate(_list(cookie.get("attributes"))):
                name = _str(_obj(attr) and attr.get("name"))
                apath = cpath + ("httpCookie", "attributes", i)
                if not name:
                    v.err(apath, "cookie attribute name cannot be empty")
                elif name in names:
                    v.err(apath, f"duplicate cookie attribute name: {name}")
                else:
                    names.add(name)
            _string_duration(v, cpath + ("httpCookie", "ttl"), cookie.get("ttl"))
        if _int(ch.get("minimumRingSize")) != 0:
            v.warn(
                cpath + ("minimumRingSize",),
                "consistent hash MinimumRingSize is deprecated, use ConsistentHashLB's RingHash "
                "configuration instead",
            )
            if _has(ch, "ringHash") or _has(ch, "maglev"):
                v.err(cpath, "only one of MinimumRingSize or Maglev/Ringhash can be specified")
        maglev = _obj(ch.get("maglev"))
        if maglev is not None:
            size = _int(maglev.get("tableSize"))
            mpath = (
                cpath + ("maglev", "tableSize") if "tableSize" in maglev else cpath + ("maglev",)
            )
            if size == 0:
                v.err(mpath, "tableSize must be set for maglev")
            if size >= 5000011:
                v.err(mpath, "tableSize must be less than 5000011 for maglev")
            if not _is_prime(size):
                v.err(mpath, "tableSize must be a prime number for maglev")
    if _has(lb, "localityLbSetting") and _has(lb, "zoneAwareLbSetting"):
        v.err(path, "only one of localityLbSetting and zoneAwareLbSetting can be set")
    _validate_locality(v, path + ("localityLbSetting",), _obj(lb.get("localityLbSetting")), od)
    _validate_zone_aware(v, path + ("zoneAwareLbSetting",), _obj(lb.get("zoneAwareLbSetting")), od)
    warm = _obj(lb.get("warmup"))
    if warm is not None:
        wpath = path + ("warmup",)
        if not _has(warm, "duration"):
            v.err(wpath, "duration is required")
        else:
            v.duration(wpath + ("duration",), warm["duration"])
        if _num(warm.get("minimumPercent")) > 100:
            v.err(
                wpath + ("minimumPercent",),
                "minimumPercent value should be less than or equal to 100",
            )
        if _has(warm, "aggression") and _num(warm.get("aggression")) <= 0:
            v.err(wpath + ("aggression",), "aggression should be greater than 0")


def _validate_locality(
    v: _V, path: FieldPath, lb: dict[str, Any] | None, od: dict[str, Any] | None
) -> None:
    if lb is None:
        return
    distribute, failover = _list(lb.get("distribute")), _list(lb.get("failover"))
    priority = [_str(p) for p in _list(lb.get("failoverPriority"))]
    if distribute and failover:
        v.err(path, "can not simultaneously specify 'distribute' and 'failover'")
        return
    if failover and priority:
        for label in priority:
            if label in _TOPOLOGY:
                v.err(
                    path + ("failoverPriority",),
                    "can not simultaneously set 'failover' and "
                    f"topology label '{label}' in 'failover_priority'",
                )
                return
    sources = []
    for i, rule in enumerate(distribute):
        rule = _obj(rule) or {}
        sources.append(_str(rule.get("from")))
        to = _obj(rule.get("to")) or {}
        total = 0
        for loc, weight in to.items():
            w = _int(weight)
            if w <= 0 or w > 100:
                v.err(
                    path + ("distribute", i, "to", loc), "locality weight must be in range [1, 100]"
                )
                return
            total += w
        if total != 100:
            v.err(path + ("distribute", i, "to"), f"total locality weight {total} != 100")
            return
        v.err(path + ("distribute", i, "to"), _validate_localities(list(to)))
    v.err(path + ("distribute",), _validate_localities(sources))
    if (failover or priority) and od is None:
        v.warn(path, "outlier detection policy must be provided for failover")
    _validate_failover(
        v,
        path + ("failover",),
        failover,
        "locality lb failover settings must specify different regions",
        "locality lb failover only specify region",
        "locality lb failover region should not contain '*' wildcard",
    )


def _validate_failover(
    v: _V, path: FieldPath, failover: list[Any], same: str, slash: str, star: str
) -> None:
    for i, rule in enumerate(failover):
        rule = _obj(rule) or {}
        src, dst = _str(rule.get("from")), _str(rule.get("to"))
        if src == dst:
            v.err(path + (i,), same)
        if "/" in src or "/" in dst:
            v.err(path + (i,), slash)
        if "*" in src or "*" in dst:
            v.err(path + (i,), star)


def _validate_zone_aware(
    v: _V, path: FieldPath, lb: dict[str, Any] | None, od: dict[str, Any] | None
) -> None:
    if lb is None:
        return
    failover = _list(lb.get("failover"))
    priority = [_str(p) for p in _list(lb.get("failoverPriority"))]
    for label in priority:
        if label in _TOPOLOGY:
            v.err(
                path + ("failoverPriority",),
                f"'failover_priority' for zone aware lb must not use topology label '{label}'; "
                "region- and zone-level routing are handled automatically",
            )
    if (failover or priority) and od is None:
        v.warn(path, "outlier detection policy must be provided for failover")
    _validate_failover(
        v,
        path + ("failover",),
        failover,
        "zone aware lb failover settings must specify different regions",
        "zone aware lb failover only specifies region; zone and subzone failover are "
        "handled automatically",
        "zone aware lb failover region should not contain '*' wildcard",
    )


def _validate_localities(localities: list[str]) -> str | None:
    """agent.validateLocalities: no empty segments, one trailing ``*`` at most, no overlaps.

    istiod walks ``distribute[].to`` in Go map order (random); meshlens walks it in file order.
    """
    seen: dict[str, dict[str, set[str]]] = {}
    for loc in localities:
        stars = loc.count("*")
        if stars and (stars > 1 or not loc.endswith("*")):
            return f"locality {loc} wildcard '*' number can not exceed 1 and must be in the end"
        if "*" in seen:
            return f"locality {loc} overlap with previous specified ones"
        items = loc.split("/", 2)
        if any(item == "" for item in items):
            return f"locality {loc} must not contain empty region/zone/subzone info"
        region = items[0]
        overlap = f"locality {loc} overlap with previous specified ones"
        if len(items) == 1:
            if region in seen:
                return overlap
            seen[region] = {"*": {"*"}}
        elif len(items) == 2:
            zones = seen.get(region)
            if zones is not None:
                if "*" in zones or items[1] in zones:
                    return overlap
                zones[items[1]] = {"*"}
            else:
                seen[region] = {items[1]: {"*"}}
        else:
            zone, sub = items[1], items[2]
            zones = seen.get(region)
            if zones is not None:
                if "*" in zones:
                    return overlap
                if zone in zones:
                    if "*" in zones[zone] or sub in zones[zone]:
                        return overlap
                    zones[zone].add(sub)
                else:
                    zones[zone] = {sub}
            else:
                seen[region] = {zone: {sub}}
    return None


def _validate_tls(v: _V, path: FieldPath, settings: Any) -> None:
    """agent.ValidateTLS (ClientTLSSettings). Nothing is checked for ISTIO_MUTUAL."""
    tls = _obj(settings)
    if tls is None:
        return
    mode = _str(tls.get("mode")) or "DISABLE"
    cred = _str(tls.get("credentialName"))
    if cred.startswith("configmap://"):
        rest = cred[len("configmap://") :].split("/")
        if len(rest) <= 1:
            v.err(
                path + ("credentialName",),
                f"invalid configmap:// credentialName: invalid resource "
                f"name {_q(cred)}. Expected namespace and name",
            )
        elif not rest[0]:
            v.err(
                path + ("credentialName",),
                f"invalid configmap:// credentialName: invalid resource "
                f"name {_q(cred)}. Expected namespace",
            )
        elif not rest[1]:
            v.err(
                path + ("credentialName",),
                f"invalid configmap:// credentialName: invalid resource "
                f"name {_q(cred)}. Expected name",
            )
        elif rest[0] != v.namespace or not v.namespace:
            v.err(
                path + ("credentialName",),
                "invalid configmap:// credentialName: namespace must "
                f"match the configuration namespace {_q(v.namespace)}",
            )
    has = {
        k: bool(_str(tls.get(k)))
        for k in ("caCertificates", "clientCertificate", "privateKey", "caCrl")
    }
    sans = tls.get("subjectAltNames") is not None and bool(_list(tls.get("subjectAltNames")))
    if tls.get("insecureSkipVerify") is True:
        if mode == "SIMPLE" and (has["caCertificates"] or cred or sans):
            v.err(
                path,
                "cannot specify CaCertificates or CredentialName or SubjectAltNames when "
                "InsecureSkipVerify is set true",
            )
        if mode == "MUTUAL" and (has["caCertificates"] or sans):
            v.err(
                path,
                "cannot specify CaCertificates or SubjectAltNames when InsecureSkipVerify is "
                "set true",
            )
    if mode in ("SIMPLE", "MUTUAL") and cred:
        if any(has.values()):
            v.err(
                path,
                "cannot specify client certificates or CA certificate or CA CRL If "
                "credentialName is set",
            )
        return
    if mode == "MUTUAL":
        if not has["clientCertificate"]:
            v.err(path, "client certificate required for mutual tls")
        if not has["privateKey"]:
            v.err(path, "private key required for mutual tls")


def _validate_port_level(v: _V, path: FieldPath, settings: list[Any]) -> None:
    for i, entry in enumerate(settings):
        p = path + (i,)
        pls = _obj(entry)
        if pls is None:
            v.err(p, "traffic policy may not be null")
            continue
        if not _has(pls, "port"):
            v.err(p, "portTrafficPolicy must have valid port")
        if not any(
            _has(pls, k) for k in ("outlierDetection", "connectionPool", "loadBalancer", "tls")
        ):
            v.err(p, "port traffic policy must have at least one field")
            continue
        od = _obj(pls.get("outlierDetection"))
        _validate_outlier_detection(v, p + ("outlierDetection",), od)
        _validate_connection_pool(v, p + ("connectionPool",), pls.get("connectionPool"))
        _validate_load_balancer(v, p + ("loadBalancer",), pls.get("loadBalancer"), od)
        _validate_tls(v, p + ("tls",), pls.get("tls"))


def _validate_subset_name(name: str) -> str | None:
    if not name:
        return "subset name cannot be empty"
    if not _is_label(name):
        return f"subset name is invalid: {name}"
    return None


def _destination_rule(v: _V, spec: dict[str, Any]) -> None:
    sp: FieldPath = ("spec",)
    v.err(sp + ("host",), validate_wildcard_domain(_str(spec.get("host"))))
    _validate_traffic_policy(v, sp + ("trafficPolicy",), spec.get("trafficPolicy"))
    names: set[str] = set()
    for i, subset in enumerate(_list(spec.get("subsets"))):
        p = sp + ("subsets", i)
        s = _obj(subset)
        if s is None:
            v.err(p, "subset may not be null")
            continue
        name = _str(s.get("name"))
        if name in names:
            v.err(p + ("name",), f"duplicate subset names: {name}")
        names.add(name)
        v.err(p + ("name",), _validate_subset_name(name))
        v.errs(p + ("labels",), _validate_labels(_obj(s.get("labels")) or {}))
        _validate_traffic_policy(v, p + ("trafficPolicy",), s.get("trafficPolicy"))
    _validate_export_to(
        v,
        sp + ("exportTo",),
        _list(spec.get("exportTo")),
        service_entry=False,
        dr_with_selector=_has(spec, "workloadSelector"),
    )
    _validate_workload_selector(v, sp + ("workloadSelector",), spec.get("workloadSelector"))


# --- VirtualService (validation.go, virtualservice.go) --------------------------------------------


def _validate_regex(re_text: str, where: str) -> str | None:
    """validateStringRegexp: at most 1024 bytes, and RE2 (Go's regexp) must compile it."""
    if len(re_text.encode("utf-8", "surrogatepass")) > MAX_REGEX_BYTES:
        return f"{_q(where)}: regex is too large, max length allowed is {MAX_REGEX_BYTES}"
    error = re2_error(re_text)
    if error is None:
        return None
    return (
        f"{_q(where)}: {error}; Istio uses RE2 style regex-based match "
        "(https://github.com/google/re2/wiki/Syntax)"
    )


def _string_match_regexp(v: _V, path: FieldPath, match: Any, where: str) -> None:
    sm = _obj(match)
    if sm is None or "regex" not in sm or sm["regex"] is None:
        return
    regex = _str(sm["regex"])
    if not regex:
        v.err(path + ("regex",), f"{_q(where)}: regex string match should not be empty")
        return
    v.err(path + ("regex",), _validate_regex(regex, where))


def _string_match(v: _V, path: FieldPath, match: Any, where: str) -> None:
    sm = _obj(match)
    if sm is None:
        return
    if "prefix" in sm and sm["prefix"] is not None and not _str(sm["prefix"]):
        v.err(path + ("prefix",), f"{_q(where)}: prefix string match should not be empty")
    _string_match_regexp(v, path, sm, where)


def _header_name_or_claim(name: str) -> str | None:
    """ValidateHTTPHeaderNameOrJwtClaimRoute."""
    if not name:
        return "header name cannot be empty"
    if _is_jwt_claim(name) or name in _PSEUDO_HEADERS:
        return None
    if not _HEADER_NAME.fullmatch(name):
        return f"header name {name} is not a valid header name"
    return None


def _is_jwt_claim(name: str) -> bool:
    if not name.lower().startswith(_JWT_CLAIM):
        return False
    rest = name[len(_JWT_CLAIM) :]
    return (rest.startswith(".") and len(rest) > 1) or (
        rest.startswith("[") and rest.endswith("]") and len(rest) > 2
    )


def _is_internal_header(name: str) -> bool:
    return name.startswith(":") or name.lower() == "host"


def _is_authority_header(name: str) -> bool:
    return name.lower() in (":authority", "host")


def _header_op_name(name: str, *, authority_ok: bool) -> str | None:
    """ValidateHTTPHeaderWithAuthorityOperationName / ValidateHTTPHeaderOperationName."""
    if not name:
        return "header name cannot be empty"
    if authority_ok:
        if _is_internal_header(name) and not _is_authority_header(name):
            return f'invalid header {_q(name)}: header cannot have ":" prefix'
        return None
    if name.lower() == "host":
        return f"invalid header {_q(name)}: cannot set Host header"
    if _is_internal_header(name):
        return f'invalid header {_q(name)}: header cannot have ":" prefix'
    return None


def _header_value(value: str) -> str | None:
    """ValidateHTTPHeaderValue: no control characters, well-formed ``%VAR%`` expressions."""
    if _HEADER_VALUE_BAD.search(value):
        return f"header value configuration {value} is invalid"
    error = _header_value_syntax(value.encode("utf-8", "surrogatepass"))
    return f"header value configuration: {error}" if error else None


def _header_value_syntax(data: bytes) -> str | None:  # noqa: C901 - one state machine
    """Envoy's header formatter grammar, as istiod's validateHeaderValue walks it (bytes)."""
    literal, name, expect_array, expect_string, string, delim_or_end, args_end, var_end = range(8)
    state, pos = literal, 0
    while pos < len(data):
        ch = data[pos]
        more = pos + 1 < len(data)
        if state == literal:
            if ch == 0x25:  # %
                if not more:
                    return "invalid header configuration. Un-escaped %"
                if data[pos + 1] == 0x25:
                    pos += 1
                else:
                    state = name
        elif state == name:
            if ch == 0x25:
                state = literal
            elif ch == 0x28:  # (
                state = expect_array
        elif state == expect_array:
            if ch == 0x5B:  # [
                state = expect_string
            elif ch != 0x20:
                state = string
        elif state == delim_or_end:
            if ch == 0x2C:
                state = expect_string
            elif ch == 0x5D:
                state = args_end
            elif ch != 0x20:
                return "invalid header configuration. Expecting ',', ']', or whitespace"
        elif state == expect_string:
            if ch == 0x22:
                state = string
            elif ch != 0x20:
                return "invalid header configuration. Expecting '\"'"
        elif state == string:
            if ch == 0x5C:  # backslash
                if not more:
                    return "invalid header configuration. Un-terminated backslash in JSON string"
                pos += 1
            elif ch == 0x29:
                state = var_end
            elif ch == 0x22:
                state = delim_or_end
        elif state == args_end:
            if ch == 0x29:
                state = var_end
            elif ch != 0x20:
                return (
                    "invalid header configuration. Expecting ')' or whitespace after '{}', "
                    "but found '{}'"
                )
        elif state == var_end:
            if ch == 0x25:
                state = literal
            elif ch != 0x20:
                return "invalid header configuration. Expecting '%' or whitespace after"
        pos += 1
    if state != literal:
        text = data.decode("utf-8", "replace")
        return f"invalid header configuration. Un-terminated variable expression '{text}'"
    return None


def _header_ops(v: _V, path: FieldPath, headers: Any) -> None:
    hdr = _obj(headers)
    if hdr is None:
        return
    for side in ("request", "response"):
        ops = _obj(hdr.get(side))
        if ops is None:
            continue
        for op in ("add", "set"):
            for name, value in (_obj(ops.get(op)) or {}).items():
                p = path + (side, op, name)
                v.err(p, _header_op_name(str(name), authority_ok=side == "request"))
                v.err(p, _header_value(_str(value)))
        for i, name in enumerate(_list(ops.get("remove"))):
            v.err(path + (side, "remove", i), _header_op_name(_str(name), authority_ok=False))


def _validate_destination(v: _V, path: FieldPath, destination: Any) -> None:
    dest = _obj(destination)
    if dest is None:
        return
    host = _str(dest.get("host"))
    if host == "*":
        v.err(path + ("host",), f"invalid destination host {host}")
    else:
        v.err(path + ("host",), validate_wildcard_domain(host))
    if _str(dest.get("subset")):
        v.err(path + ("subset",), _validate_subset_name(_str(dest.get("subset"))))
    port = _obj(dest.get("port"))
    if port is not None:
        v.err(path + ("port",), _validate_port(_int(port.get("number"))))


def _route_destinations(v: _V, path: FieldPath, routes: list[Any], *, http: bool) -> None:
    total = 0
    for i, entry in enumerate(routes):
        p = path + (i,)
        rd = _obj(entry)
        if rd is None:
            v.err(p, "weight may not be nil")
            continue
        if not _has(rd, "destination"):
            v.err(p, "destination is required")
        if http:
            _header_ops(v, p + ("headers",), rd.get("headers"))
        _validate_destination(v, p + ("destination",), rd.get("destination"))
        weight = _int(rd.get("weight"))
        if weight < 0:
            v.err(p + ("weight",), f"weight {weight} < 0")
        total += weight
    if len(routes) > 1 and total == 0:
        v.err(path, "total destination weight = 0")


def _validate_gateway_names(v: _V, path: FieldPath, names: list[Any]) -> None:
    for i, entry in enumerate(names):
        name = _str(entry)
        ns, slash, gw = name.partition("/")
        if not slash:
            if "." in name:
                parts = name.split(".")
                v.warn(
                    path + (i,),
                    f"using legacy gatewayName format {_q(name)}; prefer the "
                    f"<namespace>/<name> format: {_q(parts[1] + '/' + parts[0])}",
                )
            v.err(path + (i,), validate_fqdn(name))
            return  # istiod stops at the first name without a namespace
        if not ns or not gw:
            v.err(path + (i,), "config namespace and gateway name cannot be empty")
        if not _is_label(ns):
            v.err(path + (i,), f"invalid value for namespace: {_q(ns)}")
        if not _is_label(gw):
            v.err(path + (i,), f"invalid value for gateway name: {_q(gw)}")


_CORS_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE", "*"}
)
_GRPC_STATUS = frozenset(
    {
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    }
)
_RETRY_ON = frozenset(
    {
        "5xx",
        "gateway-error",
        "reset",
        "reset-before-request",
        "connect-failure",
        "retriable-4xx",
        "refused-stream",
        "retriable-status-codes",
        "retriable-headers",
        "envoy-ratelimited",
        "http3-post-connect-failure",
        "cancelled",
        "deadline-exceeded",
        "internal",
        "resource-exhausted",
        "unavailable",
    }
)
#: The status codes Go's net/http.StatusText knows (a retryOn entry may be one of them).
_HTTP_STATUS = frozenset(
    [100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226]
    + list(range(300, 309))
    + list(range(400, 419))
    + [421, 422, 423, 424, 425, 426, 428, 429, 431, 451]
    + list(range(500, 509))
    + [510, 511]
)


def _http_status(status: int) -> str | None:
    if status < 200 or status > 600:
        return f"HTTP status {status} is not in range 200-599"
    return None


def _validate_retries(v: _V, path: FieldPath, retries: Any) -> None:
    """agent.ValidateHTTPRetry."""
    r = _obj(retries)
    if r is None:
        return
    attempts = _int(r.get("attempts"))
    if attempts < 0:
        v.err(path + ("attempts",), "attempts cannot be negative")
    if attempts == 0 and (
        _has(r, "perTryTimeout") or _str(r.get("retryOn")) or _has(r, "retryRemoteLocalities")
    ):
        v.err(path, "http retry policy configured when attempts are set to 0 (disabled)")
    if _has(r, "perTryTimeout"):
        v.duration(path + ("perTryTimeout",), r["perTryTimeout"])
    retry_on = _str(r.get("retryOn"))
    if retry_on:
        for policy in retry_on.split(","):
            code = int(policy) if re.fullmatch(r"[+-]?[0-9]{1,9}", policy) else 0
            if code not in _HTTP_STATUS and policy not in _RETRY_ON:
                v.err(path + ("retryOn",), f"{_q(policy)} is not a valid retryOn policy")
    if _has(r, "backoff"):
        v.duration(path + ("backoff",), r["backoff"])


def _validate_http_route(v: _V, path: FieldPath, route: dict[str, Any], *, delegate: bool) -> None:
    _http_route_conflicts(v, path, route, delegate=delegate)
    matches = _list(route.get("match"))
    for i, entry in enumerate(matches):
        m = _obj(entry)
        if m is None:
            continue
        mp = path + ("match", i)
        for name, header in (_obj(m.get("headers")) or {}).items():
            hp = mp + ("headers", name)
            if header is None:
                v.err(hp, f"header match {name} cannot be null")
            v.err(hp, _header_name_or_claim(str(name)))
            _string_match(v, hp, header, "headers")
        for name, header in (_obj(m.get("withoutHeaders")) or {}).items():
            hp = mp + ("withoutHeaders", name)
            v.err(hp, _header_name_or_claim(str(name)))
            # "*" is not a regex: istiod reads it as "header present".
            if _obj(header) is not None and header.get("regex") != "*":
                _string_match(v, hp, header, "withoutHeaders")
        _string_match_regexp(v, mp + ("uri",), m.get("uri"), "uri")
        for key in ("scheme", "method", "authority"):
            _string_match(v, mp + (key,), m.get(key), key)
        for name, qp in (_obj(m.get("queryParams")) or {}).items():
            _string_match(v, mp + ("queryParams", name), qp, "queryParams")
    for i, entry in enumerate(matches):
        m = _obj(entry)
        if m is None:
            continue
        mp = path + ("match", i)
        if _int(m.get("port")) != 0:
            v.err(mp + ("port",), _validate_port(_int(m.get("port"))))
        v.errs(mp + ("sourceLabels",), _validate_labels(_obj(m.get("sourceLabels")) or {}))
        _validate_gateway_names(v, mp + ("gateways",), _list(m.get("gateways")))
        source_ns = _str(m.get("sourceNamespace"))
        if source_ns and not _is_label(source_ns):
            v.err(mp + ("sourceNamespace",), f"sourceNamespace match {source_ns} is invalid")
    _header_ops(v, path + ("headers",), route.get("headers"))
    _validate_cors(v, path + ("corsPolicy",), route.get("corsPolicy"))
    _validate_fault(v, path + ("fault",), route.get("fault"))
    for key in ("mirrorPercent", "mirror_percent"):
        if _has(route, key):
            value = _int(route[key])
            if value > 100:
                v.err(
                    path + (key,), f"mirror_percent must have a max value of 100 (it has {value})"
                )
            v.warn(
                path + (key,),
                'using deprecated setting "mirrorPercent", use "mirrorPercentage" instead',
            )
    mp_obj = _obj(route.get("mirrorPercentage"))
    if mp_obj is not None:
        value = _num(mp_obj.get("value"))
        if value > 100:
            v.err(
                path + ("mirrorPercentage",),
                f"mirror_percentage must have a max value of 100 (it has {value:f})",
            )
        if value < 0:
            v.err(
                path + ("mirrorPercentage",),
                f"mirror_percentage must have a min value of 0 (it has {value:f})",
            )
    _validate_destination(v, path + ("mirror",), route.get("mirror"))
    for i, entry in enumerate(_list(route.get("mirrors"))):
        p = path + ("mirrors", i)
        mirror = _obj(entry)
        if mirror is None:
            v.err(p, "mirror cannot be null")
            continue
        if not _has(mirror, "destination"):
            v.err(p, "destination is required for mirrors")
            continue
        _validate_destination(v, p + ("destination",), mirror["destination"])
        pct = _obj(mirror.get("percentage"))
        if pct is not None:
            value = _num(pct.get("value"))
            if value > 100:
                v.err(
                    p + ("percentage",),
                    f"mirror percentage must have a max value of 100 (it has {value:f})",
                )
            if value < 0:
                v.err(
                    p + ("percentage",),
                    f"mirror percentage must have a min value of 0 (it has {value:f})",
                )
    v.err(path + ("redirect",), _redirect_error(_obj(route.get("redirect")), matches))
    _validate_direct_response(v, path + ("directResponse",), route.get("directResponse"))
    _validate_retries(v, path + ("retries",), route.get("retries"))
    _validate_rewrite(v, path + ("rewrite",), route.get("rewrite"))
    v.err(path + ("rewrite",), _authority_rewrite_error(route))
    _route_destinations(v, path + ("route",), _list(route.get("route")), http=True)
    if _has(route, "timeout"):
        v.duration(path + ("timeout",), route["timeout"])


def _http_route_conflicts(v: _V, path: FieldPath, route: dict[str, Any], *, delegate: bool) -> None:
    name = _str(route.get("name"))
    has = {
        k: _has(route, k)
        for k in ("redirect", "fault", "rewrite", "directResponse", "delegate", "mirror")
    }
    routes = _list(route.get("route"))
    if not delegate and has["delegate"]:
        if has["redirect"]:
            v.err(path + ("redirect",), f"root HTTP route {name} must not specify redirect")
        if route.get("route") is not None:
            v.err(path + ("route",), f"root HTTP route {name} must not specify route")
        return
    if delegate and has["delegate"]:
        v.err(path + ("delegate",), "delegate HTTP route cannot contain delegate")
    if has["redirect"]:
        if routes:
            v.err(path, "HTTP route cannot contain both route and redirect")
        if has["fault"]:
            v.err(path, "HTTP route cannot contain both fault and redirect")
        if has["rewrite"]:
            v.err(path, "HTTP route rule cannot contain both rewrite and redirect")
        if has["directResponse"]:
            v.err(path, "HTTP route rule cannot contain both direct_response and redirect")
    elif has["directResponse"]:
        if routes:
            v.err(path, "HTTP route cannot contain both route and direct_response")
        if has["fault"]:
            v.err(path, "HTTP route cannot contain both fault and direct_response")
        if has["rewrite"]:
            v.err(path, "HTTP route rule cannot contain both rewrite and direct_response")
    elif not routes:
        v.err(path, "HTTP route, redirect or direct_response is required")
    if has["mirror"] and _list(route.get("mirrors")):
        v.err(path, "HTTP route cannot contain both mirror and mirrors")


def _validate_cors(v: _V, path: FieldPath, cors: Any) -> None:
    policy = _obj(cors)
    if policy is None:
        return
    for i, origin in enumerate(_list(policy.get("allowOrigins"))):
        sm = _obj(origin) or {}
        value = next((_str(sm.get(k)) for k in ("exact", "prefix", "regex") if k in sm), "")
        if not value:
            v.err(
                path + ("allowOrigins", i),
                f"'{value}' is not a valid match type for CORS allow origins",
            )
            continue
        _string_match_regexp(v, path + ("allowOrigins", i), sm, "corsPolicy.allowOrigins")
    for i, method in enumerate(_list(policy.get("allowMethods"))):
        if _str(method) not in _CORS_METHODS:
            v.err(path + ("allowMethods", i), f"{_q(_str(method))} is not a supported HTTP method")
    for key in ("allowHeaders", "exposeHeaders"):
        for i, name in enumerate(_list(policy.get(key))):
            name = _str(name)
            if not name:
                v.err(path + (key, i), "header name cannot be empty")
            elif name != "*" and not _HEADER_NAME.fullmatch(name):
                v.err(path + (key, i), f"header name {name} is not a valid header name")
    if _has(policy, "maxAge"):
        v.duration(path + ("maxAge",), policy["maxAge"])
        ns = parse_go_duration(_str(policy["maxAge"]))
        if ns is not None and ns % 1_000_000_000 > 0:
            v.err(path + ("maxAge",), "max_age duration is accurate only to seconds precision")


def _validate_fault(v: _V, path: FieldPath, fault: Any) -> None:
    f = _obj(fault)
    if f is None:
        return
    if not _has(f, "abort") and not _has(f, "delay"):
        v.err(path, "HTTP fault injection must have an abort and/or a delay")
    abort = _obj(f.get("abort"))
    if abort is not None:
        ap = path + ("abort",)
        _validate_percentage(v, ap + ("percentage",), abort.get("percentage"))
        if _has(abort, "grpcStatus"):
            if _str(abort["grpcStatus"]) not in _GRPC_STATUS:
                v.err(
                    ap + ("grpcStatus",),
                    f"gRPC status {_q(_str(abort['grpcStatus']))} is not supported. See "
                    "https://github.com/grpc/grpc/blob/master/doc/statuscodes.md for a list of "
                    "supported codes, for example 'NOT_FOUND'",
                )
        elif _has(abort, "http2Error"):
            v.err(ap + ("http2Error",), "HTTP/2 abort fault injection not supported yet")
        elif _has(abort, "httpStatus"):
            v.err(ap + ("httpStatus",), _http_status(_int(abort["httpStatus"])))
        else:
            v.warn(ap, "abort configured, but error type not set")
    delay = _obj(f.get("delay"))
    if delay is not None:
        dp = path + ("delay",)
        _validate_percentage(v, dp + ("percentage",), delay.get("percentage"))
        if _has(delay, "fixedDelay"):
            v.duration(dp + ("fixedDelay",), delay["fixedDelay"])
        elif _has(delay, "exponentialDelay"):
            v.duration(dp + ("exponentialDelay",), delay["exponentialDelay"])
            v.err(dp + ("exponentialDelay",), "exponentialDelay not supported yet")


def _redirect_error(redirect: dict[str, Any] | None, matches: list[Any]) -> str | None:
    """validateHTTPRedirect (it returns the first problem only)."""
    if redirect is None:
        return None
    uri, prefix = _str(redirect.get("uri")), _str(redirect.get("prefixRewrite"))
    if uri and prefix:
        return "redirect may only specify one of uri or prefix_rewrite"
    if prefix:
        for m in matches:
            uri_match = _obj(_obj(m) and m.get("uri"))
            if uri_match is not None and not _has(uri_match, "prefix"):
                return "redirect prefix_rewrite requires all URI matches to use prefix match type"
    has_port = _has(redirect, "port") or _has(redirect, "derivePort")
    if (
        not uri
        and not prefix
        and not _str(redirect.get("authority"))
        and not has_port
        and not _str(redirect.get("scheme"))
    ):
        return "redirect must specify URI, authority, scheme, or port"
    code = _int(redirect.get("redirectCode"))
    if code != 0 and (code < 300 or code > 399):
        return f"{code} is not a valid redirect code, must be 3xx"
    scheme = _str(redirect.get("scheme"))
    if scheme and scheme not in ("http", "https"):
        return 'invalid redirect scheme, must be "http" or "https"'
    port = _int(redirect.get("port"))
    if port > 0:
        return _validate_port(port)
    return None


def _validate_direct_response(v: _V, path: FieldPath, response: Any) -> None:
    dr = _obj(response)
    if dr is None:
        return
    body = _obj(dr.get("body"))
    if body is not None:
        if _has(body, "string"):
            size = len(_str(body["string"]).encode("utf-8", "surrogatepass"))
        else:
            size = len(_str(body.get("bytes"))) * 3 // 4  # base64 → bytes
        if size > 1024 * 1024:
            v.err(
                path + ("body",),
                "large direct_responses may impact control plane performance, "
                "must be less than 1MB",
            )
        elif size > 100 * 1024:
            v.warn(path + ("body",), "large direct_responses may impact control plane performance")
    v.err(path + ("status",), _http_status(_int(dr.get("status"))))


def _validate_rewrite(v: _V, path: FieldPath, rewrite: Any) -> None:
    rw = _obj(rewrite)
    if rw is None:
        return
    regex = _obj(rw.get("uriRegexRewrite"))
    if _str(rw.get("uri")) and regex is not None:
        v.err(path, "rewrite may only contain one of URI or UriRegexRewrite")
        return
    if not _str(rw.get("uri")) and regex is None and not _str(rw.get("authority")):
        v.err(
            path,
            "rewrite must specify at least one of URI, UriRegexRewrite, or authority. Only "
            "one of URI or UriRegexRewrite may be specified",
        )
        return
    if regex is not None:
        match, sub = _str(regex.get("match")), _str(regex.get("rewrite"))
        if not match or not sub:
            error: str | None = (
                "UriRegexRewrite requires both Rewrite and Match fields to be specified"
            )
        else:
            error = _validate_regex(match, "HTTPRewrite.UriRegexRewrite.Match")
        if error:
            v.err(path + ("uriRegexRewrite",), f"UriRegexRewrite has errors\n{error}")


def _authority_rewrite_error(route: dict[str, Any]) -> str | None:
    current = _str((_obj(route.get("rewrite")) or {}).get("authority"))
    request = _obj((_obj(route.get("headers")) or {}).get("request")) or {}
    for op in ("set", "add"):
        for name, value in (_obj(request.get(op)) or {}).items():
            if not _is_authority_header(str(name)):
                continue
            if current:
                return (
                    f"authority header cannot be set multiple times: have {_q(current)}, "
                    f"attempting to set {_q(_str(value))}"
                )
            current = _str(value)
    return None


def _host_matches(a: str, b: str) -> bool:
    """host.Name.Matches: equal, or one wildcard covers the other."""
    aw, bw = a.startswith("*"), b.startswith("*")
    if aw and bw:
        return b[1:].endswith(a[1:]) if len(a) < len(b) else a[1:].endswith(b[1:])
    if aw:
        return b.endswith(a[1:])
    if bw:
        return a.endswith(b[1:])
    return a == b


def _host_subset_of(a: str, b: str) -> bool:
    """host.Name.SubsetOf."""
    aw, bw = a.startswith("*"), b.startswith("*")
    if aw:
        return bw and len(a) >= len(b) and a[1:].endswith(b[1:])
    if bw:
        return a.endswith(b[1:])
    return a == b


def _virtual_service(v: _V, spec: dict[str, Any]) -> None:
    sp: FieldPath = ("spec",)
    hosts = [_str(h) for h in _list(spec.get("hosts"))]
    gateways = [_str(g) for g in _list(spec.get("gateways"))]
    http, tcp, tls = _list(spec.get("http")), _list(spec.get("tcp")), _list(spec.get("tls"))
    if not hosts:
        if gateways:
            v.err(sp + ("gateways",), "delegate virtual service must have no gateways specified")
        if tls:
            v.err(sp + ("tls",), "delegate virtual service must have no tls route specified")
        if tcp:
            v.err(sp + ("tcp",), "delegate virtual service must have no tcp route specified")
    applies_to_gateway = False
    if gateways:
        _validate_gateway_names(v, sp + ("gateways",), gateways)
        applies_to_gateway = "mesh" not in gateways
    applies_to_mesh = not applies_to_gateway
    if not applies_to_gateway:
        for i, route in enumerate(http):
            for j, m in enumerate(_list(_obj(route) and route.get("match"))):
                for key in ("headers", "withoutHeaders"):
                    for name in _obj(_obj(m) and m.get(key)) or {}:
                        if _is_jwt_claim(str(name)):
                            v.err(
                                sp + ("http", i, "match", j, key, name),
                                f"JWT claim based routing (key: {name}) is only supported for "
                                f"gateway, found no gateways: [{' '.join(gateways)}]",
                            )
    sni = any(
        _list(_obj(m) and m.get("sniHosts"))
        for route in tls
        for m in _list(_obj(route) and route.get("match"))
    )
    all_valid = True
    for i, host in enumerate(hosts):
        error = (
            _gateway_domain_error(host, sni=sni)
            if applies_to_gateway
            else validate_wildcard_domain(host)
        )
        if error:
            if not _is_ip(host):
                v.err(sp + ("hosts", i), error)
                all_valid = False
        elif applies_to_mesh and host == "*":
            v.err(
                sp + ("hosts", i),
                "wildcard host * is not allowed for virtual services bound to the mesh gateway",
            )
            all_valid = False
    if all_valid:
        for i, a in enumerate(hosts):
            for b in hosts[i + 1 :]:
                if _host_matches(a, b):
                    v.err(sp + ("hosts", i), f"duplicate hosts in virtual service: {a} & {b}")
    if not http and not tcp and not tls:
        v.err(sp, "http, tcp or tls must be provided in virtual service")
    for i, route in enumerate(http):
        r = _obj(route)
        if r is None:
            v.err(sp + ("http", i), "http route may not be null")
            continue
        _validate_http_route(v, sp + ("http", i), r, delegate=not hosts)
    for i, route in enumerate(tls):
        _validate_tls_route(v, sp + ("tls", i), _obj(route), hosts, applies_to_gateway)
    for i, route in enumerate(tcp):
        r = _obj(route)
        if r is None:
            continue
        for j, m in enumerate(_list(r.get("match"))):
            _validate_l4_match(v, sp + ("tcp", i, "match", j), m, "tcp match may not be nil")
        if not _list(r.get("route")):
            v.err(sp + ("tcp", i), "TCP route is required")
        _route_destinations(v, sp + ("tcp", i, "route"), _list(r.get("route")), http=False)
    _validate_export_to(
        v,
        sp + ("exportTo",),
        _list(spec.get("exportTo")),
        service_entry=False,
        dr_with_selector=False,
    )


def _gateway_domain_error(domain: str, *, sni: bool) -> str | None:
    """ValidateWildcardDomainForVirtualServiceBoundToGateway (``outbound_.PORT_._.HOST`` SNIs)."""
    bad = _dns1123_preconditions(domain)
    if bad:
        return bad
    if sni and domain.startswith("outbound_"):
        parts = domain.split("_")
        fmt = "outbound_.<port>_._.<hostname>"
        if len(parts) < 4:
            return f"domain name {domain} invalid, should follow '{fmt}' format"
        direction, port, host = parts[0], parts[1].strip("."), parts[3].strip(".")
        if direction != "outbound":
            return f"domain name {_q(domain)} invalid (label {_q(direction)} invalid)"
        if not re.search(r"[0-9]", port):
            return (
                f"domain name {_q(domain)} invalid (label {_q(port)} invalid). should follow "
                f"{fmt} format"
            )
        if not re.search(r"[a-zA-Z]", host):
            return (
                f"domain name {_q(domain)} invalid (label {_q(host)} invalid). should follow "
                f"{fmt} format"
            )
        return None
    return validate_wildcard_domain(domain)


def _validate_l4_match(v: _V, path: FieldPath, match: Any, null_message: str) -> None:
    m = _obj(match)
    if m is None:
        v.err(path, null_message)
        return
    for k, subnet in enumerate(_list(m.get("destinationSubnets"))):
        v.err(path + ("destinationSubnets", k), _validate_ip_subnet(_str(subnet)))
    if _int(m.get("port")) != 0:
        v.err(path + ("port",), _validate_port(_int(m.get("port"))))
    v.errs(path + ("sourceLabels",), _validate_labels(_obj(m.get("sourceLabels")) or {}))
    _validate_gateway_names(v, path + ("gateways",), _list(m.get("gateways")))


def _validate_tls_route(
    v: _V, path: FieldPath, route: dict[str, Any] | None, hosts: list[str], gateway: bool
) -> None:
    if route is None:
        return
    matches = _list(route.get("match"))
    if not matches:
        v.err(path, "TLS route must have at least one match condition")
    for j, entry in enumerate(matches):
        mp = path + ("match", j)
        m = _obj(entry)
        if m is None:
            v.err(mp, "TLS match may not be null")
            continue
        sni_hosts = [_str(h) for h in _list(m.get("sniHosts"))]
        if not sni_hosts:
            v.err(mp + ("sniHosts",), "TLS match must have at least one SNI host")
        for k, sni in enumerate(sni_hosts):
            _validate_sni_host(v, mp + ("sniHosts", k), sni, hosts, gateway)
        _validate_l4_match(v, mp, m, "TLS match may not be null")
    if not _list(route.get("route")):
        v.err(path, "TLS route is required")
    _route_destinations(v, path + ("route",), _list(route.get("route")), http=False)


def _validate_sni_host(v: _V, path: FieldPath, sni: str, hosts: list[str], gateway: bool) -> None:
    error = _gateway_domain_error(sni, sni=True) if gateway else validate_wildcard_domain(sni)
    if error:
        if _is_ip(sni):
            v.warn(
                path,
                f"using an IP address ({_q(sni)}) goes against SNI spec and most clients do "
                "not support this",
            )
        else:
            v.err(path, error)
        return
    if not any(_host_subset_of(sni, h) for h in hosts):
        v.err(
            path,
            f"SNI host {_q(sni)} is not a compatible subset of any of the virtual service "
            f"hosts: [{', '.join(hosts)}]",
        )


# --- ServiceEntry and WorkloadEntry ---------------------------------------------------------------


def _validate_workload_entry(
    v: _V, path: FieldPath, we: dict[str, Any], service_ports: set[str] | None, *, allow_fqdn: bool
) -> None:
    addr, network = _str(we.get("address")), _str(we.get("network"))
    if not addr:
        if not network:
            v.err(path, "address is required")
            return
        v.warn(path, f"address is unset with network {_q(network)}")
    ports = _obj(we.get("ports")) or {}
    unix = addr.startswith("unix://")
    if unix:
        v.err(path + ("address",), _validate_unix_address(addr[len("unix://") :]))
        if ports:
            v.err(path + ("ports",), f"unix endpoint {addr} must not include ports")
    elif addr and not _is_ip(addr):
        if not allow_fqdn:
            v.err(path + ("address",), f"endpoint address {_q(addr)} is not a valid IP address")
        elif validate_fqdn(addr):
            v.err(
                path + ("address",),
                f"endpoint address {_q(addr)} is not a valid FQDN or an IP address",
            )
    _endpoint_ports(v, path + ("ports",), ports, service_ports)
    v.errs(path + ("labels",), _validate_labels(_obj(we.get("labels")) or {}))
    if unix and service_ports is not None and len(service_ports) != 1:
        v.err(path, "exactly 1 service port required for unix endpoints")


def _endpoint_ports(
    v: _V, path: FieldPath, ports: Mapping[str, Any], service_ports: set[str] | None
) -> None:
    for name, port in ports.items():
        number = _int(port)
        if service_ports is not None and name not in service_ports:
            v.err(path + (name,), f"endpoint port {number} is not defined by the service entry")
        v.err(path + (name,), _validate_port_name(str(name)))
        v.err(path + (name,), _validate_port(number))


def _service_entry(v: _V, spec: dict[str, Any], labels: Mapping[str, str]) -> None:
    sp: FieldPath = ("spec",)
    if not _alpha_selector(
        v, sp + ("workloadSelector",), spec.get("workloadSelector"), "service entry"
    ):
        return
    resolution = _str(spec.get("resolution")) or "NONE"
    hosts = [_str(h) for h in _list(spec.get("hosts"))]
    addresses = [_str(a) for a in _list(spec.get("addresses"))]
    endpoints = _list(spec.get("endpoints"))
    if _has(spec, "workloadSelector") and spec.get("endpoints") is not None:
        v.err(sp, "only one of WorkloadSelector or Endpoints is allowed in Service Entry")
    if not hosts:
        v.err(sp + ("hosts",), "service entry must have at least one host")
    for i, host in enumerate(hosts):
        if host == "*":
            v.err(sp + ("hosts", i), f"invalid host {host}")
            continue
        v.err(sp + ("hosts", i), validate_wildcard_domain(host))
        if (
            resolution != "DYNAMIC_DNS"
            and "*" in host
            and len(host) != 1
            and not host.startswith("*.")
        ):
            v.warn(sp + ("hosts", i), f"partial wildcard {_q(host)} not allowed")
    cidr = False
    for i, address in enumerate(addresses):
        cidr = cidr or "/" in address
        v.err(sp + ("addresses", i), _validate_ip_subnet(address))
    if cidr and resolution not in ("NONE", "STATIC"):
        v.err(
            sp + ("addresses",), "CIDR addresses are allowed only for NONE/STATIC resolution types"
        )
    auto_allocate = (
        resolution != "NONE"
        and not addresses
        and labels.get("networking.istio.io/enable-autoallocate-ip", "").lower() != "false"
    )
    numbers: set[int] = set()
    names: set[str] = set()
    ports = _list(spec.get("ports"))
    for i, entry in enumerate(ports):
        pp = sp + ("ports", i)
        port = _obj(entry)
        if port is None:
            v.err(pp, "service entry port may not be null")
            continue
        name, number, proto = (
            _str(port.get("name")),
            _int(port.get("number")),
            _str(port.get("protocol")),
        )
        if name in names:
            v.err(pp + ("name",), f"service entry port name {_q(name)} already defined")
        if number in numbers:
            v.err(pp + ("number",), f"service entry port {number} already defined")
        names.add(name)
        numbers.add(number)
        if _int(port.get("targetPort")) != 0:
            v.err(pp + ("targetPort",), _validate_port(_int(port.get("targetPort"))))
        if not addresses and not auto_allocate and proto in ("", "TCP"):
            v.warn(
                pp,
                "addresses are required for ports serving TCP (or unset) protocol when IP "
                "Autoallocation is not enabled",
            )
        v.err(pp + ("name",), _validate_port_name(name))
        v.err(pp + ("protocol",), _validate_protocol(proto))
        v.err(pp + ("number",), _validate_port(number))
    if resolution == "NONE":
        if endpoints:
            v.err(sp + ("endpoints",), "no endpoints should be provided for resolution type none")
        if _has(spec, "workloadSelector"):
            v.warn(
                sp + ("workloadSelector",),
                "workloadSelector should not be set when resolution mode is NONE",
            )
    elif resolution == "STATIC":
        for i, ep in enumerate(endpoints):
            if _obj(ep) is None:
                v.err(sp + ("endpoints", i), "endpoint cannot be nil")
                continue
            _validate_workload_entry(v, sp + ("endpoints", i), ep, names, allow_fqdn=False)
    elif resolution in ("DNS", "DNS_ROUND_ROBIN"):
        if not endpoints:
            for i, host in enumerate(hosts):
                error = validate_fqdn(host)
                if error:
                    v.err(
                        sp + ("hosts", i),
                        "hosts must be FQDN or contain only prefix wildcards if no "
                        f"endpoints are provided for resolution mode {resolution}, "
                        f"{error}",
                    )
                    break
        if resolution == "DNS_ROUND_ROBIN" and len(endpoints) > 1:
            v.err(
                sp + ("endpoints",),
                f"there must only be 0 or 1 endpoint for resolution mode {resolution}",
            )
        for i, entry in enumerate(endpoints):
            ep = _obj(entry)
            ep_path = sp + ("endpoints", i)
            if ep is None:
                v.err(ep_path, "endpoint cannot be nil")
                continue
            addr = _str(ep.get("address"))
            if not _is_ip(addr) and validate_fqdn(addr):
                v.err(
                    ep_path + ("address",),
                    f"endpoint address {_q(addr)} is not a valid FQDN or an IP address",
                )
            v.errs(ep_path + ("labels",), _validate_labels(_obj(ep.get("labels")) or {}))
            _endpoint_ports(v, ep_path + ("ports",), _obj(ep.get("ports")) or {}, names)
        if addresses and len(hosts) > 1:
            for i, entry in enumerate(ports):
                port = _obj(entry)
                if port is not None and _protocol(_str(port.get("protocol"))) in (
                    "TCP",
                    "HTTPS",
                    "TLS",
                    "Mongo",
                    "Redis",
                    "MySQL",
                ):
                    v.warn(
                        sp + ("ports", i),
                        "service entry can not have more than one host specified "
                        "simultaneously with address and tcp port",
                    )
                    break
    elif resolution == "DYNAMIC_DNS":
        for i, host in enumerate(hosts):
            if not host.startswith("*"):
                v.err(
                    sp + ("hosts", i), f"host must be wildcarded for resolution mode {resolution}"
                )
        if addresses:
            v.err(
                sp + ("addresses",),
                f"addresses cannot be set for resolution type {resolution}. HTTP "
                "route domains will only be generatedfrom the hosts field values",
            )
        if endpoints:
            v.err(
                sp + ("endpoints",),
                f"endpoints cannot be set for resolution type {resolution}. "
                "Destination IP address determined from hostsfield values",
            )
        for i, entry in enumerate(ports):
            port = _obj(entry)
            if port is not None and _protocol(_str(port.get("protocol"))) not in (
                "HTTP",
                "TLS",
                "GRPC",
                "HTTP2",
            ):
                v.err(
                    sp + ("ports", i, "protocol"),
                    "only HTTP, TLS, GRPC, and HTTP2 protocols are "
                    f"supported for resolution type {resolution}",
                )
        waypoint = labels.get("istio.io/use-waypoint", "")
        if spec.get("location") == "MESH_INTERNAL" and waypoint and waypoint.lower() != "none":
            v.err(
                sp + ("location",),
                f"location MESH_INTERNAL with resolution type {resolution} is "
                "not supported when using waypoints",
            )
    if resolution != "NONE" and len(hosts) > 1:
        for i, entry in enumerate(ports):
            port = _obj(entry)
            proto = _protocol(_str(port.get("protocol"))) if port is not None else ""
            if port is not None and not _is_http(proto) and not _is_tls(proto):
                v.err(sp + ("ports", i), "multiple hosts provided with non-HTTP, non-TLS ports")
                break
    _validate_export_to(
        v,
        sp + ("exportTo",),
        _list(spec.get("exportTo")),
        service_entry=True,
        dr_with_selector=False,
    )


# --- Sidecar --------------------------------------------------------------------------------------


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


def _sidecar_port(
    v: _V, path: FieldPath, port: dict[str, Any], bind: str, *, egress: bool, capture: str
) -> None:
    name, number = _str(port.get("name")), _int(port.get("number"))
    if name:
        v.err(path + ("name",), _validate_port_name(name))
    if egress and number == 0:
        v.err(path + ("protocol",), _validate_protocol(_str(port.get("protocol"))))
        if not bind.startswith("unix://"):
            v.err(path, "sidecar: ports with 0 value must have a unix domain socket bind address")
        else:
            v.err(path, _validate_unix_address(bind[len("unix://") :]))
        if capture not in ("", "DEFAULT", "NONE"):
            v.err(
                path, "sidecar: captureMode must be DEFAULT/NONE for unix domain socket listeners"
            )
        return
    v.err(path + ("protocol",), _validate_protocol(_str(port.get("protocol"))))
    v.err(path + ("number",), _validate_port(number))
    if bind:
        v.err(path, _validate_ip(bind))


def _sidecar_ingress(v: _V, sp: FieldPath, ingress: list[Any]) -> None:
    seen: set[int] = set()
    for i, entry in enumerate(ingress):
        ip = sp + ("ingress", i)
        ing = _obj(entry)
        if ing is None:
            v.err(ip, "sidecar: ingress may not be null")
            continue
        port = _obj(ing.get("port"))
        if port is None:
            v.err(ip, "sidecar: port is required for ingress listeners")
            continue
        if _int(port.get("targetPort")) > 0:
            v.err(ip + ("port", "targetPort"), "targetPort has no impact on Sidecars")
        _sidecar_port(v, ip + ("port",), port, _str(ing.get("bind")), egress=False, capture="")
        number = _int(port.get("number"))
        if number in seen:
            v.err(ip + ("port",), "sidecar: ports on IP bound listeners must be unique")
        seen.add(number)
        endpoint = _str(ing.get("defaultEndpoint"))
        if endpoint:
            ep = ip + ("defaultEndpoint",)
            if endpoint.startswith("unix://"):
                v.err(ep, _validate_unix_address(endpoint[len("unix://") :]))
            else:
                host, sport, error = _split_host_port(endpoint)
                v.err(ep, error)
                if host and host not in ("127.0.0.1", "0.0.0.0", "::1", "::"):
                    v.err(
                        ep,
                        "sidecar: defaultEndpoint must be of form 127.0.0.1:<port>,0.0.0.0:<port>,"
                        "[::1]:port,[::]:port,unix://filepath or unset",
                    )
                if re.fullmatch(r"[+-]?[0-9]{1,18}", sport):
                    v.err(ep, _validate_port(int(sport)))
                else:
                    v.err(
                        ep,
                        f"sidecar: defaultEndpoint port ({sport}) is not a number: strconv.Atoi: "
                        f"parsing {_q(sport)}: invalid syntax",
                    )
        tls = _obj(ing.get("tls"))
        if tls is not None:
            tp = ip + ("tls",)
            for key, message in (
                ("subjectAltNames", "sidecar: subjectAltNames is not supported in ingress tls"),
                ("credentialNames", "sidecar: credentialNames is not currently supported"),
                ("tlsCertificates", "sidecar: tls_certificates is not currently supported"),
            ):
                if _list(tls.get(key)):
                    v.err(tp + (key,), message)
            if tls.get("httpsRedirect") is True:
                v.err(tp + ("httpsRedirect",), "sidecar: httpsRedirect is not supported")
            if _str(tls.get("credentialName")):
                v.err(
                    tp + ("credentialName",), "sidecar: credentialName is not currently supported"
                )
            mode = _str(tls.get("mode")) or "PASSTHROUGH"
            if mode in ("ISTIO_MUTUAL", "AUTO_PASSTHROUGH"):
                v.err(
                    tp + ("mode",),
                    f"configuration is invalid: cannot set mode to {mode} in sidecar ingress tls",
                )
            if not _is_tls(_protocol(_str(port.get("protocol")))):
                v.err(tp, "server cannot have TLS settings for non HTTPS/TLS ports")
            _validate_server_tls(v, tp, tls)
        _validate_connection_pool(v, ip + ("connectionPool",), ing.get("connectionPool"))
        pool = _obj(ing.get("connectionPool"))
        if (
            pool is not None
            and _has(pool, "http")
            and not _is_http(_protocol(_str(port.get("protocol"))))
        ):
            v.warn(
                ip + ("connectionPool", "http"),
                f"sidecar: HTTP connection pool settings are configured for port {number} "
                f"({_q(_str(port.get('name')))}) but its protocol is not HTTP "
                f"({_str(port.get('protocol'))}); only TCP settings will apply",
            )


def _validate_server_tls(v: _V, path: FieldPath, tls: dict[str, Any]) -> None:
    """validateTLSOptions, for the parts a Sidecar ingress can reach."""
    mode = _str(tls.get("mode")) or "PASSTHROUGH"
    ciphers = [_str(c) for c in _list(tls.get("cipherSuites"))]
    if _str(tls.get("minProtocolVersion")) in ("TLSV1_0", "TLSV1_1") and not ciphers:
        v.warn(
            path,
            "TLS version below TLSV1_2 require setting compatible ciphers as by default they "
            "no longer include compatible ciphers.",
        )
    dupes = sorted({c for c in ciphers if ciphers.count(c) > 1})
    if dupes:
        v.warn(path + ("cipherSuites",), f"ignoring duplicate cipher suites: [{' '.join(dupes)}]")
    cert, key, ca = (
        _str(tls.get(k)) for k in ("serverCertificate", "privateKey", "caCertificates")
    )
    if mode in ("PASSTHROUGH", "AUTO_PASSTHROUGH") and (
        _str(tls.get("caCrl")) or cert or key or ca or _str(tls.get("credentialName"))
    ):
        v.warn(path, f"{mode} mode does not use certificates, they will be ignored")
    if mode in ("SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL"):
        prefix = "SIMPLE TLS" if mode == "SIMPLE" else "MUTUAL TLS"
        if mode != "SIMPLE" and not ca:
            v.err(path, f"{prefix} requires a client CA bundle")
        if not cert:
            v.err(path, f"{prefix} requires a server certificate")
        if not key:
            v.err(path, f"{prefix} requires a private key")
    if _str(tls.get("caCrl")) and mode == "SIMPLE":
        v.err(path + ("caCrl",), "CRL is not supported with SIMPLE TLS")


def _sidecar_egress(v: _V, sp: FieldPath, egress: list[Any]) -> None:
    ports: set[int] = set()
    binds: set[str] = set()
    catch_all = False
    for i, entry in enumerate(egress):
        ep = sp + ("egress", i)
        eg = _obj(entry)
        if eg is None:
            v.err(ep, "egress listener may not be null")
            continue
        port = _obj(eg.get("port"))
        if port is None:
            if not catch_all:
                if i == len(egress) - 1:
                    catch_all = True
                else:
                    v.err(
                        ep,
                        "sidecar: the egress listener with empty port should be the last "
                        "listener in the list",
                    )
            else:
                v.err(ep, "sidecar: egress can have only one listener with empty port")
                continue
        else:
            if _int(port.get("targetPort")) > 0:
                v.err(ep + ("port", "targetPort"), "targetPort has no impact on Sidecars")
            bind = _str(eg.get("bind"))
            _sidecar_port(
                v, ep + ("port",), port, bind, egress=True, capture=_str(eg.get("captureMode"))
            )
            number = _int(port.get("number"))
            if number == 0:
                if bind in binds:
                    v.err(
                        ep + ("bind",),
                        "sidecar: unix domain socket values for listeners must be unique",
                    )
                binds.add(bind)
            else:
                if number in ports:
                    v.err(ep + ("port",), "sidecar: ports on IP bound listeners must be unique")
                ports.add(number)
        hosts = [_str(h) for h in _list(eg.get("hosts"))]
        if not hosts:
            v.err(ep + ("hosts",), "sidecar: egress listener must contain at least one host")
            continue
        by_ns: dict[str, set[str]] = {}
        for k, host in enumerate(hosts):
            hp = ep + ("hosts", k)
            ns, slash, svc = host.partition("/")
            if slash and not ns.startswith("~"):
                ns = v.namespace if ns == "." else ns
                known = by_ns.setdefault(ns, set())
                if (svc != "*" and (svc in known or "*" in known)) or (svc == "*" and known):
                    v.warn(hp, f"duplicated egress host: {host}")
                known.add(svc)
            v.errs(hp, _namespace_slash_host(host))
        if "*" in by_ns.get("*", set()) and len(by_ns) != 1:
            v.warn(ep + ("hosts",), "`*/*` host select all resources, no other hosts can be added")


def _namespace_slash_host(hostname: str) -> list[str]:
    """agent.ValidateNamespaceSlashWildcardHostname for a Sidecar (``ns/dnsName``)."""
    ns, slash, name = hostname.partition("/")
    if not slash:
        return ["host must be of form namespace/dnsName"]
    errors = []
    if not ns or not name:
        errors.append("config namespace and dnsName in host entry cannot be empty")
    bare = ns[1:] if ns.startswith("~") else ns
    if bare not in ("", "*", ".") and not _is_label(bare):
        errors.append(f"invalid namespace value {_q(ns)} in sidecar")
    if name != "*" and "." not in name:
        errors.append("short names (non FQDN) are not allowed")
    error = validate_wildcard_domain(name)
    if error:
        errors.append(error)
        if not _is_ip(name):
            errors.append(error)
    if "*" in name and len(name) != 1 and not name.startswith("*."):
        errors.append(f"partial wildcard {_q(name)} not allowed")
    return errors


def _sidecar(v: _V, spec: dict[str, Any]) -> None:
    sp: FieldPath = ("spec",)
    if not _alpha_selector(v, sp + ("workloadSelector",), spec.get("workloadSelector"), "sidecar"):
        return
    ingress, egress = _list(spec.get("ingress")), _list(spec.get("egress"))
    if (
        not ingress
        and not egress
        and not _has(spec, "outboundTrafficPolicy")
        and not _has(spec, "inboundConnectionPool")
    ):
        v.findings.clear()  # istiod returns this error alone
        v.err(sp, "sidecar: empty configuration provided")
        return
    _sidecar_ingress(v, sp, ingress)
    _validate_connection_pool(v, sp + ("inboundConnectionPool",), spec.get("inboundConnectionPool"))
    _sidecar_egress(v, sp, egress)
    otp = _obj(spec.get("outboundTrafficPolicy"))
    proxy = _obj(otp.get("egressProxy")) if otp is not None else None
    if otp is not None and proxy is not None:
        pp = sp + ("outboundTrafficPolicy", "egressProxy")
        if _str(otp.get("mode")) != "ALLOW_ANY":
            v.err(
                pp,
                "sidecar: egress_proxy must be set only with ALLOW_ANY outbound_traffic_policy "
                "mode",
            )
            return
        v.err(pp + ("host",), validate_fqdn(_str(proxy.get("host"))))
        if not _has(proxy, "port"):
            v.err(pp, "sidecar: egress_proxy port must be non-nil")
            return
        _validate_destination(v, pp, proxy)


# --- PeerAuthentication ---------------------------------------------------------------------------


def _peer_authentication(v: _V, spec: dict[str, Any]) -> None:
    sp: FieldPath = ("spec",)
    selector = _obj(spec.get("selector"))
    empty_selector = selector is None or not _obj(selector.get("matchLabels"))
    port_level = spec.get("portLevelMtls")
    if empty_selector and _obj(port_level):
        v.err(
            sp + ("portLevelMtls",),
            "mesh/namespace peer authentication cannot have port level mTLS",
        )
    if port_level is not None and not _obj(port_level):
        v.err(
            sp + ("portLevelMtls",), "port level mTLS, if defined, must have at least one element"
        )
    for key in _obj(port_level) or {}:
        port = int(key) if re.fullmatch(r"[0-9]{1,9}", str(key)) else 0
        if port <= 0 or port > 65535:
            v.err(sp + ("portLevelMtls", key), "port must be in range 1..65535")
    _validate_workload_selector(v, sp + ("selector",), spec.get("selector"))


# --- entry points ---------------------------------------------------------------------------------

_REJECTED_ANNOTATIONS = {
    "internal.istio.io/webhook-always-reject": "annotation found, rejecting",
    "internal.istio.io/parent-namespace": "annotation found, this may not be set by users",
    "internal.istio.io/parents": "annotation found, this may not be set by users",
}


def validate_webhook(kind: str, obj: Mapping[str, Any]) -> list[Finding]:
    """Run istiod's webhook checks for one Istio object (metadata + spec); never raises.

    Example:
        >>> dr = {"metadata": {"name": "r", "namespace": "ns"},
        ...       "spec": {"host": "reviews", "subsets": [{"name": "v1_a"}]}}
        >>> [(f.path, f.message) for f in validate_webhook("DestinationRule", dr)]
        [(('spec', 'subsets', 0, 'name'), 'subset name is invalid: v1_a')]
    """
    meta = _obj(obj.get("metadata")) or {}
    namespace = _str(meta.get("namespace")) or "default"
    v = _V(namespace)
    annotations = _obj(meta.get("annotations")) or {}
    for key, text in _REJECTED_ANNOTATIONS.items():
        if key in annotations:
            v.err(("metadata", "annotations", key), f"{_q(key)} {text}")
    if "istio.io/dry-run" in annotations:
        v.err(
            ("metadata", "annotations", "istio.io/dry-run"),
            f"{namespace}/{_str(meta.get('name'))} has unsupported annotation istio.io/dry-run, "
            "please remove the annotation",
        )
    if v.findings:
        return v.findings
    spec = _obj(obj.get("spec")) or {}
    labels = {k: val for k, val in (_obj(meta.get("labels")) or {}).items() if isinstance(val, str)}
    check = {
        "DestinationRule": _destination_rule,
        "VirtualService": _virtual_service,
        "Sidecar": _sidecar,
        "PeerAuthentication": _peer_authentication,
    }.get(kind)
    if check is not None:
        check(v, spec)
    elif kind == "ServiceEntry":
        _service_entry(v, spec, labels)
    elif kind == "WorkloadEntry":
        _validate_workload_entry(v, ("spec",), spec, None, allow_fqdn=True)
    elif kind == "Gateway":
        from meshlens.resources.gateway_webhook import validate_gateway

        validate_gateway(v, _str(meta.get("name")), spec)
    # istiod may append one error twice (a sidecar host that is neither a domain nor an IP).
    return list(dict.fromkeys(v.findings))


# --- the API server's ObjectMeta checks -----------------------------------------------------------

_DNS1123_SUBDOMAIN = re.compile(
    r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*"
)
_DNS1123_LABEL_LOWER = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?")
_DNS1035_LABEL = re.compile(r"[a-z](?:[-a-z0-9]*[a-z0-9])?")
_K8S_NAME = re.compile(_QUALIFIED)

_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character (e.g. "
    "'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start "
    "with an alphabetic character, and end with an alphanumeric character (e.g. "
    "'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
_NAME_PART_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start "
    "and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
    "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)

#: Kinds whose metadata.name the API server checks as a DNS-1035 label, or as a DNS-1123 label;
#: every other kind (Istio CRDs included) needs a DNS-1123 subdomain.
_NAME_DNS1035 = frozenset({"Service"})
_NAME_LABEL = frozenset({"Namespace"})


def _invalid(path: FieldPath, value: str, why: str) -> Problem:
    return Problem(path, "ML0106", f"{render_field(path)}: Invalid value: {_q(value)}: {why}")


def _qualified_name_errors(key: str) -> list[str]:
    prefix, slash, name = key.rpartition("/")
    errors = []
    if slash:
        if not prefix:
            errors.append("prefix part must be non-empty")
        elif len(prefix) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(prefix):
            errors.append(f"prefix part {_SUBDOMAIN_MSG}")
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > 63:
        errors.append("name part must be no more than 63 characters")
    elif not _K8S_NAME.fullmatch(name):
        errors.append(_NAME_PART_MSG)
    return errors


def validate_metadata(kind: str, meta: Mapping[str, Any], *, namespaced: bool) -> list[Problem]:
    """The API server's ObjectMeta checks: name, namespace, label keys and values, annotation keys.

    A name with ``|``, ``:``, a space or an upper-case letter never reaches istiod, so it can
    never appear in an Envoy cluster name.

    Example:
        >>> [p.message[:48] for p in validate_metadata("Service", {"name": "Reviews"},
        ...                                           namespaced=True)]
        ['metadata.name: Invalid value: "Reviews": a DNS-1']
    """
    problems: list[Problem] = []
    name = _str(meta.get("name"))
    if kind in _NAME_DNS1035:
        if len(name) > 63:
            problems.append(
                _invalid(("metadata", "name"), name, "must be no more than 63 characters")
            )
        elif not _DNS1035_LABEL.fullmatch(name):
            problems.append(_invalid(("metadata", "name"), name, _DNS1035_MSG))
    elif kind in _NAME_LABEL:
        if len(name) > 63:
            problems.append(
                _invalid(("metadata", "name"), name, "must be no more than 63 characters")
            )
        elif not _DNS1123_LABEL_LOWER.fullmatch(name):
            problems.append(_invalid(("metadata", "name"), name, _LABEL_MSG))
    elif len(name) > 253:
        problems.append(_invalid(("metadata", "name"), name, "must be no more than 253 characters"))
    elif not _DNS1123_SUBDOMAIN.fullmatch(name):
        problems.append(_invalid(("metadata", "name"), name, _SUBDOMAIN_MSG))
    ns = meta.get("namespace")
    if (
        namespaced
        and isinstance(ns, str)
        and ns
        and (len(ns) > 63 or not _DNS1123_LABEL_LOWER.fullmatch(ns))
    ):
        problems.append(_invalid(("metadata", "namespace"), ns, _LABEL_MSG))
    for key, value in (_obj(meta.get("labels")) or {}).items():
        for why in _qualified_name_errors(str(key)):
            problems.append(_invalid(("metadata", "labels", key), str(key), why))
        text = _str(value)
        if len(text) > 63:
            problems.append(
                _invalid(("metadata", "labels", key), text, "must be no more than 63 characters")
            )
        elif not _TAG_VALUE.fullmatch(text):
            problems.append(_invalid(("metadata", "labels", key), text, _VALUE_MSG))
    for key in _obj(meta.get("annotations")) or {}:
        for why in _qualified_name_errors(str(key).lower()):
            problems.append(_invalid(("metadata", "annotations", key), str(key), why))
    return problems
