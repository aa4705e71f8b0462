"""The protobuf types a sidecar's config can hold, and walking messages through ``Any`` payloads.

Layer: L7 (lab). Imports: stdlib, protobuf, xds-protos.

Importing this module registers every message type listed in :data:`ANY_TYPE_MODULES` in the
default descriptor pool, so an ``Any`` of those types can be parsed, unpacked and repacked.
:func:`walk` visits every message inside another one, looking into ``Any`` payloads; the
validate mode (:mod:`meshlens.lab.envoy`), the extension table (:mod:`meshlens.lab.extensions`)
and the localization (:mod:`meshlens.lab.localize`) all rewrite configs through it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from google.protobuf import any_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

# Every module whose message types can appear inside an ``Any`` of an Istio sidecar's dump.
ANY_TYPE_MODULES: tuple[str, ...] = tuple(
    f"envoy.{m}"
    for m in (
        "admin.v3.config_dump_pb2",
        "admin.v3.config_dump_shared_pb2",
        "config.bootstrap.v3.bootstrap_pb2",
        "config.cluster.v3.cluster_pb2",
        "config.endpoint.v3.endpoint_pb2",
        "config.listener.v3.listener_pb2",
        "config.route.v3.route_pb2",
        "config.route.v3.scoped_route_pb2",
        "config.rbac.v3.rbac_pb2",
        "config.metrics.v3.metrics_service_pb2",
        "config.trace.v3.zipkin_pb2",
        "config.trace.v3.opentelemetry_pb2",
        "config.trace.v3.datadog_pb2",
        "config.trace.v3.skywalking_pb2",
        "extensions.transport_sockets.tls.v3.tls_pb2",
        "extensions.transport_sockets.raw_buffer.v3.raw_buffer_pb2",
        "extensions.transport_sockets.proxy_protocol.v3.upstream_proxy_protocol_pb2",
        "extensions.transport_sockets.internal_upstream.v3.internal_upstream_pb2",
        "extensions.transport_sockets.http_11_proxy.v3.upstream_http_11_connect_pb2",
        "extensions.transport_sockets.quic.v3.quic_transport_pb2",
        "extensions.upstreams.http.v3.http_protocol_options_pb2",
        "extensions.upstreams.tcp.v3.tcp_protocol_options_pb2",
        "extensions.filters.network.http_connection_manager.v3.http_connection_manager_pb2",
        "extensions.filters.network.tcp_proxy.v3.tcp_proxy_pb2",
        "extensions.filters.network.rbac.v3.rbac_pb2",
        "extensions.filters.network.ext_authz.v3.ext_authz_pb2",
        "extensions.filters.network.local_ratelimit.v3.local_rate_limit_pb2",
        "extensions.filters.network.mongo_proxy.v3.mongo_proxy_pb2",
        "extensions.filters.network.redis_proxy.v3.redis_proxy_pb2",
        "extensions.filters.network.set_filter_state.v3.set_filter_state_pb2",
        "extensions.filters.network.wasm.v3.wasm_pb2",
        "extensions.filters.listener.tls_inspector.v3.tls_inspector_pb2",
        "extensions.filters.listener.http_inspector.v3.http_inspector_pb2",
        "extensions.filters.listener.original_dst.v3.original_dst_pb2",
        "extensions.filters.listener.original_src.v3.original_src_pb2",
        "extensions.filters.listener.proxy_protocol.v3.proxy_protocol_pb2",
        "extensions.filters.http.router.v3.router_pb2",
        "extensions.filters.http.fault.v3.fault_pb2",
        "extensions.filters.http.cors.v3.cors_pb2",
        "extensions.filters.http.grpc_stats.v3.config_pb2",
        "extensions.filters.http.grpc_web.v3.grpc_web_pb2",
        "extensions.filters.http.rbac.v3.rbac_pb2",
        "extensions.filters.http.jwt_authn.v3.config_pb2",
        "extensions.filters.http.ext_authz.v3.ext_authz_pb2",
        "extensions.filters.http.ext_proc.v3.ext_proc_pb2",
        "extensions.filters.http.local_ratelimit.v3.local_rate_limit_pb2",
        "extensions.filters.http.compressor.v3.compressor_pb2",
        "extensions.filters.http.header_mutation.v3.header_mutation_pb2",
        "extensions.filters.http.set_filter_state.v3.set_filter_state_pb2",
        "extensions.filters.http.stateful_session.v3.stateful_session_pb2",
        "extensions.filters.http.dynamic_forward_proxy.v3.dynamic_forward_proxy_pb2",
        "extensions.filters.http.wasm.v3.wasm_pb2",
        "extensions.filters.http.upstream_codec.v3.upstream_codec_pb2",
        "extensions.compression.brotli.compressor.v3.brotli_pb2",
        "extensions.compression.gzip.compressor.v3.gzip_pb2",
        "extensions.compression.zstd.compressor.v3.zstd_pb2",
        "extensions.access_loggers.file.v3.file_pb2",
        "extensions.access_loggers.stream.v3.stream_pb2",
        "extensions.access_loggers.grpc.v3.als_pb2",
        "extensions.access_loggers.open_telemetry.v3.logs_service_pb2",
        "extensions.access_loggers.filters.cel.v3.cel_pb2",
        "extensions.formatter.metadata.v3.metadata_pb2",
        "extensions.formatter.req_without_query.v3.req_without_query_pb2",
        "extensions.formatter.cel.v3.cel_pb2",
        "extensions.request_id.uuid.v3.uuid_pb2",
        "extensions.retry.host.previous_hosts.v3.previous_hosts_pb2",
        "extensions.retry.host.omit_host_metadata.v3.omit_host_metadata_config_pb2",
        "extensions.retry.priority.previous_priorities.v3.previous_priorities_config_pb2",
        "extensions.http.header_formatters.preserve_case.v3.preserve_case_pb2",
        "extensions.http.original_ip_detection.xff.v3.xff_pb2",
        "extensions.http.stateful_session.cookie.v3.cookie_pb2",
        "extensions.http.stateful_session.header.v3.header_pb2",
        "extensions.clusters.aggregate.v3.cluster_pb2",
        "extensions.clusters.dynamic_forward_proxy.v3.cluster_pb2",
        "extensions.load_balancing_policies.round_robin.v3.round_robin_pb2",
        "extensions.load_balancing_policies.least_request.v3.least_request_pb2",
        "extensions.load_balancing_policies.random.v3.random_pb2",
        "extensions.load_balancing_policies.ring_hash.v3.ring_hash_pb2",
        "extensions.load_balancing_policies.maglev.v3.maglev_pb2",
        "extensions.load_balancing_policies.client_side_weighted_round_robin.v3."
        "client_side_weighted_round_robin_pb2",
        "extensions.load_balancing_policies.cluster_provided.v3.cluster_provided_pb2",
        "extensions.matching.common_inputs.network.v3.network_inputs_pb2",
        "extensions.matching.input_matchers.ip.v3.ip_pb2",
        "extensions.path.match.uri_template.v3.uri_template_match_pb2",
        "extensions.path.rewrite.uri_template.v3.uri_template_rewrite_pb2",
        "extensions.tracers.opentelemetry.resource_detectors.v3."
        "environment_resource_detector_pb2",
        "extensions.tracers.opentelemetry.resource_detectors.v3.dynatrace_resource_detector_pb2",
        "extensions.bootstrap.internal_listener.v3.internal_listener_pb2",
        "extensions.resource_monitors.downstream_connections.v3.downstream_connections_pb2",
    )
) + ("udpa.type.v1.typed_struct_pb2", "xds.type.v3.typed_struct_pb2",
     "xds.type.matcher.v3.matcher_pb2", "xds.type.matcher.v3.ip_pb2")

for _module in ANY_TYPE_MODULES:  # importing a *_pb2 module registers its types for Any
    importlib.import_module(_module)

TYPED_STRUCT_URLS = (
    "type.googleapis.com/udpa.type.v1.TypedStruct",
    "type.googleapis.com/xds.type.v3.TypedStruct",
)


def walk(msg: Message, visit: Callable[[Message], None]) -> None:
    """Call ``visit`` on ``msg`` and every message inside it, looking into ``Any`` payloads.

    An ``Any`` of a type no module registers (Istio's own, a TypedStruct payload's inner type) is
    left as it is: nothing of ours is inside.
    """
    full = msg.DESCRIPTOR.full_name
    if full == "google.protobuf.Any":
        url = msg.type_url  # type: ignore[attr-defined]
        if not url or not is_known_type(url):
            return
        inner = unpack(msg)  # type: ignore[arg-type]
        walk(inner, visit)
        msg.Pack(inner)  # type: ignore[attr-defined]
        return
    if full.startswith("google.protobuf."):
        return  # Struct, Duration, wrappers: nothing of ours inside
    visit(msg)
    for fd, value in msg.ListFields():
        if fd.message_type is None:
            continue
        if fd.message_type.GetOptions().map_entry:
            if fd.message_type.fields_by_name["value"].message_type is not None:
                for item in value.values():
                    walk(item, visit)
        elif is_repeated(fd):
            for item in value:
                walk(item, visit)
        else:
            walk(value, visit)


def clone(msg: Any) -> Any:
    out = type(msg)()
    out.CopyFrom(msg)
    return out


def unpack(packed: any_pb2.Any) -> Any:
    desc = descriptor_pool.Default().FindMessageTypeByName(packed.TypeName())
    out = message_factory.GetMessageClass(desc)()
    packed.Unpack(out)
    return out


def is_repeated(fd: Any) -> bool:
    flag = getattr(fd, "is_repeated", None)
    return bool(flag) if flag is not None else fd.label == fd.LABEL_REPEATED


def is_known_type(type_url: str) -> bool:
    try:
        descriptor_pool.Default().FindMessageTypeByName(type_url.rsplit("/", 1)[-1])
    except KeyError:
        return False
    return True


def wrap_unknown_anys(node: Any) -> Any:
    """Copy a JSON tree, re-expressing each ``Any`` of an unregistered type as a TypedStruct."""
    if isinstance(node, list):
        return [wrap_unknown_anys(item) for item in node]
    if not isinstance(node, Mapping):
        return node
    type_url = node.get("@type")
    if isinstance(type_url, str) and not is_known_type(type_url):
        value = {k: v for k, v in node.items() if k != "@type"}
        return {"@type": TYPED_STRUCT_URLS[0], "type_url": type_url, "value": value}
    return {k: wrap_unknown_anys(v) for k, v in node.items()}
