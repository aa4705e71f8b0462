"""Apply one effective TrafficPolicy to a cluster draft, block by block.

Layer: L4. Imports: compiler.draft, compiler.provenance, model.policy, durations, xDS protos.

`core/cluster_traffic_policy.go`: applyH2Upgrade, applyConnectionPool (+ applyRetryBudget),
applyOutlierDetection (+ error codes), applyLoadBalancer, applyUpstreamProxyProtocol. Each field
written records its Origin; values a user wrote that cannot be expressed (a zero) are recorded
as quirks.
"""

from __future__ import annotations

from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2, protocol_pb2
from envoy.config.core.v3 import proxy_protocol_pb2
from envoy.extensions.transport_sockets.proxy_protocol.v3 import upstream_proxy_protocol_pb2 as upp

from meshlens import durations
from meshlens.compiler import provenance as prov
from meshlens.compiler.draft import ClusterDraft
from meshlens.compiler.provenance import Origin
from meshlens.model import protocol
from meshlens.model.policy import Block

MAX_U32 = 4294967295
Cluster = cluster_pb2.Cluster


def _dur(msg: Any, value: Any) -> bool:
    nanos = durations.parse_duration(value)
    if nanos is None:
        return False
    msg.seconds, msg.nanos = durations.split(nanos)
    return True


