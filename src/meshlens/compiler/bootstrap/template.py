"""The fixed half of the sidecar bootstrap: admin, stats, runtime, static clusters and listeners.

Layer: L4 (compile). Imports: xds-protos, protobuf.

Istio's ``tools/packaging/common/envoy_bootstrap.json`` with default settings; see the package
docstring for what is reproduced and what is left out.
"""

from __future__ import annotations

from envoy.config.accesslog.v3 import accesslog_pb2
from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.cluster.v3 import circuit_breaker_pb2, cluster_pb2
from envoy.config.core.v3 import (
    address_pb2,
    base_pb2,
    config_source_pb2,
    grpc_service_pb2,
    protocol_pb2,
)
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.metrics.v3 import stats_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.extensions.access_loggers.file.v3 import file_pb2
from envoy.extensions.compression.brotli.compressor.v3 import brotli_pb2
from envoy.extensions.compression.gzip.compressor.v3 import gzip_pb2
from envoy.extensions.compression.zstd.compressor.v3 import zstd_pb2
from envoy.extensions.filters.http.compressor.v3 import compressor_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from envoy.type.matcher.v3 import regex_pb2
from google.protobuf import any_pb2, duration_pb2, wrappers_pb2
from google.protobuf.message import Message
from udpa.type.v1 import typed_struct_pb2


LOCALHOST = "127.0.0.1"
WILDCARD = "0.0.0.0"
ADMIN_PORT = 15000  # ProxyConfig.proxyAdminPort
AGENT_STATUS_PORT = 15020  # ProxyConfig.statusPort (pilot-agent)
ENVOY_STATUS_PORT = 15021
ENVOY_PROMETHEUS_PORT = 15090
CONFIG_PATH = "./etc/istio/proxy"  # constants.ConfigPathDir
SDS_SOCKET = "./var/run/secrets/workload-spiffe-uds/socket"  # DefaultWorkloadIdentitySocketFile
DISCOVERY_ADDRESS = "istiod.istio-system.svc:15012"
MAX_INT32 = 2147483647

_LOG_FORMAT = "%Y-%m-%dT%T.%fZ\t%l\tenvoy %n %g:%#\t%v\tthread=%t"

# (tag_name, regex) in template order; the template has no extraStatTags by default.
_STATS_TAGS: tuple[tuple[str, str], ...] = (
    ("cluster_name", r"^cluster(\.(.+);)"),
    (
        "http_conn_manager_prefix",
        r"^http\.(((?:[_.[:digit:]\w]*|[_\[\]aAbBcCdDeEfF[:digit:]\w\:]*));\.)",
    ),
    ("thread_name", r"^server(\.(.+))\.watchdog"),
    ("tcp_prefix", r"^tcp\.((.*?)\.)\w+?$"),
    ("response_code", r"_rq(_(\d{3}))$"),
    ("response_code_class", r"_rq(_(\dxx))$"),
    (
        "http_conn_manager_listener_prefix",
        r"^listener(?=\.).*?\.http\.(((?:[_.[:digit:]]*|[_\[\]aAbBcCdDeEfF[:digit:]]*))\.)",
    ),
    ("listener_address", r"^listener\.(((?:[_.[:digit:]]*|[_\[\]aAbBcCdDeEfF[:digit:]]*))\.)"),
    ("mongo_prefix", r"^mongo\.(.+?)\.(collection|cmd|cx_|op_|delays_|decoding_)(.*?)$"),
    ("cache", r"(cache\.(.+?)\.)"),
    ("component", r"(component\.(.+?)\.)"),
    ("tag", r"(tag\.(.+?);\.)"),
    ("wasm_filter", r"(wasm_filter\.(.+?)\.)"),
    ("authz_enforce_result", r"rbac(\.(allowed|denied))"),
    ("authz_dry_run_action", r"(\.istio_dry_run_(allow|deny)_)"),
    ("authz_dry_run_result", r"(\.shadow_(allowed|denied))"),
)

# getStatsOptions: "reporter=", required prefixes, rbac suffixes, the vhost regex, "component",
# "istio" (EXIT_ON_ZERO_ACTIVE_CONNECTIONS off, so no "downstream_cx_active" suffix).
_STATS_PREFIXES = ("reporter=", "cluster_manager", "listener_manager", "server",
                   "cluster.xds-grpc", "wasm")
