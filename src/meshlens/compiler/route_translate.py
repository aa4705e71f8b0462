"""VirtualService ``http[]`` → Envoy routes (`core/route/route.go`).

Layer: L4. Imports: compiler.{retry,route_match,route_action}, durations, xDS protos.

`BuildHTTPRoutesForVirtualService`, `TranslateRoute`, `BuildDefaultHTTPOutboundRoute`,
`BuildDefaultHTTPInboundRoute`, `GetRouteOperation`. Matches live in `route_match`, actions
(destinations, redirects, direct responses, headers, faults, CORS) in `route_action`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from envoy.config.core.v3 import base_pb2
from envoy.config.route.v3 import route_components_pb2 as rc_pb2
from google.protobuf import struct_pb2

from meshlens.compiler.retry import translate_inbound_retry_policy, translate_retry_policy
from meshlens.compiler.route_action import (GRPC_STATUS, MESH_GATEWAY, HeaderOps, RouteEnv,
                                            _apply_destination, _apply_direct_response,
                                            _apply_redirect, _source_match, apply_header_ops,
                                            destination_cluster,
                                            hash_for_destination, hash_for_service, hash_policy,
                                            translate_cors, translate_fault,
                                            translate_header_operations)
from meshlens.compiler.route_match import (JWT_CLAIMS, JWT_FILTER, is_catch_all, string_matcher,
                                           translate_route_match)

Route = rc_pb2.Route
FAULT_FILTER = "envoy.filters.http.fault"
CORS_FILTER = "envoy.filters.http.cors"
DEFAULT_ROUTE_NAME = "default"


@dataclass(slots=True)
class TranslatedRoute:
    """An Envoy route and which ``http[i].match[j]`` produced it (``match`` None: no match)."""

    route: Route
    http_index: int
    match_index: int | None
    notes: list[str] = field(default_factory=list)


# --- small helpers ------------------------------------------------------------------------------


def route_operation(r: Route, vs_name: str, port: int) -> str:
    """`GetRouteOperation`: ``host:port<path>`` for a single subset-key cluster, else
    ``vsName:port<path>``."""
    m = r.match
    which = m.WhichOneof("path_specifier")
    path = "/*"
    if which == "prefix":
        path = m.prefix + "*"
    elif which == "path":
        path = m.path
    elif which == "safe_regex":
        path = m.safe_regex.regex
    c = r.route.cluster if r.WhichOneof("action") == "route" else ""
    if c.count("|") == 3:
        _, p, _, h = c.split("|", 3)
        try:
            port_num = int(p)
        except ValueError:
            port_num = 0
        return f"{h}:{port_num}{path}"
    return f"{vs_name}:{port}{path}"


def config_metadata(vs_namespace: str, vs_name: str) -> base_pb2.Metadata:
    """`util.BuildConfigInfoMetadata` for a VirtualService."""
    md = base_pb2.Metadata()
    st = struct_pb2.Struct()
    st.update({"config": f"/apis/networking.istio.io/v1/namespaces/{vs_namespace}"
                         f"/virtual-service/{vs_name}"})
    md.filter_metadata["istio"].CopyFrom(st)
    return md


def gateway_semantics(vs: Any) -> bool:
    """`model.UseGatewaySemantics`: a VirtualService converted from a Gateway API route."""
    res = getattr(vs, "resource", None)
    return res is not None and res.annotations.get("internal.istio.io/route-semantics") == "gateway"


def _ingress_semantics(vs: Any) -> bool:
    """`model.UseIngressSemantics`."""
    res = getattr(vs, "resource", None)
    return res is not None and res.annotations.get("internal.istio.io/route-semantics") == "ingress"


def translate_route(vs: Any, http: dict[str, Any], match: dict[str, Any] | None,
                    env: RouteEnv) -> Route | None:
    """`TranslateRoute`: None when the match's port or source does not apply to this proxy."""
    if match is not None and int(match.get("port") or 0) not in (0, env.listener_port):
        return None
    if not _source_match(match, env):
        return None
    name = str(http.get("name") or "")
    if match is not None and match.get("name"):
        name = f"{name}.{match['name']}"
    out = Route(name=name)
    out.match.CopyFrom(translate_route_match(
        match, separated_prefix=gateway_semantics(vs) or _ingress_semantics(vs)))
    out.metadata.CopyFrom(config_metadata(vs.namespace, vs.name))
    if match is not None and match.get("statPrefix"):
        out.stat_prefix = str(match["statPrefix"])
    authority = ""
    if http.get("headers") is not None:
        ops = translate_header_operations(http["headers"])
        apply_header_ops(out, ops)
        authority = ops.authority
    if isinstance(http.get("redirect"), dict):
        _apply_redirect(out, http["redirect"], env.listener_port, env.is_tls)
    elif isinstance(http.get("directResponse"), dict):
        _apply_direct_response(out, http["directResponse"])
    else:
        _apply_destination(out, http, env, authority)
        if gateway_semantics(vs):  # 500 for a backend that does not exist (Gateway API)
            out.route.cluster_not_found_response_code = rc_pb2.RouteAction.INTERNAL_SERVER_ERROR
            rw = http.get("rewrite") if isinstance(http.get("rewrite"), dict) else {}
            if rw.get("uri") == "/" and not rw.get("uriRegexRewrite"):
                out.route.ClearField("prefix_rewrite")
                prefix = "".join("\\" + c if c in "\\.+*?()|[]{}^$" else c
                                 for c in out.match.path_separated_prefix)  # regexp.QuoteMeta
                out.route.regex_rewrite.pattern.regex = f"^{prefix}(/?)(.*)"
                out.route.regex_rewrite.substitution = "/\\2"
    out.decorator.operation = route_operation(out, vs.name, env.listener_port)
    if isinstance(http.get("fault"), dict):
        out.typed_per_filter_config[FAULT_FILTER].Pack(translate_fault(http["fault"]))
    if isinstance(http.get("corsPolicy"), dict):
        out.typed_per_filter_config[CORS_FILTER].Pack(translate_cors(http["corsPolicy"]))
    return out


