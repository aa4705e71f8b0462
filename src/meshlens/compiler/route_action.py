"""VirtualService route actions → Envoy ``RouteAction``, redirects, direct responses, header
operations, faults and CORS (`core/route/route.go`).

Layer: L4. Imports: model, compiler.{names,retry,route_match}, durations, xDS protos.

`applyHTTPRouteDestination`, `GetDestinationCluster`, `ApplyRedirect`, `ApplyDirectResponse`,
`TranslateHeadersOperations`, `TranslateFault`, `TranslateCORSPolicy`, `MirrorPercent`,
`ConsistentHashToHashPolicy`, `HashForHTTPDestination`, `hashForService`, `sourceMatchHTTP`.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from envoy.config.core.v3 import base_pb2
from envoy.config.route.v3 import route_components_pb2 as rc_pb2
from envoy.extensions.filters.http.cors.v3 import cors_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.type.v3 import percent_pb2

from meshlens import durations
from meshlens.compiler.names import cluster_name
from meshlens.compiler.retry import translate_retry_policy
from meshlens.compiler.route_match import (_dict, _fraction_percent, _fraction_positive, _int_percent,
                                           _set_duration, string_matcher)
from meshlens.model.registry import Service

Route = rc_pb2.Route
MESH_GATEWAY = "mesh"

#: `grpc.SupportedGRPCStatus`
GRPC_STATUS = {
    "OK": 0, "CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5, "ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9, "ABORTED": 10, "OUT_OF_RANGE": 11, "UNIMPLEMENTED": 12,
    "INTERNAL": 13, "UNAVAILABLE": 14, "DATA_LOSS": 15, "UNAUTHENTICATED": 16,
}
_REDIRECT_CODES = {
    0: rc_pb2.RedirectAction.MOVED_PERMANENTLY, 301: rc_pb2.RedirectAction.MOVED_PERMANENTLY,
    302: rc_pb2.RedirectAction.FOUND, 303: rc_pb2.RedirectAction.SEE_OTHER,
    307: rc_pb2.RedirectAction.TEMPORARY_REDIRECT, 308: rc_pb2.RedirectAction.PERMANENT_REDIRECT,
}


@dataclass(slots=True)
class RouteEnv:
    """What translating one VirtualService's routes reads, for one listener port."""

    listener_port: int
    proxy_labels: dict[str, str]
    proxy_namespace: str
    #: servicesByName lookup (hostname → the service trimmed to the listener port)
    lookup_service: Callable[[str], Service | None]
    #: HTTPRouteDestination mapping → its DestinationRule consistentHash mapping, or None
    lookup_hash: Callable[[dict[str, Any]], dict[str, Any] | None]
    default_retry: dict[str, Any] | None = None  # MeshConfig defaultHttpRetryPolicy
    x_forwarded_host: bool = False
    gateways: frozenset[str] = frozenset({MESH_GATEWAY})
    is_tls: bool = False  # RouteOptions.IsTLS: a gateway server with tls (redirects default to https)




def _source_match(match: dict[str, Any] | None, env: RouteEnv) -> bool:
    """`sourceMatchHTTP`: gateways (if any) decide alone; else sourceLabels ⊆ proxy labels and
    sourceNamespace."""
    if match is None:
        return True
    gws = match.get("gateways") or []
    if gws:
        return any(g in env.gateways for g in gws)
    labels = _dict(match.get("sourceLabels"))
    if all(env.proxy_labels.get(k) == v for k, v in labels.items()):
        sns = match.get("sourceNamespace") or ""
        return not sns or sns == env.proxy_namespace
    return False


# --- headers ------------------------------------------------------------------------------------

@dataclass(slots=True)
class HeaderOps:
    request_add: list[base_pb2.HeaderValueOption] = field(default_factory=list)
    response_add: list[base_pb2.HeaderValueOption] = field(default_factory=list)
    request_remove: list[str] = field(default_factory=list)
    response_remove: list[str] = field(default_factory=list)
    authority: str = ""


def _internal(key: str) -> bool:
    return key.startswith(":") or key.lower() == "host"


def _append_headers(headers: Any, append: bool) -> tuple[list[base_pb2.HeaderValueOption], str]:
    authority = ""
    out = []
    for key, value in sorted(_dict(headers).items()):
        key, value = str(key), str(value)
        if key.lower() in (":authority", "host"):
            authority = value
        if _internal(key):
            continue
        hvo = base_pb2.HeaderValueOption(append_action=(
            base_pb2.HeaderValueOption.APPEND_IF_EXISTS_OR_ADD if append
            else base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD))
        hvo.header.key, hvo.header.value = key, value
        out.append(hvo)
    return out, authority