_STATS_SUFFIXES = ("rbac.allowed", "rbac.denied", "shadow_allowed", "shadow_denied")
_STATS_REGEXES = (r"vhost\..*\.route\..*",)
_STATS_TRAILING_PREFIXES = ("component", "istio")

# extractRuntimeFlags defaults (FIPS off, HTTP_STRIP_FRAGMENT_FROM_PATH_UNSAFE_IF_DISABLED on).
_RUNTIME_FLAGS: dict[str, bool | str] = {
    "envoy.deprecated_features:envoy.config.listener.v3.Listener."
    "hidden_envoy_deprecated_use_original_dst": True,
    "envoy.reloadable_features.coalesce_lb_rebuilds_on_batch_update": False,
    "envoy.reloadable_features.fixed_heap_use_allocated": True,
    "envoy.reloadable_features.http_reject_path_with_fragment": False,
    "re2.max_program_size.error_level": "32768",
}

_COMPRESSED_CONTENT_TYPES = (
    "text/plain",
    "application/vnd.google.protobuf",
    "application/openmetrics-text",
    "application/openmetrics-protobuf",
)

_HTTP_PROTOCOL_OPTIONS_KEY = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


def _apply_runtime(bs: bootstrap_pb2.Bootstrap) -> None:
    static = bs.layered_runtime.layers.add(name="global config")
    static.static_layer.update(_RUNTIME_FLAGS)
    bs.layered_runtime.layers.add(name="admin").admin_layer.SetInParent()


def _build_stats_config() -> stats_pb2.StatsConfig:
    out = stats_pb2.StatsConfig(use_all_default_tags=wrappers_pb2.BoolValue(value=False))
    for tag_name, regex in _STATS_TAGS:
        out.stats_tags.add(tag_name=tag_name, regex=regex)
    patterns = out.stats_matcher.inclusion_list.patterns
    for prefix in _STATS_PREFIXES:
        patterns.add(prefix=prefix)
    for suffix in _STATS_SUFFIXES:
        patterns.add(suffix=suffix)
    for regex in _STATS_REGEXES:
        patterns.add(safe_regex=regex_pb2.RegexMatcher(regex=regex))
    for prefix in _STATS_TRAILING_PREFIXES:
        patterns.add(prefix=prefix)
    return out


def _apply_admin(bs: bootstrap_pb2.Bootstrap) -> None:
    bs.admin.access_log.append(
        accesslog_pb2.AccessLog(
            name="envoy.access_loggers.file",
            typed_config=_pack(file_pb2.FileAccessLog(path="/dev/null")),
        )
    )
    bs.admin.profile_path = "/var/lib/istio/data/envoy.prof"
    bs.admin.address.CopyFrom(_tcp(LOCALHOST, ADMIN_PORT))


def _apply_dynamic_resources(bs: bootstrap_pb2.Bootstrap, *, delta: bool) -> None:
    for source in (bs.dynamic_resources.lds_config, bs.dynamic_resources.cds_config):
        source.ads.SetInParent()
        source.initial_fetch_timeout.CopyFrom(duration_pb2.Duration())
        source.resource_api_version = config_source_pb2.V3
    ads = bs.dynamic_resources.ads_config
    ads.api_type = (
        config_source_pb2.ApiConfigSource.DELTA_GRPC
        if delta
        else config_source_pb2.ApiConfigSource.GRPC
    )
    ads.set_node_on_first_message_only = True
    ads.transport_api_version = config_source_pb2.V3
    ads.grpc_services.append(
        grpc_service_pb2.GrpcService(
            envoy_grpc=grpc_service_pb2.GrpcService.EnvoyGrpc(cluster_name="xds-grpc")
        )
    )


def _static_cluster(
    name: str, address: address_pb2.Address, connect_timeout: str, *, http2: bool = False
) -> cluster_pb2.Cluster:
    out = cluster_pb2.Cluster(
        name=name,
        alt_stat_name=f"{name};",
        type=cluster_pb2.Cluster.STATIC,
        lb_policy=cluster_pb2.Cluster.ROUND_ROBIN,
    )
    out.connect_timeout.FromJsonString(connect_timeout)
    out.load_assignment.CopyFrom(
        endpoint_pb2.ClusterLoadAssignment(
            cluster_name=name,
            endpoints=[
                endpoint_components_pb2.LocalityLbEndpoints(
                    lb_endpoints=[
                        endpoint_components_pb2.LbEndpoint(
                            endpoint=endpoint_components_pb2.Endpoint(address=address)
                        )
                    ]
                )
            ],
        )
    )
    if http2:
        opts = http_protocol_options_pb2.HttpProtocolOptions()
        opts.explicit_http_config.http2_protocol_options.CopyFrom(
            protocol_pb2.Http2ProtocolOptions()
        )
        out.typed_extension_protocol_options[_HTTP_PROTOCOL_OPTIONS_KEY].Pack(opts)
    return out


