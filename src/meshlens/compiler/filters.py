"""The Envoy and Istio filters istiod puts on sidecar listeners (`pilot/pkg/xds/filters`).

Layer: L4. Imports: compiler.istio_protos, xDS protos.

One builder per filter, each returning a fresh message, shared by the outbound and inbound
listener builders and the route builder.
"""

from __future__ import annotations

from typing import Any

from envoy.config.accesslog.v3 import accesslog_pb2
from envoy.config.core.v3 import config_source_pb2
from envoy.config.listener.v3 import listener_components_pb2 as lc_pb2
from envoy.extensions.access_loggers.file.v3 import file_pb2
from envoy.extensions.filters.http.cors.v3 import cors_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.extensions.filters.http.grpc_stats.v3 import config_pb2 as grpc_stats_pb2
from envoy.extensions.filters.http.grpc_web.v3 import grpc_web_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.listener.http_inspector.v3 import http_inspector_pb2
from envoy.extensions.filters.listener.original_dst.v3 import original_dst_pb2
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from envoy.extensions.request_id.uuid.v3 import uuid_pb2
from envoy.type.tracing.v3 import custom_tag_pb2
from udpa.type.v1 import typed_struct_pb2

from meshlens.compiler.istio_protos import AlpnFilterConfig

HCM = "envoy.filters.network.http_connection_manager"
TCP_PROXY = "envoy.filters.network.tcp_proxy"
MX = "istio.metadata_exchange"
MX_TYPE_URL = "type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange"
PEER_METADATA_TYPE_URL = "type.googleapis.com/io.istio.http.peer_metadata.Config"

#: pilot/pkg/model/telemetry_logging.go:EnvoyTextLogFormat
DEFAULT_TEXT_FORMAT = (
    '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" '
    "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "
    '"%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% '
    '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" '
    '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% '
    "%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% "
    "%REQUESTED_SERVER_NAME% %ROUTE_NAME%\n")

ALPN_PLAIN_HTTP = ["http/1.1", "h2c"]
ALPN_MTLS_HTTP = ["istio-http/1.0", "istio-http/1.1", "istio-h2"]
ALPN_ALL_ISTIO = ["istio", "istio-peer-exchange", "istio-http/1.0", "istio-http/1.1", "istio-h2"]
ALPN_MTLS_TCP = ["istio-peer-exchange", "istio"]


def typed_struct(type_url: str, value: dict[str, Any]) -> typed_struct_pb2.TypedStruct:
    ts = typed_struct_pb2.TypedStruct(type_url=type_url)
    ts.value.update(value)
    return ts


def network_filter(name: str, config: Any) -> lc_pb2.Filter:
    f = lc_pb2.Filter(name=name)
    f.typed_config.Pack(config)
    return f




def http_filter(name: str, config: Any) -> hcm_pb2.HttpFilter:
    f = hcm_pb2.HttpFilter(name=name)
    f.typed_config.Pack(config)
    return f


def listener_filter(name: str, config: Any) -> lc_pb2.ListenerFilter:
    f = lc_pb2.ListenerFilter(name=name)
    f.typed_config.Pack(config)
    return f


def tcp_mx() -> lc_pb2.Filter:
    """`TCPListenerMx`: the network metadata-exchange filter."""
    return network_filter(MX, typed_struct(MX_TYPE_URL, {"protocol": "istio-peer-exchange",
                                                         "enable_discovery": True}))


def peer_metadata(*, outbound: bool) -> hcm_pb2.HttpFilter:
    """`SidecarOutboundMetadataFilter` / `SidecarInboundMetadataFilter`."""
    side = "upstream" if outbound else "downstream"
    return http_filter(MX, typed_struct(PEER_METADATA_TYPE_URL, {
        f"{side}_discovery": [{"istio_headers": {}}, {"workload_discovery": {}}],
        f"{side}_propagation": [{"istio_headers": {}}],
    }))