def translate_header_operations(headers: Any) -> HeaderOps:
    """`TranslateHeadersOperations`: set (sorted) then add (sorted); ``:authority``/``host``
    become the authority rewrite (set wins over add)."""
    req, resp = _dict(_dict(headers).get("request")), _dict(_dict(headers).get("response"))
    ops = HeaderOps()
    req_set, set_auth = _append_headers(req.get("set"), False)
    req_add, add_auth = _append_headers(req.get("add"), True)
    ops.request_add = req_set + req_add
    resp_set, _ = _append_headers(resp.get("set"), False)
    resp_add, _ = _append_headers(resp.get("add"), True)
    ops.response_add = resp_set + resp_add
    ops.request_remove = [str(k) for k in req.get("remove") or [] if not _internal(str(k))]
    ops.response_remove = [str(k) for k in resp.get("remove") or [] if not _internal(str(k))]
    ops.authority = set_auth or add_auth
    return ops


def apply_header_ops(msg: Any, ops: HeaderOps) -> None:
    """Copy header operations onto a Route or a ClusterWeight (same field names)."""
    msg.request_headers_to_add.extend(ops.request_add)
    msg.request_headers_to_remove.extend(ops.request_remove)
    msg.response_headers_to_add.extend(ops.response_add)
    msg.response_headers_to_remove.extend(ops.response_remove)


# --- destinations -------------------------------------------------------------------------------

def destination_cluster(dest: Any, svc: Service | None, listener_port: int) -> str:
    """`GetDestinationCluster`: explicit port, else the service's single port, else the
    listener port; an ExternalName service routes to its target."""
    dest = _dict(dest)
    host = str(dest.get("host") or "")
    if not host:
        return "UnknownService"
    if svc is not None and svc.alias_target:
        host = svc.alias_target
    port = listener_port
    if isinstance(dest.get("port"), dict):
        port = int(dest["port"].get("number") or 0)
    elif svc is not None and len(svc.ports) == 1:
        port = svc.ports[0].port
    return cluster_name("outbound", port, str(dest.get("subset") or ""), host)


def hash_policy(ch: dict[str, Any] | None) -> rc_pb2.RouteAction.HashPolicy | None:
    """`ConsistentHashToHashPolicy`."""
    if not isinstance(ch, dict):
        return None
    out = rc_pb2.RouteAction.HashPolicy()
    if ch.get("httpHeaderName"):
        out.header.header_name = str(ch["httpHeaderName"])
    elif isinstance(ch.get("httpCookie"), dict):
        c = ch["httpCookie"]
        out.cookie.name = str(c.get("name") or "")
        if c.get("ttl") is not None:
            _set_duration(out.cookie.ttl, c["ttl"])
        out.cookie.path = str(c.get("path") or "")
        for a in c.get("attributes") or []:
            out.cookie.attributes.add(name=str(_dict(a).get("name") or ""),
                                      value=str(_dict(a).get("value") or ""))
    elif ch.get("useSourceIp") is not None:
        out.connection_properties.source_ip = bool(ch["useSourceIp"])
    elif ch.get("httpQueryParameterName"):
        out.query_parameter.name = str(ch["httpQueryParameterName"])
    else:
        return None
    return out


def _pls_hash(tp: dict[str, Any], dest: dict[str, Any]) -> dict[str, Any] | None:
    if not isinstance(dest.get("port"), dict):
        return None
    number = dest["port"].get("number")
    for pls in tp.get("portLevelSettings") or []:
        if isinstance(pls, dict) and _dict(pls.get("port")).get("number") == number:
            ch = _dict(pls.get("loadBalancer")).get("consistentHash")
            return ch if isinstance(ch, dict) else None
    return None


def hash_for_destination(rule: Any, dest: dict[str, Any]) -> dict[str, Any] | None:
    """`HashForHTTPDestination`: subset port-level > subset > port-level > top level."""
    if rule is None:
        return None
    tp = rule.policy.tp if rule.policy is not None else {}
    ch = _dict(tp.get("loadBalancer")).get("consistentHash")
    pls = _pls_hash(tp, dest)
    subset_hash = subset_pls = None
    sub = rule.subset(str(dest.get("subset") or ""))
    if sub is not None:
        stp = sub.policy.tp if sub.policy is not None else {}
        sh = _dict(stp.get("loadBalancer")).get("consistentHash")
        subset_hash = sh if isinstance(sh, dict) else None
        subset_pls = _pls_hash(stp, dest)
    for candidate in (subset_pls, subset_hash, pls):
        if candidate is not None:
            return candidate
    return ch if isinstance(ch, dict) else None