def _pos_int(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 0


class PolicyContext:
    """What the apply functions need besides the draft (keeps parameter lists short)."""

    __slots__ = ("mesh", "options", "supports_unhealthy", "mesh_doc", "proxy_locality")

    def __init__(self, mesh: Any, options: Any, mesh_doc: Any, proxy_locality: str = "") -> None:
        self.mesh = mesh
        self.options = options
        self.mesh_doc = mesh_doc
        self.proxy_locality = proxy_locality


def _origin(block: Block | None, ctx: PolicyContext, *sub: str | int, note: str = "") -> Origin:
    if block is None:
        return prov.default(note)
    return prov.from_block(block, *sub, note=note, mesh_doc=ctx.mesh_doc)


def apply_h2_upgrade(d: ClusterDraft, cp: Block | None, port_protocol: str, ctx: PolicyContext) -> None:
    """`shouldH2Upgrade` then `setH2Options` (outbound only)."""
    http = cp.value.get("http") if cp else None
    origin: Origin | None = None
    upgrade = False
    if isinstance(http, dict) and (http.get("useClientProtocol") or
                                   http.get("h2UpgradePolicy") in ("UPGRADE", "DO_NOT_UPGRADE")):
        if http.get("useClientProtocol"):
            return
        upgrade = http.get("h2UpgradePolicy") == "UPGRADE"
        origin = _origin(cp, ctx, "http", "h2UpgradePolicy")
    elif protocol.is_http(port_protocol):
        upgrade = ctx.mesh.get("h2UpgradePolicy") == "UPGRADE"
        origin = Origin(prov.DEFAULT if not ctx.mesh.is_user_set("h2UpgradePolicy") else "mesh default",
                        None, ("h2UpgradePolicy",), ctx.mesh_doc)
    if upgrade and not d.has_protocol():
        d.http_options().explicit_http_config.http2_protocol_options.SetInParent()
        d.set("typed_extension_protocol_options.explicit_http_config.http2_protocol_options",
              origin or prov.default())
    elif upgrade and origin is not None:
        d.set("typed_extension_protocol_options.h2_upgrade_ignored",
              Origin(prov.QUIRK, origin.resource, origin.field, origin.doc,
                     "h2UpgradePolicy UPGRADE has no effect: the upstream protocol was already "
                     "chosen (auto-detected port uses the downstream protocol)"))


def apply_connection_pool(d: ClusterDraft, cp: Block | None, budget: Block | None,
                          ctx: PolicyContext) -> None:
    """`applyConnectionPool`: circuit breakers, connect timeout, keepalive, HTTP options."""
    c = d.c
    th = c.circuit_breakers.thresholds.add()
    for f in ("max_connections", "max_pending_requests", "max_requests", "max_retries"):
        getattr(th, f).value = MAX_U32
        d.set(f"circuit_breakers.thresholds[0].{f}", prov.default("math.MaxUint32"))
    if ctx.options.track_remaining_cb_metrics:
        th.track_remaining = True
    if budget is not None:
        rb = th.retry_budget
        pct = budget.value.get("percent")
        rb.budget_percent.value = float(pct) if isinstance(pct, int | float) and not isinstance(
            pct, bool) else 20.0
        d.set("circuit_breakers.thresholds[0].retry_budget.budget_percent",
              _origin(budget, ctx, "percent") if pct is not None else _origin(budget, ctx, note="default 20%"))
        mrc = _pos_int(budget.value.get("minRetryConcurrency"))
        rb.min_retry_concurrency.value = mrc or 3
        d.set("circuit_breakers.thresholds[0].retry_budget.min_retry_concurrency",
              _origin(budget, ctx, "minRetryConcurrency") if mrc else _origin(budget, ctx, note="default 3"))
        if budget.value.get("budgetInterval") is not None:
            # `applyRetryBudget` copies budgetInterval; older Envoy protos lack the field.
            if "budget_interval" in rb.DESCRIPTOR.fields_by_name:
                if _dur(rb.budget_interval, budget.value["budgetInterval"]):
                    d.set("circuit_breakers.thresholds[0].retry_budget.budget_interval",
                          _origin(budget, ctx, "budgetInterval"))
            else:
                d.set("circuit_breakers.thresholds[0].retry_budget.budget_interval",
                      Origin(prov.QUIRK, budget.resource.ref if budget.resource else None,
                             budget.path + ("budgetInterval",),
                             budget.resource.doc if budget.resource else ctx.mesh_doc,
                             "not emitted: the installed Envoy API has no "
                             "RetryBudget.budget_interval"))
    c.connect_timeout.seconds, c.connect_timeout.nanos = durations.split(ctx.mesh.connect_timeout_nanos)
    d.set("connect_timeout", Origin("mesh default" if ctx.mesh.is_user_set("connectTimeout")
                                    else prov.DEFAULT, None, ("connectTimeout",), ctx.mesh_doc,
                                    "MeshConfig.connectTimeout"))
    value = cp.value if cp else {}
    http = value.get("http") if isinstance(value.get("http"), dict) else None
    tcp = value.get("tcp") if isinstance(value.get("tcp"), dict) else None
    idle: tuple[Any, Origin] | None = None
    mrpc = mcs = 0
    keepalive = None
    mcd: tuple[Any, Origin] | None = None
    if http is not None:
        for key, f in (("http2MaxRequests", "max_requests"),
                       ("http1MaxPendingRequests", "max_pending_requests"),
                       ("maxRetries", "max_retries")):
            _threshold(d, th, http, key, f, cp, ctx, "http")
        if http.get("idleTimeout") is not None:
            idle = (http["idleTimeout"], _origin(cp, ctx, "http", "idleTimeout"))
        mrpc = _pos_int(http.get("maxRequestsPerConnection"))
        mcs = _pos_int(http.get("maxConcurrentStreams"))
        keepalive = http.get("http2KeepAlive") if isinstance(http.get("http2KeepAlive"), dict) else None
    if tcp is not None:
        if tcp.get("connectTimeout") is not None and _dur(c.connect_timeout, tcp["connectTimeout"]):
            d.set("connect_timeout", _origin(cp, ctx, "tcp", "connectTimeout"))
        _threshold(d, th, tcp, "maxConnections", "max_connections", cp, ctx, "tcp")
        if tcp.get("maxConnectionDuration") is not None:
            mcd = (tcp["maxConnectionDuration"], _origin(cp, ctx, "tcp", "maxConnectionDuration"))
        if idle is None and tcp.get("idleTimeout") is not None:
            idle = (tcp["idleTimeout"], _origin(cp, ctx, "tcp", "idleTimeout",
                                                note="tcp.idleTimeout is used because http.idleTimeout is unset"))
    apply_tcp_keepalive(d, tcp.get("tcpKeepalive") if tcp else None, cp, ctx)
    if mcd or idle or mrpc or mcs or keepalive:
        hpo = d.http_options()
        common = hpo.common_http_protocol_options
        common.SetInParent()
        if idle and _dur(common.idle_timeout, idle[0]):
            d.set("typed_extension_protocol_options.common_http_protocol_options.idle_timeout", idle[1])
        if mrpc:
            common.max_requests_per_connection.value = mrpc
            d.set("typed_extension_protocol_options.common_http_protocol_options.max_requests_per_connection",
                  _origin(cp, ctx, "http", "maxRequestsPerConnection"))
        if mcd and _dur(common.max_connection_duration, mcd[0]):
            d.set("typed_extension_protocol_options.common_http_protocol_options.max_connection_duration",
                  mcd[1])
        if d.is_h2():
            h2 = hpo.explicit_http_config.http2_protocol_options
            if mcs:
                h2.max_concurrent_streams.value = mcs
                d.set("typed_extension_protocol_options.explicit_http_config.http2_protocol_options."
                      "max_concurrent_streams", _origin(cp, ctx, "http", "maxConcurrentStreams"))
            if keepalive:
                if keepalive.get("interval") is not None:
                    _dur(h2.connection_keepalive.interval, keepalive["interval"])
                if keepalive.get("timeout") is not None:
                    _dur(h2.connection_keepalive.timeout, keepalive["timeout"])
                h2.connection_keepalive.SetInParent()
                d.set("typed_extension_protocol_options.explicit_http_config.http2_protocol_options."
                      "connection_keepalive", _origin(cp, ctx, "http", "http2KeepAlive"))
        elif mcs or keepalive:
            d.set("typed_extension_protocol_options.http2_options_ignored",
                  _origin(cp, ctx, "http", note="maxConcurrentStreams/http2KeepAlive apply only to "
                                                "explicit HTTP/2 clusters; ignored here"))
    if http is not None and http.get("useClientProtocol"):
        hpo = d.http_options()
        h1 = protocol_pb2.Http1ProtocolOptions()
        if hpo.explicit_http_config.HasField("http_protocol_options"):
            h1.CopyFrom(hpo.explicit_http_config.http_protocol_options)
        hpo.use_downstream_protocol_config.http_protocol_options.CopyFrom(h1)
        hpo.use_downstream_protocol_config.http2_protocol_options.SetInParent()
        d.set("typed_extension_protocol_options.use_downstream_protocol_config",
              _origin(cp, ctx, "http", "useClientProtocol"))


def _threshold(d: ClusterDraft, th: Any, block: dict[str, Any], key: str, field: str,
               cp: Block | None, ctx: PolicyContext, section: str) -> None:
    if key not in block:
        return
    v = _pos_int(block.get(key))
    path = f"circuit_breakers.thresholds[0].{field}"
    if v:
        getattr(th, field).value = v
        d.set(path, _origin(cp, ctx, section, key))
    else:
        d.set(path, Origin(prov.QUIRK, cp.resource.ref if cp and cp.resource else None,
                           (cp.path if cp else ()) + (section, key),
                           cp.resource.doc if cp and cp.resource else ctx.mesh_doc,
                           f"{key}: 0 cannot be expressed; istiod keeps the default 4294967295 "
                           "(0 means unlimited)"))


def apply_tcp_keepalive(d: ClusterDraft, dr_ka: Any, cp: Block | None, ctx: PolicyContext) -> None:
    """Mesh tcpKeepalive first, then the DestinationRule's fields over it (whole seconds)."""
    mesh_ka = ctx.mesh.get("tcpKeepalive")
    for ka, origin_of in ((mesh_ka, lambda k: Origin("mesh default", None, ("tcpKeepalive", k),
                                                      ctx.mesh_doc)),
                          (dr_ka, lambda k: _origin(cp, ctx, "tcp", "tcpKeepalive", *((k,) if k else ())))):
        if not isinstance(ka, dict):
            continue
        tk = d.c.upstream_connection_options.tcp_keepalive
        tk.SetInParent()
        d.set("upstream_connection_options.tcp_keepalive", origin_of(""))
        if _pos_int(ka.get("probes")):
            tk.keepalive_probes.value = ka["probes"]
            d.set("upstream_connection_options.tcp_keepalive.keepalive_probes", origin_of("probes"))
        for key, f in (("time", "keepalive_time"), ("interval", "keepalive_interval")):
            nanos = durations.parse_duration(ka.get(key))
            if nanos is not None:
                getattr(tk, f).value = nanos // 1_000_000_000
                d.set(f"upstream_connection_options.tcp_keepalive.{f}", origin_of(key))


def apply_outlier_detection(d: ClusterDraft, od: Block | None, ctx: PolicyContext,
                            forces_unhealthy: bool) -> None:
    """`applyOutlierDetection` (outbound only) and the HTTP error-code matcher."""
    if od is None:
        return
    v = od.value
    o = d.c.outlier_detection
    o.enforcing_success_rate.value = 0
    d.set("outlier_detection.enforcing_success_rate", prov.default("success-rate ejection off"))
    if isinstance(v.get("consecutive5xxErrors"), int):
        n = v["consecutive5xxErrors"]
        o.consecutive_5xx.value = n
        o.enforcing_consecutive_5xx.value = 100 if n > 0 else 0
        d.set("outlier_detection.consecutive_5xx", _origin(od, ctx, "consecutive5xxErrors"))
        d.set("outlier_detection.enforcing_consecutive_5xx", _origin(od, ctx, "consecutive5xxErrors"))
    if "consecutiveErrors" in v:
        d.set("outlier_detection.consecutive_errors_ignored",
              Origin(prov.QUIRK, od.resource.ref if od.resource else None,
                     od.path + ("consecutiveErrors",), od.resource.doc if od.resource else None,
                     "consecutiveErrors is deprecated and not compiled at all; Envoy's default "
                     "consecutive_5xx 5 applies"))
    if isinstance(v.get("consecutiveGatewayErrors"), int):
        n = v["consecutiveGatewayErrors"]
        o.consecutive_gateway_failure.value = n
        o.enforcing_consecutive_gateway_failure.value = 100 if n > 0 else 0
        d.set("outlier_detection.consecutive_gateway_failure",
              _origin(od, ctx, "consecutiveGatewayErrors"))
        d.set("outlier_detection.enforcing_consecutive_gateway_failure",
              _origin(od, ctx, "consecutiveGatewayErrors"))
    if v.get("interval") is not None and _dur(o.interval, v["interval"]):
        d.set("outlier_detection.interval", _origin(od, ctx, "interval"))
    if v.get("baseEjectionTime") is not None and _dur(o.base_ejection_time, v["baseEjectionTime"]):
        d.set("outlier_detection.base_ejection_time", _origin(od, ctx, "baseEjectionTime"))
    mep = _pos_int(v.get("maxEjectionPercent"))
    if mep:
        o.max_ejection_percent.value = mep
        d.set("outlier_detection.max_ejection_percent", _origin(od, ctx, "maxEjectionPercent"))
    elif "maxEjectionPercent" in v:
        d.set("outlier_detection.max_ejection_percent",
              _origin(od, ctx, "maxEjectionPercent",
                      note="0 cannot be expressed: Envoy's default 10% applies"))
    if v.get("splitExternalLocalOriginErrors"):
        o.split_external_local_origin_errors = True
        d.set("outlier_detection.split_external_local_origin_errors",
              _origin(od, ctx, "splitExternalLocalOriginErrors"))
        lof = _pos_int(v.get("consecutiveLocalOriginFailures"))
        if lof:
            o.consecutive_local_origin_failure.value = lof
            o.enforcing_consecutive_local_origin_failure.value = 100
            d.set("outlier_detection.consecutive_local_origin_failure",
                  _origin(od, ctx, "consecutiveLocalOriginFailures"))
        o.enforcing_local_origin_success_rate.value = 0
    mhp = v.get("minHealthPercent")
    pct = mhp if isinstance(mhp, int) and not isinstance(mhp, bool) else 0
    if forces_unhealthy:
        pct = 0
    d.c.common_lb_config.healthy_panic_threshold.value = float(pct)
    d.set("common_lb_config.healthy_panic_threshold",
          _origin(od, ctx, "minHealthPercent") if mhp is not None and not forces_unhealthy
          else _origin(od, ctx, note="outlierDetection without minHealthPercent: panic threshold 0 "
                                     "(panic mode off)"))
    codes = v.get("outlierDetectionHttpErrorCodes")
    if isinstance(codes, list) and codes:
        from envoy.config.common.matcher.v3 import matcher_pb2
        from envoy.config.route.v3 import route_components_pb2

        def pred(code: int) -> Any:
            p = matcher_pb2.MatchPredicate()
            h = route_components_pb2.HeaderMatcher(name=":status")
            h.string_match.exact = str(code)
            p.http_response_headers_match.headers.append(h)
            return p

        em = d.http_options().outlier_detection.error_matcher
        if len(codes) == 1:
            em.CopyFrom(pred(codes[0]))
        else:
            for code in codes:
                em.or_match.rules.append(pred(code))
        d.set("typed_extension_protocol_options.outlier_detection.error_matcher",
              _origin(od, ctx, "outlierDetectionHttpErrorCodes"))


_SIMPLE = {"LEAST_REQUEST": Cluster.LEAST_REQUEST, "LEAST_CONN": Cluster.LEAST_REQUEST,
           "ROUND_ROBIN": Cluster.ROUND_ROBIN, "RANDOM": Cluster.RANDOM}


def apply_load_balancer(d: ClusterDraft, lb: Block | None, ctx: PolicyContext, *,
                        supports_unhealthy: bool, locality_apply: Any) -> None:
    """`applyLoadBalancer`: panic threshold, locality, simple policy, consistent hash."""
    c = d.c
    if c.lb_policy == Cluster.CLUSTER_PROVIDED and c.type != Cluster.ORIGINAL_DST:
        return
    if not c.common_lb_config.HasField("healthy_panic_threshold") and supports_unhealthy:
        c.common_lb_config.healthy_panic_threshold.value = 0
        d.set("common_lb_config.healthy_panic_threshold",
              prov.default("PILOT_AUTO_SEND_UNHEALTHY_ENDPOINTS: unhealthy endpoints are sent, "
                           "panic mode off"))
    locality_apply(d, lb)
    if c.type == Cluster.ORIGINAL_DST:
        c.lb_policy = Cluster.CLUSTER_PROVIDED
        d.set("lb_policy", prov.default("ORIGINAL_DST clusters use CLUSTER_PROVIDED"))
        return
    if ctx.options.enable_redis_filter and d.port is not None and d.port.protocol == protocol.REDIS:
        # `applyLoadBalancer`: Redis ports default to MAGLEV for client-side sharding.
        c.lb_policy = Cluster.MAGLEV
        d.set("lb_policy", prov.default("PILOT_ENABLE_REDIS_FILTER: Redis ports use MAGLEV"))
        return
    v = lb.value if lb else {}
    simple = v.get("simple")
    if simple == "PASSTHROUGH":
        c.type = Cluster.ORIGINAL_DST
        c.lb_policy = Cluster.CLUSTER_PROVIDED
        c.ClearField("load_assignment")
        d.set("type", _origin(lb, ctx, "simple"))
        d.set("lb_policy", _origin(lb, ctx, "simple"))
        return
    policy = _SIMPLE.get(str(simple), Cluster.LEAST_REQUEST)
    c.lb_policy = policy
    d.set("lb_policy", _origin(lb, ctx, "simple") if simple and simple != "UNSPECIFIED"
          else prov.default("defaultLBAlgorithm() is LEAST_REQUEST"))
    warm = v.get("warmup")
    if policy in (Cluster.LEAST_REQUEST, Cluster.ROUND_ROBIN) and (
            isinstance(warm, dict) or v.get("warmupDurationSecs") is not None):
        cfg = c.least_request_lb_config if policy == Cluster.LEAST_REQUEST else c.round_robin_lb_config
        ss = cfg.slow_start_config
        if isinstance(warm, dict):
            _dur(ss.slow_start_window, warm.get("duration"))
            agg = warm.get("aggression")
            ss.aggression.default_value = float(agg) if isinstance(agg, int | float) and agg else 1.0
            ss.aggression.runtime_key = "("
            mp = warm.get("minimumPercent")
            ss.min_weight_percent.value = float(mp) if isinstance(mp, int | float) and mp else 10.0
            path = "warmup"
        else:
            _dur(ss.slow_start_window, v["warmupDurationSecs"])
            path = "warmupDurationSecs"
        name = "least_request_lb_config" if policy == Cluster.LEAST_REQUEST else "round_robin_lb_config"
        d.set(f"{name}.slow_start_config", _origin(lb, ctx, path))
    ch = v.get("consistentHash")
    if isinstance(ch, dict):
        if isinstance(ch.get("maglev"), dict):
            c.lb_policy = Cluster.MAGLEV
            d.set("lb_policy", _origin(lb, ctx, "consistentHash", "maglev"))
            if _pos_int(ch["maglev"].get("tableSize")):
                c.maglev_lb_config.table_size.value = ch["maglev"]["tableSize"]
                d.set("maglev_lb_config.table_size", _origin(lb, ctx, "consistentHash", "maglev", "tableSize"))
        elif isinstance(ch.get("ringHash"), dict):
            c.lb_policy = Cluster.RING_HASH
            d.set("lb_policy", _origin(lb, ctx, "consistentHash", "ringHash"))
            if _pos_int(ch["ringHash"].get("minimumRingSize")):
                c.ring_hash_lb_config.minimum_ring_size.value = ch["ringHash"]["minimumRingSize"]
                d.set("ring_hash_lb_config.minimum_ring_size",
                      _origin(lb, ctx, "consistentHash", "ringHash", "minimumRingSize"))
        else:
            c.lb_policy = Cluster.RING_HASH
            d.set("lb_policy", _origin(lb, ctx, "consistentHash"))
            size = _pos_int(ch.get("minimumRingSize"))
            c.ring_hash_lb_config.minimum_ring_size.value = size or 1024
            d.set("ring_hash_lb_config.minimum_ring_size",
                  _origin(lb, ctx, "consistentHash", "minimumRingSize") if size
                  else _origin(lb, ctx, "consistentHash", note="default minimum ring size 1024"))


def apply_proxy_protocol(d: ClusterDraft, pp: Block | None, ctx: PolicyContext) -> None:
    """`applyUpstreamProxyProtocol`: wrap the transport socket(s) in PROXY protocol."""
    if pp is None:
        return
    version = proxy_protocol_pb2.ProxyProtocolConfig.V2 if pp.value.get("version") == "V2" \
        else proxy_protocol_pb2.ProxyProtocolConfig.V1
    from envoy.extensions.transport_sockets.raw_buffer.v3 import raw_buffer_pb2

    def wrap(inner: base_pb2.TransportSocket | None) -> base_pb2.TransportSocket:
        cfg = upp.ProxyProtocolUpstreamTransport()
        cfg.config.version = version
        if inner is None:
            cfg.transport_socket.name = "raw_buffer"
            cfg.transport_socket.typed_config.Pack(raw_buffer_pb2.RawBuffer())
        else:
            cfg.transport_socket.CopyFrom(inner)
        out = base_pb2.TransportSocket(name="envoy.transport_sockets.upstream_proxy_protocol")
        out.typed_config.Pack(cfg)
        return out

    c = d.c
    if c.transport_socket_matches:
        for m in c.transport_socket_matches:
            m.transport_socket.CopyFrom(wrap(m.transport_socket))
        d.set("transport_socket_matches.transport_socket", _origin(pp, ctx, "version"))
    else:
        c.transport_socket.CopyFrom(wrap(c.transport_socket if c.HasField("transport_socket") else None))
        d.set("transport_socket", _origin(pp, ctx, "version"))