def build_http_routes(vs: Any, env: RouteEnv) -> list[TranslatedRoute]:
    """`BuildHTTPRoutesForVirtualService`: a match-less rule or a catch-all match ends the list."""
    out: list[TranslatedRoute] = []
    for i, http in enumerate(vs.spec.get("http") or []):
        if not isinstance(http, dict):
            continue
        matches = [m for m in http.get("match") or [] if isinstance(m, dict)]
        if not matches:
            r = translate_route(vs, http, None, env)
            if r is not None:
                out.append(TranslatedRoute(r, i, None))
            break
        stop = False
        for j, m in enumerate(matches):
            r = translate_route(vs, http, m, env)
            if r is not None:
                out.append(TranslatedRoute(r, i, j))
                if is_catch_all(r):
                    stop = True
                    break
        if stop:
            break
    return out


def default_outbound_route(cluster: str, operation: str, *, default_retry: dict[str, Any] | None,
                           hash_: dict[str, Any] | None) -> Route:
    """`BuildDefaultHTTPOutboundRoute` (+ the DestinationRule's hash policy, §3.6)."""
    out = Route(name=DEFAULT_ROUTE_NAME)
    out.match.prefix = "/"
    out.decorator.operation = operation
    action = out.route
    action.cluster = cluster
    rp = translate_retry_policy(default_retry, hash_policy=False)
    if rp is not None:
        action.retry_policy.CopyFrom(rp)
    action.timeout.SetInParent()
    action.max_grpc_timeout.SetInParent()
    hp = hash_policy(hash_)
    if hp is not None:
        action.hash_policy.append(hp)
    return out


def default_inbound_route(cluster: str, operation: str, *, grpc: bool,
                          inbound_retry: dict[str, Any] | None) -> Route:
    """`BuildDefaultHTTPInboundRoute`: no timeout, max_stream_duration 0s, and the inbound retry
    policy (``reset-before-request`` ×2 by default) except on gRPC ports.

    ``inbound_retry`` is MeshConfig ``defaultInboundHttpRetryPolicy`` (None when unset).
    """
    out = Route(name=DEFAULT_ROUTE_NAME)
    out.match.prefix = "/"
    out.decorator.operation = operation
    action = out.route
    action.cluster = cluster
    action.timeout.SetInParent()
    action.max_stream_duration.max_stream_duration.SetInParent()
    action.max_stream_duration.grpc_timeout_header_max.SetInParent()
    if not grpc:
        rp = translate_inbound_retry_policy(inbound_retry)
        if rp is not None:
            action.retry_policy.CopyFrom(rp)
    return out

__all__ = ["CORS_FILTER", "DEFAULT_ROUTE_NAME", "FAULT_FILTER", "GRPC_STATUS", "JWT_CLAIMS", "JWT_FILTER",
           "MESH_GATEWAY", "HeaderOps", "RouteEnv", "TranslatedRoute", "build_http_routes",
           "config_metadata", "default_inbound_route", "default_outbound_route", "destination_cluster",
           "hash_for_destination", "hash_for_service", "hash_policy", "is_catch_all", "route_operation",
           "string_matcher", "translate_cors", "translate_fault", "translate_header_operations",
           "translate_route", "translate_route_match"]