def hash_for_service(rule: Any, port: int) -> dict[str, Any] | None:
    """`hashForService`: top level, overridden by the port's portLevelSettings hash."""
    if rule is None or rule.policy is None:
        return None
    tp = rule.policy.tp
    ch = _dict(tp.get("loadBalancer")).get("consistentHash")
    for pls in tp.get("portLevelSettings") or []:
        if isinstance(pls, dict) and _dict(pls.get("port")).get("number") == port:
            pch = _dict(pls.get("loadBalancer")).get("consistentHash")
            if isinstance(pch, dict):
                ch = pch
            break
    return ch if isinstance(ch, dict) else None


def _mirror_policy(cluster: str, fraction: base_pb2.RuntimeFractionalPercent
                   ) -> rc_pb2.RouteAction.RequestMirrorPolicy:
    out = rc_pb2.RouteAction.RequestMirrorPolicy(cluster=cluster,
                                                 disable_shadow_host_suffix_append=True)
    out.runtime_fraction.CopyFrom(fraction)
    out.trace_sampled.value = False
    return out


def _mirror_percent(http: dict[str, Any]) -> base_pb2.RuntimeFractionalPercent | None:
    """`MirrorPercent`: mirrorPercentage, else the deprecated integer, else 100%; 0 → none."""
    out = base_pb2.RuntimeFractionalPercent()
    if http.get("mirrorPercentage") is not None:
        if not _fraction_positive(http["mirrorPercentage"]):
            return None
        out.default_value.CopyFrom(_fraction_percent(http["mirrorPercentage"]))
        return out
    legacy = http.get("mirrorPercent", http.get("mirror_percent"))
    if legacy is not None:
        if int(legacy) <= 0:
            return None
        out.default_value.CopyFrom(_int_percent(legacy))
        return out
    out.default_value.CopyFrom(_int_percent(100))
    return out


def _apply_destination(out: Route, http: dict[str, Any], env: RouteEnv, authority: str) -> None:
    """`applyHTTPRouteDestination`."""
    action = out.route
    timeout = (durations.parse_duration(http["timeout"]) or 0) if http.get("timeout") else 0
    action.timeout.seconds, action.timeout.nanos = durations.split(timeout)
    action.max_grpc_timeout.CopyFrom(action.timeout)
    rewrite = http.get("rewrite")
    if isinstance(rewrite, dict):
        action.cluster = str(http.get("name") or "")
        action.append_x_forwarded_host = env.x_forwarded_host
        rr = rewrite.get("uriRegexRewrite")
        if isinstance(rr, dict):
            action.regex_rewrite.pattern.regex = str(rr.get("match") or "")
            action.regex_rewrite.substitution = str(rr.get("rewrite") or "")
        elif rewrite.get("uri"):
            action.prefix_rewrite = str(rewrite["uri"])
        if rewrite.get("authority"):
            authority = str(rewrite["authority"])
    if authority:
        action.host_rewrite_literal = authority
    mirror = http.get("mirror")
    if isinstance(mirror, dict):
        mp = _mirror_percent(http)
        if mp is not None:
            cluster = destination_cluster(mirror, env.lookup_service(str(mirror.get("host") or "")),
                                          env.listener_port)
            action.request_mirror_policies.append(_mirror_policy(cluster, mp))
    for m in http.get("mirrors") or []:
        m = _dict(m)
        dest = m.get("destination")
        if m.get("percentage") is not None:
            if not _fraction_positive(m["percentage"]):
                continue
            mp = base_pb2.RuntimeFractionalPercent()
            mp.default_value.CopyFrom(_fraction_percent(m["percentage"]))
        else:
            mp = base_pb2.RuntimeFractionalPercent()
            mp.default_value.CopyFrom(_int_percent(100))
        if isinstance(dest, dict):
            cluster = destination_cluster(dest, env.lookup_service(str(dest.get("host") or "")),
                                          env.listener_port)
            action.request_mirror_policies.append(_mirror_policy(cluster, mp))
    policy = http.get("retries") if http.get("retries") is not None else env.default_retry
    routes = [d for d in http.get("route") or [] if isinstance(d, dict)]
    consistent = False
    if len(routes) == 1:
        dst = routes[0]
        dest = _dict(dst.get("destination"))
        action.cluster = destination_cluster(dest, env.lookup_service(str(dest.get("host") or "")),
                                             env.listener_port)
        if dst.get("headers") is not None:
            ops = translate_header_operations(dst["headers"])
            apply_header_ops(out, ops)
            if ops.authority and action.WhichOneof("host_rewrite_specifier") is None:
                action.host_rewrite_literal = ops.authority
        ch = env.lookup_hash(dst)
        hp = hash_policy(ch)
        if hp is not None:
            action.hash_policy.append(hp)
        consistent = ch is not None
    else:
        wc = action.weighted_clusters
        wc.SetInParent()
        for dst in routes:
            if not int(dst.get("weight") or 0):
                continue  # weight 0 destinations are left out
            dest = _dict(dst.get("destination"))
            cw = wc.clusters.add(name=destination_cluster(
                dest, env.lookup_service(str(dest.get("host") or "")), env.listener_port))
            cw.weight.value = int(dst["weight"])
            if dst.get("headers") is not None:
                ops = translate_header_operations(dst["headers"])
                apply_header_ops(cw, ops)
                if ops.authority:
                    cw.host_rewrite_literal = ops.authority
            hp = hash_policy(env.lookup_hash(dst))
            if hp is not None:
                action.hash_policy.append(hp)
    rp = translate_retry_policy(policy if isinstance(policy, dict) else None,
                                hash_policy=consistent)
    if rp is not None:
        action.retry_policy.CopyFrom(rp)