def alpn() -> hcm_pb2.HttpFilter:
    """`Alpn`: overrides the upstream ALPN so the server sidecar sees istio-* protocols."""
    cfg = AlpnFilterConfig()
    for proto, values in ((0, ["istio-http/1.0", "istio", "http/1.0"]),
                          (1, ["istio-http/1.1", "istio", "http/1.1"]),
                          (2, ["istio-h2", "istio", "h2"])):
        o = cfg.alpn_override.add(upstream_protocol=proto)
        o.alpn_override.extend(values)
    return http_filter("istio.alpn", cfg)


def grpc_stats() -> hcm_pb2.HttpFilter:
    cfg = grpc_stats_pb2.FilterConfig(emit_filter_state=True)
    cfg.stats_for_all_methods.value = False
    cfg.stats_for_all_methods.SetInParent()
    return http_filter("envoy.filters.http.grpc_stats", cfg)


def grpc_web() -> hcm_pb2.HttpFilter:
    return http_filter("envoy.filters.http.grpc_web", grpc_web_pb2.GrpcWeb())


def fault() -> hcm_pb2.HttpFilter:
    return http_filter("envoy.filters.http.fault", fault_pb2.HTTPFault())


def cors() -> hcm_pb2.HttpFilter:
    return http_filter("envoy.filters.http.cors", cors_pb2.Cors())


def router() -> hcm_pb2.HttpFilter:
    return http_filter("envoy.filters.http.router", router_pb2.Router())


def tls_inspector() -> lc_pb2.ListenerFilter:
    cfg = tls_inspector_pb2.TlsInspector()
    cfg.initial_read_buffer_size.value = 512
    return listener_filter("envoy.filters.listener.tls_inspector", cfg)


def http_inspector() -> lc_pb2.ListenerFilter:
    return listener_filter("envoy.filters.listener.http_inspector", http_inspector_pb2.HttpInspector())


def original_dst() -> lc_pb2.ListenerFilter:
    return listener_filter("envoy.filters.listener.original_dst", original_dst_pb2.OriginalDst())


def file_access_log(path: str, fmt: str = "", *, nr_only: bool = False) -> accesslog_pb2.AccessLog:
    """The mesh file access log (`core/accesslog.go`); ``nr_only`` for listener-level logs."""
    cfg = file_pb2.FileAccessLog(path=path)
    text = fmt or DEFAULT_TEXT_FORMAT
    if not text.endswith("\n"):
        text += "\n"
    cfg.log_format.text_format_source.inline_string = text
    log = accesslog_pb2.AccessLog(name="envoy.access_loggers.file")
    log.typed_config.Pack(cfg)
    if nr_only:
        log.filter.response_flag_filter.flags.append("NR")
    return log


def access_logs(mesh: Any, *, nr_only: bool = False) -> list[accesslog_pb2.AccessLog]:
    path = mesh.get("accessLogFile") if mesh is not None else ""
    if not path:
        return []
    return [file_access_log(str(path), str(mesh.get("accessLogFormat") or ""), nr_only=nr_only)]


def tcp_proxy(stat_prefix: str, cluster: str | None = None, *,
              weighted: list[tuple[str, int]] | None = None, logs: list[Any] | None = None,
              idle_timeout: Any = None, source_ip_hash: bool = False,
              max_connection_duration: Any = None) -> lc_pb2.Filter:
    cfg = tcp_proxy_pb2.TcpProxy(stat_prefix=stat_prefix)
    if weighted:
        for name, weight in weighted:
            cfg.weighted_clusters.clusters.add(name=name, weight=weight)
    else:
        cfg.cluster = cluster or stat_prefix
    if idle_timeout is not None:
        cfg.idle_timeout.CopyFrom(idle_timeout)
    if max_connection_duration is not None:
        cfg.max_downstream_connection_duration.CopyFrom(max_connection_duration)
    if source_ip_hash:
        cfg.hash_policy.add().source_ip.SetInParent()
    for log in logs or []:
        cfg.access_log.append(log)
    return network_filter(TCP_PROXY, cfg)


