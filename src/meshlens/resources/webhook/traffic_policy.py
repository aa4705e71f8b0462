"""Traffic policies: ``ValidateTrafficPolicy`` and its parts (outlier detection, connection
pool, load balancer, port-level settings, tunnel, retry budget).

Layer: L2 (package meshlens.resources.webhook). Imports: source. Locality settings are in
:mod:`.locality`, client TLS in :mod:`.tls`. Sidecar reuses :func:`validate_connection_pool`.
"""

from __future__ import annotations

import math
from typing import Any

from meshlens.resources.webhook.core import (
    MS, Collector, as_int, as_list, as_num, as_obj, as_str, field_check, has, is_set,
    string_duration,
)
from meshlens.resources.webhook.fields import validate_ip, validate_percent, validate_port
from meshlens.resources.webhook.locality import validate_locality, validate_zone_aware
from meshlens.resources.webhook.names import validate_fqdn
from meshlens.resources.webhook.tls import validate_client_tls
from meshlens.source import FieldPath

#: The policy facets a port-level setting may carry (each also sits at the top level).
_FACETS = ("outlierDetection", "connectionPool", "loadBalancer", "tls")
_TOP_LEVEL = (*_FACETS, "portLevelSettings", "tunnel", "proxyProtocol", "retryBudget")


@field_check
def validate_traffic_policy(v: Collector, path: FieldPath, tp: dict[str, Any]) -> None:
    """ValidateTrafficPolicy: at least one field; tunnel and proxyProtocol exclude each other."""
    if not any(is_set(tp, k) for k in _TOP_LEVEL):
        v.err(path, "traffic policy must have at least one field")
        return
    if has(tp, "tunnel") and has(tp, "proxyProtocol"):
        v.err(path, "tunnel and proxyProtocol must not be set together")
        return
    _validate_facets(v, path, tp)
    _validate_port_level(v, path + ("portLevelSettings",), tp.get("portLevelSettings"))
    tunnel = as_obj(tp.get("tunnel"))
    if tunnel is not None:
        _validate_tunnel(v, path + ("tunnel",), tunnel)
    budget = as_obj(tp.get("retryBudget"))
    if budget is not None:
        string_duration(v, path + ("retryBudget", "budgetInterval"), budget.get("budgetInterval"))


def _validate_facets(v: Collector, path: FieldPath, policy: dict[str, Any]) -> None:
    od = as_obj(policy.get("outlierDetection"))
    _validate_outlier_detection(v, path + ("outlierDetection",), od)
    validate_connection_pool(v, path + ("connectionPool",), policy.get("connectionPool"))
    _validate_load_balancer(v, path + ("loadBalancer",), policy.get("loadBalancer"), od)
    validate_client_tls(v, path + ("tls",), policy.get("tls"))


def _validate_tunnel(v: Collector, tpath: FieldPath, tunnel: dict[str, Any]) -> None:
    proto = as_str(tunnel.get("protocol"))
    if proto not in ("", "CONNECT", "POST"):
        v.err(tpath + ("protocol",), 'tunnel protocol must be "CONNECT" or "POST"')
    host = as_str(tunnel.get("targetHost"))
    fqdn_err, ip_err = validate_fqdn(host), validate_ip(host)
    if fqdn_err and ip_err:
        v.err(
            tpath + ("targetHost",),
            f"tunnel target host must be valid FQDN or IP address: {fqdn_err}; {ip_err}",
        )
    port_err = validate_port(as_int(tunnel.get("targetPort")))
    if port_err:
        v.err(tpath + ("targetPort",), f"tunnel target port is invalid: {port_err}")


def _validate_outlier_detection(v: Collector, path: FieldPath, od: dict[str, Any] | None) -> None:
    if od is None:
        return
    v.durations(path, od, "baseEjectionTime")
    if as_int(od.get("consecutiveErrors")) != 0:
        v.warn(
            path + ("consecutiveErrors",),
            "outlier detection consecutive errors is deprecated, use consecutiveGatewayErrors or "
            "consecutive5xxErrors instead",
        )
    if (
        od.get("splitExternalLocalOriginErrors") is not True
        and as_int(od.get("consecutiveLocalOriginFailures")) > 0
    ):
        v.err(
            path + ("consecutiveLocalOriginFailures",),
            "outlier detection consecutive local origin failures is specified, but split external "
            "local origin errors is set to false",
        )
    v.durations(path, od, "interval")
    for key in ("maxEjectionPercent", "minHealthPercent"):
        v.err(path + (key,), validate_percent(as_int(od.get(key))))


@field_check
def validate_connection_pool(v: Collector, path: FieldPath, cp: dict[str, Any]) -> None:
    """ValidateConnectionPool (DestinationRule, and Sidecar's inbound pools)."""
    if not has(cp, "http") and not has(cp, "tcp"):
        v.err(path, "connection pool must have at least one field")
        return
    http = as_obj(cp.get("http"))
    if http is not None:
        _validate_http_pool(v, path + ("http",), http)
    tcp = as_obj(cp.get("tcp"))
    if tcp is not None:
        _validate_tcp_pool(v, path + ("tcp",), tcp)


#: HTTP pool limits that must not be negative, with the webhook's name for each.
_HTTP_LIMITS = (
    ("http1MaxPendingRequests", "http1 max pending requests"),
    ("http2MaxRequests", "http2 max requests"),
    ("maxRequestsPerConnection", "max requests per connection"),
    ("maxRetries", "max retries"),
)