def _apply_redirect(out: Route, redirect: dict[str, Any], port: int, is_tls: bool = False) -> None:
    """`ApplyRedirect` (the default scheme is https only on a gateway server with tls)."""
    code = int(redirect.get("redirectCode") or 0)
    if code not in _REDIRECT_CODES:
        return  # istiod leaves the route without an action
    r = out.redirect
    r.host_redirect = str(redirect.get("authority") or "")
    if redirect.get("prefixRewrite"):
        r.prefix_rewrite = str(redirect["prefixRewrite"])
    else:
        r.path_redirect = str(redirect.get("uri") or "")
    if redirect.get("scheme"):
        r.scheme_redirect = str(redirect["scheme"])
    if "port" in redirect or "derivePort" in redirect:
        if redirect.get("derivePort") == "FROM_REQUEST_PORT":
            r.port_redirect = port
        elif "port" in redirect:
            r.port_redirect = int(redirect.get("port") or 0)
        scheme = str(redirect.get("scheme") or ("https" if is_tls else "http"))
        if (r.port_redirect == 80 and scheme == "http") or (r.port_redirect == 443
                                                            and scheme == "https"):
            r.port_redirect = 0
    r.response_code = _REDIRECT_CODES[code]


def _apply_direct_response(out: Route, dr: dict[str, Any]) -> None:
    d = out.direct_response
    d.status = int(dr.get("status") or 0)
    body = dr.get("body")
    if isinstance(body, dict):
        if "string" in body:
            d.body.inline_string = str(body["string"])
        elif "bytes" in body:
            d.body.inline_bytes = base64.b64decode(str(body["bytes"]))


def translate_fault(fault: dict[str, Any]) -> fault_pb2.HTTPFault:
    """`TranslateFault` (an empty message when neither delay nor abort survives)."""
    out = fault_pb2.HTTPFault()
    delay = fault.get("delay")
    if isinstance(delay, dict) and delay.get("fixedDelay") is not None:
        d = out.delay
        if delay.get("percentage") is not None:
            d.percentage.CopyFrom(_fraction_percent(delay["percentage"]))
        else:
            d.percentage.CopyFrom(_int_percent(delay.get("percent")))
        _set_duration(d.fixed_delay, delay["fixedDelay"])
    abort = fault.get("abort")
    if isinstance(abort, dict) and (abort.get("httpStatus") is not None
                                    or abort.get("grpcStatus") is not None):
        a = out.abort
        if abort.get("percentage") is not None:
            a.percentage.CopyFrom(_fraction_percent(abort["percentage"]))
        if abort.get("httpStatus") is not None:
            a.http_status = int(abort["httpStatus"])
        else:
            a.grpc_status = GRPC_STATUS.get(str(abort["grpcStatus"]), 0)
    return out


def translate_cors(cors: dict[str, Any]) -> cors_pb2.CorsPolicy:
    """`TranslateCORSPolicy`."""
    out = cors_pb2.CorsPolicy()
    out.forward_not_matching_preflights.value = cors.get("unmatchedPreflights") != "IGNORE"
    if cors.get("allowOrigins"):
        for sm in cors["allowOrigins"]:
            em = string_matcher(sm)
            if em is not None:
                out.allow_origin_string_match.append(em)
    elif cors.get("allowOrigin"):
        for o in cors["allowOrigin"]:
            out.allow_origin_string_match.add(exact=str(o))
    out.filter_enabled.default_value.numerator = 100
    out.filter_enabled.default_value.denominator = percent_pb2.FractionalPercent.HUNDRED
    if cors.get("allowCredentials") is not None:
        out.allow_credentials.value = bool(cors["allowCredentials"])
    out.allow_headers = ",".join(str(h) for h in cors.get("allowHeaders") or [])
    out.allow_methods = ",".join(str(h) for h in cors.get("allowMethods") or [])
    out.expose_headers = ",".join(str(h) for h in cors.get("exposeHeaders") or [])
    if cors.get("maxAge") is not None:
        out.max_age = str((durations.parse_duration(cors["maxAge"]) or 0) // 1_000_000_000)
    return out