def ads_config_source() -> config_source_pb2.ConfigSource:
    src = config_source_pb2.ConfigSource()
    src.ads.SetInParent()
    src.initial_fetch_timeout.SetInParent()
    src.resource_api_version = config_source_pb2.V3
    return src


def _literal(tag: str, value: str) -> custom_tag_pb2.CustomTag:
    t = custom_tag_pb2.CustomTag(tag=tag)
    t.literal.value = value
    return t


def _dry_run(tag: str, key: str) -> custom_tag_pb2.CustomTag:
    t = custom_tag_pb2.CustomTag(tag=tag)
    t.metadata.kind.request.SetInParent()
    t.metadata.metadata_key.key = "envoy.filters.http.rbac"
    t.metadata.metadata_key.path.add(key=key)
    return t


def tracing(proxy_labels: dict[str, str], namespace: str, *, mesh_id: str = "cluster.local",
            cluster_id: str = "Kubernetes", sampling: float = 1.0) -> hcm_pb2.HttpConnectionManager.Tracing:
    """`configureTracingFromTelemetry` without a Telemetry resource (mesh enableTracing)."""
    t = hcm_pb2.HttpConnectionManager.Tracing()
    t.client_sampling.value = 100.0
    t.random_sampling.value = sampling
    t.overall_sampling.value = 100.0
    tags = [
        _literal("istio.canonical_revision",
                 proxy_labels.get("service.istio.io/canonical-revision") or "latest"),
        _literal("istio.canonical_service",
                 proxy_labels.get("service.istio.io/canonical-name") or "unknown"),
        _literal("istio.mesh_id", mesh_id or "unknown"),
        _literal("istio.namespace", namespace or "default"),
        _literal("istio.cluster_id", cluster_id or "unknown"),
        _dry_run("istio.authorization.dry_run.allow_policy.name",
                 "istio_dry_run_allow_shadow_effective_policy_id"),
        _dry_run("istio.authorization.dry_run.allow_policy.result",
                 "istio_dry_run_allow_shadow_engine_result"),
        _dry_run("istio.authorization.dry_run.deny_policy.name",
                 "istio_dry_run_deny_shadow_effective_policy_id"),
        _dry_run("istio.authorization.dry_run.deny_policy.result",
                 "istio_dry_run_deny_shadow_engine_result"),
    ]
    t.custom_tags.extend(sorted(tags, key=lambda x: x.tag))
    return t


def request_id() -> hcm_pb2.RequestIDExtension:
    ext = hcm_pb2.RequestIDExtension()
    cfg = uuid_pb2.UuidRequestIdConfig()
    cfg.use_request_id_for_trace_sampling.value = True
    ext.typed_config.Pack(cfg)
    return ext


def base_hcm(stat_prefix: str, *, mesh: Any) -> hcm_pb2.HttpConnectionManager:
    """Fields common to istiod's sidecar HCMs (`buildHTTPConnectionManager`)."""
    h = hcm_pb2.HttpConnectionManager(stat_prefix=stat_prefix)
    h.codec_type = hcm_pb2.HttpConnectionManager.AUTO
    h.use_remote_address.value = False
    h.use_remote_address.SetInParent()
    h.normalize_path.value = True
    h.path_with_escaped_slashes_action = hcm_pb2.HttpConnectionManager.KEEP_UNCHANGED
    h.upgrade_configs.add(upgrade_type="websocket")
    h.stream_idle_timeout.SetInParent()
    h.server_header_transformation = hcm_pb2.HttpConnectionManager.OVERWRITE
    h.proxy_100_continue = True
    for log in access_logs(mesh):
        h.access_log.append(log)
    h.request_id_extension.CopyFrom(request_id())
    return h