def _validate_http_pool(v: Collector, hp: FieldPath, http: dict[str, Any]) -> None:
    for key, text in _HTTP_LIMITS:
        if as_int(http.get(key)) < 0:
            v.err(hp + (key,), f"{text} must be non-negative")
    v.durations(hp, http, "idleTimeout")
    if http.get("h2UpgradePolicy") == "UPGRADE" and http.get("useClientProtocol") is True:
        v.err(
            hp + ("useClientProtocol",),
            "use client protocol must not be true when H2UpgradePolicy is UPGRADE",
        )
    if as_int(http.get("maxConcurrentStreams")) < 0:
        v.err(hp + ("maxConcurrentStreams",), "max concurrent streams must be non-negative")
    keepalive = as_obj(http.get("http2KeepAlive"))
    if keepalive is not None:
        kp = hp + ("http2KeepAlive",)
        for key in ("interval", "timeout"):
            v.required_duration(kp, keepalive, key, f"http2 keepalive {key} is required")


def _validate_tcp_pool(v: Collector, tpath: FieldPath, tcp: dict[str, Any]) -> None:
    if as_int(tcp.get("maxConnections")) < 0:
        v.err(tpath + ("maxConnections",), "max connections must be non-negative")
    v.durations(tpath, tcp, "connectTimeout", "maxConnectionDuration")
    ns = string_duration(v, tpath + ("idleTimeout",), tcp.get("idleTimeout"))
    # istiod skips the check when the timeout rounds to 0ms: 0s disables it.
    if ns is not None and int(ns / MS) != 0:
        v.duration(tpath + ("idleTimeout",), tcp["idleTimeout"])
    keepalive = as_obj(tcp.get("tcpKeepalive")) or {}
    v.durations(tpath + ("tcpKeepalive",), keepalive, "time", "interval")


def _is_prime(x: int) -> bool:
    """Envoy's primality test (istiod copies it for maglev.tableSize)."""
    if x != 0 and x < 4:
        return True
    if x & 1 == 0:
        return False
    limit = math.isqrt(x)
    return all(x % f for f in range(3, limit + 1, 2))


def _validate_consistent_hash(v: Collector, cpath: FieldPath, ch: dict[str, Any]) -> None:
    cookie = as_obj(ch.get("httpCookie"))
    if cookie is not None:
        if not as_str(cookie.get("name")):
            v.err(cpath + ("httpCookie",), "name required for HttpCookie")
        names: set[str] = set()
        for i, attr in enumerate(as_list(cookie.get("attributes"))):
            name = as_str(as_obj(attr) and attr.get("name"))
            apath = cpath + ("httpCookie", "attributes", i)
            if not name:
                v.err(apath, "cookie attribute name cannot be empty")
            elif name in names:
                v.err(apath, f"duplicate cookie attribute name: {name}")
            else:
                names.add(name)
        string_duration(v, cpath + ("httpCookie", "ttl"), cookie.get("ttl"))
    if as_int(ch.get("minimumRingSize")) != 0:
        v.warn(
            cpath + ("minimumRingSize",),
            "consistent hash MinimumRingSize is deprecated, use ConsistentHashLB's RingHash "
            "configuration instead",
        )
        if has(ch, "ringHash") or has(ch, "maglev"):
            v.err(cpath, "only one of MinimumRingSize or Maglev/Ringhash can be specified")
    maglev = as_obj(ch.get("maglev"))
    if maglev is not None:
        size = as_int(maglev.get("tableSize"))
        mpath = (
            cpath + ("maglev", "tableSize") if "tableSize" in maglev else cpath + ("maglev",)
        )
        if size == 0:
            v.err(mpath, "tableSize must be set for maglev")
        if size >= 5000011:
            v.err(mpath, "tableSize must be less than 5000011 for maglev")
        if not _is_prime(size):
            v.err(mpath, "tableSize must be a prime number for maglev")


def _validate_load_balancer(
    v: Collector, path: FieldPath, balancer: Any, od: dict[str, Any] | None
) -> None:
    lb = as_obj(balancer)
    if lb is None:
        return
    ch = as_obj(lb.get("consistentHash"))
    if ch is not None:
        _validate_consistent_hash(v, path + ("consistentHash",), ch)
    if has(lb, "localityLbSetting") and has(lb, "zoneAwareLbSetting"):
        v.err(path, "only one of localityLbSetting and zoneAwareLbSetting can be set")
    validate_locality(v, path + ("localityLbSetting",), as_obj(lb.get("localityLbSetting")), od)
    validate_zone_aware(v, path + ("zoneAwareLbSetting",), as_obj(lb.get("zoneAwareLbSetting")),
                        od)
    warm = as_obj(lb.get("warmup"))
    if warm is not None:
        wpath = path + ("warmup",)
        v.required_duration(wpath, warm, "duration", "duration is required")
        if as_num(warm.get("minimumPercent")) > 100:
            v.err(
                wpath + ("minimumPercent",),
                "minimumPercent value should be less than or equal to 100",
            )
        if has(warm, "aggression") and as_num(warm.get("aggression")) <= 0:
            v.err(wpath + ("aggression",), "aggression should be greater than 0")


def _validate_port_level(v: Collector, path: FieldPath, settings: Any) -> None:
    for p, pls in v.entries(path, settings, "traffic policy may not be null"):
        if not has(pls, "port"):
            v.err(p, "portTrafficPolicy must have valid port")
        if not any(has(pls, k) for k in _FACETS):
            v.err(p, "port traffic policy must have at least one field")
            continue
        _validate_facets(v, p, pls)