def _build_xds_grpc_cluster() -> cluster_pb2.Cluster:
    out = _static_cluster("xds-grpc", _pipe(f"{CONFIG_PATH}/XDS"), "1s", http2=True)
    for priority in (base_pb2.DEFAULT, base_pb2.HIGH):
        out.circuit_breakers.thresholds.append(
            circuit_breaker_pb2.CircuitBreakers.Thresholds(
                priority=priority,
                max_connections=wrappers_pb2.UInt32Value(value=100000),
                max_pending_requests=wrappers_pb2.UInt32Value(value=100000),
                max_requests=wrappers_pb2.UInt32Value(value=100000),
            )
        )
    out.upstream_connection_options.tcp_keepalive.keepalive_time.value = 300
    # Deprecated in Envoy, but the template still sets it.
    out.max_requests_per_connection.value = 1
    return out


def _static_listener(
    port: int, stat_prefix: str, path_prefix: str, cluster: str, *, compress: bool = False
) -> listener_pb2.Listener:
    hcm = hcm_pb2.HttpConnectionManager(
        codec_type=hcm_pb2.HttpConnectionManager.AUTO, stat_prefix=stat_prefix
    )
    hcm.route_config.CopyFrom(
        route_pb2.RouteConfiguration(
            virtual_hosts=[
                route_components_pb2.VirtualHost(
                    name="backend",
                    domains=["*"],
                    routes=[
                        route_components_pb2.Route(
                            match=route_components_pb2.RouteMatch(prefix=path_prefix),
                            route=route_components_pb2.RouteAction(cluster=cluster),
                        )
                    ],
                )
            ]
        )
    )
    if compress:
        for algo, library in (
            ("brotli", brotli_pb2.Brotli()),
            ("zstd", zstd_pb2.Zstd()),
            ("gzip", gzip_pb2.Gzip()),
        ):
            hcm.http_filters.append(_compressor_filter(algo, library))
    hcm.http_filters.append(
        hcm_pb2.HttpFilter(
            name="envoy.filters.http.router", typed_config=_pack(router_pb2.Router())
        )
    )
    out = listener_pb2.Listener(
        name=f"{WILDCARD}_{port}",
        address=_tcp(WILDCARD, port),
        ignore_global_conn_limit=True,
        bypass_overload_manager=True,
    )
    out.filter_chains.append(
        listener_components_pb2.FilterChain(
            filters=[
                listener_components_pb2.Filter(
                    name="envoy.filters.network.http_connection_manager",
                    typed_config=_pack(hcm),
                )
            ]
        )
    )
    return out


def _compressor_filter(algo: str, library: Message) -> hcm_pb2.HttpFilter:
    cfg = compressor_pb2.Compressor()
    cfg.compressor_library.name = f"stats_{algo}"
    cfg.compressor_library.typed_config.Pack(library)
    # Deprecated in Envoy, but it is the field the template sets.
    cfg.response_direction_config.common_config.content_type.extend(_COMPRESSED_CONTENT_TYPES)
    return hcm_pb2.HttpFilter(
        name=f"envoy.filters.http.compressor.{algo}", typed_config=_pack(cfg)
    )


def _tcp(host: str, port: int) -> address_pb2.Address:
    # The template spells out "protocol": "TCP"; it is the proto default, so dumps omit it.
    return address_pb2.Address(
        socket_address=address_pb2.SocketAddress(
            protocol=address_pb2.SocketAddress.TCP, address=host, port_value=port
        )
    )


def _pipe(path: str) -> address_pb2.Address:
    return address_pb2.Address(pipe=address_pb2.Pipe(path=path))


def _pack(msg: Message) -> any_pb2.Any:
    out = any_pb2.Any()
    out.Pack(msg)
    return out


def _typed_struct(type_url: str, value: dict[str, object]) -> any_pb2.Any:
    ts = typed_struct_pb2.TypedStruct(type_url=type_url)
    ts.value.update(value)
    return _pack(ts)
