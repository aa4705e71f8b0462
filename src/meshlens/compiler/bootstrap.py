"""Build the Envoy bootstrap Istio's sidecar agent (pilot-agent) renders for one Kubernetes pod.

Layer: L4 (compile). Imports: errors, stdlib, protobuf and the generated Envoy classes (xds-protos).
(Returning real protobuf messages is an exception to the style guide's no-protobuf rule for the
compiler, made because the bootstrap is never provenance-tracked: it is fixed by the template.)

The bootstrap is the static half of a sidecar's config: istiod pushes everything else over ADS.
This module reproduces what ``pilot-agent`` renders from its Go template
``tools/packaging/common/envoy_bootstrap.json`` with the values computed in
``pkg/bootstrap/config.go`` and ``pkg/bootstrap/option/``, for **default settings** (default
MeshConfig and ProxyConfig, default injector values, IPv4 pod, no annotations that change stats
or tracing). It is pure: no I/O, no clock, no environment; every output field comes from
:class:`BootstrapInputs` or from a constant below. It returns real protobuf messages.

Template sections reproduced (in template order):

* ``application_log_config``: the text log format (``log_as_json`` off).
* ``node``: id ``sidecar~<ip>~<pod>.<ns>~<ns>.svc.<domain>``, cluster from Istio's
  ``serviceClusterOrDefault`` (``<app>.<ns>``), ``locality`` (always present, empty by default) and
  ``metadata`` -- the ``ISTIO_META_*`` variables the injector sets plus what the agent adds
  (``PROXY_CONFIG``, ``INSTANCE_IPS``, ``PILOT_SAN``, ports, ...), see :func:`build_node_metadata`.
* ``layered_runtime``: the default runtime flags of ``extractRuntimeFlags`` and the admin layer.
* ``bootstrap_extensions``: ``envoy.bootstrap.internal_listener`` as a ``udpa.type.v1.TypedStruct``.
* ``stats_config``: the fixed tag extractors and the inclusion list with Istio's required
  prefixes, suffixes and regex (``getStatsOptions`` without annotations or ProxyStatsMatcher).
* ``admin``: ``127.0.0.1:15000``, access log to ``/dev/null``, ``profile_path``.
* ``dynamic_resources``: LDS and CDS over ADS (``initial_fetch_timeout: 0s``), ADS over the
  ``xds-grpc`` cluster; ``DELTA_GRPC`` because ``ISTIO_DELTA_XDS`` defaults to true
  (``BootstrapInputs.delta_xds=False`` gives ``GRPC``).
* ``static_resources.clusters`` in template order: ``prometheus_stats``, ``agent``, ``sds-grpc``
  (pipe ``./var/run/secrets/workload-spiffe-uds/socket``), ``xds-grpc`` (pipe
  ``./etc/istio/proxy/XDS``; it keeps the deprecated ``max_requests_per_connection`` exactly as
  the template does, so Envoy logs a deprecation warning).
* ``static_resources.listeners``: ``0.0.0.0_15090`` (Prometheus, with the brotli/zstd/gzip
  compressors because ProxyConfig ``statsCompression`` defaults to on) and ``0.0.0.0_15021``
  (health).
* ``overload_manager``: the global downstream connection monitor at ``2147483647``.
* ``deferred_stat_options``.

Template sections left out, each because its condition is false by default:

* ``metadata_discovery`` bootstrap extension and ``workload_discovery`` stat prefix: only with
  ambient/HBONE (``METADATA_DISCOVERY`` is ``"false"`` for a sidecar).
* ``stats_flush_interval`` / ``stats_eviction_interval`` / ``histogram_bucket_settings`` and
  ``extraStatTags``: only set by pod annotations or ProxyConfig.
* ``sds-files-grpc`` cluster: only when the credential-file socket exists.
* Tracing clusters and ``tracing`` (zipkin, lightstep, datadog): the chart's default
  ``global.proxy.tracer`` is ``"none"``, so ProxyConfig has no ``tracing``.
* ``envoy_metrics_service`` / ``envoy_accesslog_service`` clusters and ``stats_sinks``: not
  configured by default.
* ``local_cluster`` (self discovery), the secure metrics listeners (ports 0 = off),
  ``additionalAddresses`` (dual stack), the proxy-protocol listener filter on 15021.
* ``cluster_manager``: rendered only with an outlier log path, LRS or self discovery.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from envoy.admin.v3 import config_dump_pb2
from envoy.config.accesslog.v3 import accesslog_pb2
from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.cluster.v3 import circuit_breaker_pb2, cluster_pb2
from envoy.config.core.v3 import (
    address_pb2,
    base_pb2,
    config_source_pb2,
    extension_pb2,
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
from envoy.extensions.resource_monitors.downstream_connections.v3 import (
    downstream_connections_pb2,
)
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from envoy.type.matcher.v3 import regex_pb2
from google.protobuf import any_pb2, duration_pb2, wrappers_pb2
from google.protobuf.message import Message
from udpa.type.v1 import typed_struct_pb2

from meshlens.errors import UsageError

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


@dataclass(frozen=True, slots=True, kw_only=True)
class PodPort:
    """One container port, as the injector lists it in ``ISTIO_META_POD_PORTS``."""

    container_port: int
    protocol: str = "TCP"
    name: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class BootstrapInputs:
    """Everything about one pod that changes its sidecar bootstrap.

    Attributes:
        node_ip: the pod IP (IPv4); becomes ``INSTANCE_IPS`` and the second part of the node id.
        pod_name: ``metadata.name`` of the pod (``NAME``).
        namespace: the pod namespace (``NAMESPACE``).
        labels: the pod labels as the pod has them after injection (``LABELS``);
            ``pod-template-hash`` is dropped as pilot-agent does.
        service_account: ``spec.serviceAccountName`` (``SERVICE_ACCOUNT``).
        workload_name: the owning workload, e.g. the Deployment name (``WORKLOAD_NAME``).
        app_name: the ``app`` part of ``node.cluster``; empty means derive it like Istio
            (labels ``app``, ``app.kubernetes.io/name``, canonical name, then workload name).
        istio_version: ``ISTIO_VERSION``.
        cluster_id: ``CLUSTER_ID`` (``global.multiCluster.clusterName``).
        trust_domain: the mesh trust domain; also ``MESH_ID`` when no meshID is set.
        cluster_domain: the Kubernetes DNS domain in the node id.
        node_name: the Kubernetes node (``NODE_NAME``); omitted when empty.
        owner: ``OWNER``; ``None`` means a Deployment named ``workload_name``, ``""`` omits it.
        annotations: pod annotations (``ANNOTATIONS``); omitted when empty.
        app_containers: container names (``APP_CONTAINERS``); omitted when empty.
        pod_ports: container ports (``POD_PORTS``); omitted when empty.
        region: locality region; zone and sub_zone likewise. Empty on plain Kubernetes.
        delta_xds: ``ISTIO_DELTA_XDS`` (default true): ADS ``DELTA_GRPC``, else ``GRPC``.
    """

    node_ip: str
    pod_name: str
    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    service_account: str = "default"
    workload_name: str = ""
    app_name: str = ""
    istio_version: str = "1.30.0"
    cluster_id: str = "Kubernetes"
    trust_domain: str = "cluster.local"
    cluster_domain: str = "cluster.local"
    node_name: str = ""
    owner: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    app_containers: tuple[str, ...] = ()
    pod_ports: tuple[PodPort, ...] = ()
    region: str = ""
    zone: str = ""
    sub_zone: str = ""
    delta_xds: bool = True
    proxy_type: str = "sidecar"  # "router" for a gateway: the node id's first part


def build_bootstrap(inputs: BootstrapInputs) -> bootstrap_pb2.Bootstrap:
    """Build the bootstrap pilot-agent would render for ``inputs`` with default settings.

    Args:
        inputs: the pod facts.

    Returns:
        A new ``envoy.config.bootstrap.v3.Bootstrap``.

    Raises:
        UsageError: ``node_ip`` is not an IPv4 address (only the IPv4 branch is modelled).

    Example:
        >>> bs = build_bootstrap(BootstrapInputs(node_ip="10.0.0.1", pod_name="web-1",
        ...                                      namespace="shop", labels={"app": "web"}))
        >>> bs.node.id, bs.node.cluster
        ('sidecar~10.0.0.1~web-1.shop~shop.svc.cluster.local', 'web.shop')
        >>> [c.name for c in bs.static_resources.clusters]
        ['prometheus_stats', 'agent', 'sds-grpc', 'xds-grpc']
    """
    try:
        ip = ipaddress.ip_address(inputs.node_ip)
    except ValueError as exc:
        raise UsageError(f"node_ip {inputs.node_ip!r} is not an IP address") from exc
    if ip.version != 4:
        raise UsageError(f"node_ip {inputs.node_ip!r}: only IPv4 sidecars are modelled")

    bs = bootstrap_pb2.Bootstrap()
    bs.application_log_config.log_format.text_format = _LOG_FORMAT
    bs.node.CopyFrom(_build_node(inputs))
    _apply_runtime(bs)
    bs.bootstrap_extensions.append(
        extension_pb2.TypedExtensionConfig(
            name="envoy.bootstrap.internal_listener",
            typed_config=_typed_struct(
                "type.googleapis.com/envoy.extensions.bootstrap.internal_listener.v3."
                "InternalListener",
                {"buffer_size_kb": 64},
            ),
        )
    )
    bs.stats_config.CopyFrom(_build_stats_config())
    _apply_admin(bs)
    _apply_dynamic_resources(bs, delta=inputs.delta_xds)
    bs.static_resources.clusters.extend(
        [
            _static_cluster("prometheus_stats", _tcp(LOCALHOST, ADMIN_PORT), "0.250s"),
            _static_cluster("agent", _tcp(LOCALHOST, AGENT_STATUS_PORT), "0.250s"),
            _static_cluster("sds-grpc", _pipe(SDS_SOCKET), "1s", http2=True),
            _build_xds_grpc_cluster(),
        ]
    )
    bs.static_resources.listeners.extend(
        [
            _static_listener(
                ENVOY_PROMETHEUS_PORT, "stats", "/stats/prometheus", "prometheus_stats",
                compress=True,
            ),
            _static_listener(ENVOY_STATUS_PORT, "agent", "/healthz/ready", "agent"),
        ]
    )
    bs.overload_manager.resource_monitors.add(
        name="envoy.resource_monitors.global_downstream_max_connections",
        typed_config=_pack(
            downstream_connections_pb2.DownstreamConnectionsConfig(
                max_active_downstream_connections=MAX_INT32
            )
        ),
    )
    bs.deferred_stat_options.enable_deferred_creation_stats = True
    return bs


def bootstrap_config_dump(bs: bootstrap_pb2.Bootstrap) -> config_dump_pb2.BootstrapConfigDump:
    """Wrap a bootstrap as the first entry of Envoy's ``/config_dump`` (``last_updated`` omitted).

    Example:
        >>> dump = bootstrap_config_dump(bootstrap_pb2.Bootstrap())
        >>> dump.HasField("last_updated")
        False
    """
    dump = config_dump_pb2.BootstrapConfigDump()
    dump.bootstrap.CopyFrom(bs)
    return dump


def service_cluster(inputs: BootstrapInputs) -> str:
    """Return ``node.cluster`` the way Istio's ``serviceClusterOrDefault`` picks it.

    Example:
        >>> service_cluster(BootstrapInputs(node_ip="10.0.0.1", pod_name="p", namespace="ns",
        ...                                 workload_name="reviews-v1"))
        'reviews-v1.ns'
    """
    app = inputs.app_name
    if not app:
        for key in ("app", "app.kubernetes.io/name", "service.istio.io/canonical-name"):
            if inputs.labels.get(key):
                app = inputs.labels[key]
                break
    if app:
        return f"{app}.{inputs.namespace}"
    if inputs.workload_name:
        return f"{inputs.workload_name}.{inputs.namespace}"
    return f"istio-proxy.{inputs.namespace}" if inputs.namespace else "istio-proxy"


def build_node_metadata(inputs: BootstrapInputs) -> dict[str, object]:
    """Return ``node.metadata`` as a plain dict with sorted keys.

    The keys are the JSON names of Istio's ``BootstrapNodeMetadata`` that a default injected
    sidecar carries: the injector's ``ISTIO_META_*`` variables (CLUSTER_ID, NODE_NAME,
    INTERCEPTION_MODE, WORKLOAD_NAME, OWNER, MESH_ID, POD_PORTS, APP_CONTAINERS), the downward
    API (NAME, NAMESPACE, SERVICE_ACCOUNT, LABELS, ANNOTATIONS) and what pilot-agent adds.
    Empty optional values are omitted, like Go's ``omitempty``.

    Example:
        >>> md = build_node_metadata(BootstrapInputs(node_ip="10.0.0.1", pod_name="p",
        ...                                          namespace="ns"))
        >>> md["CLUSTER_ID"], md["MESH_ID"], md["INTERCEPTION_MODE"], md["METADATA_DISCOVERY"]
        ('Kubernetes', 'cluster.local', 'REDIRECT', 'false')
    """
    labels = {k: inputs.labels[k] for k in sorted(inputs.labels) if k != "pod-template-hash"}
    owner = inputs.owner
    if owner is None:
        owner = (
            f"kubernetes://apis/apps/v1/namespaces/{inputs.namespace}/deployments/"
            f"{inputs.workload_name}"
            if inputs.workload_name
            else ""
        )
    md: dict[str, object] = {
        "ANNOTATIONS": {k: inputs.annotations[k] for k in sorted(inputs.annotations)},
        "APP_CONTAINERS": ",".join(inputs.app_containers),
        "CLUSTER_ID": inputs.cluster_id,
        "ENVOY_PROMETHEUS_PORT": ENVOY_PROMETHEUS_PORT,
        "ENVOY_STATUS_PORT": ENVOY_STATUS_PORT,
        "INSTANCE_IPS": inputs.node_ip,
        "INTERCEPTION_MODE": "REDIRECT",
        "ISTIO_VERSION": inputs.istio_version,
        "LABELS": labels,
        "MESH_ID": inputs.trust_domain,
        "METADATA_DISCOVERY": "false",
        "NAME": inputs.pod_name,
        "NAMESPACE": inputs.namespace,
        "NODE_NAME": inputs.node_name,
        "OWNER": owner,
        # pilot-agent only sets PILOT_SAN with controlPlaneAuthPolicy MUTUAL_TLS (the default).
        "PILOT_SAN": [DISCOVERY_ADDRESS.split(":")[0]],
        "POD_PORTS": _pod_ports_json(inputs.pod_ports),
        "PROXY_CONFIG": _default_proxy_config(),
        "SERVICE_ACCOUNT": inputs.service_account,
        "WORKLOAD_IDENTITY_SOCKET_FILE": "socket",
        "WORKLOAD_NAME": inputs.workload_name,
    }
    return {k: v for k, v in sorted(md.items()) if v not in ("", {}, [])}


def _build_node(inputs: BootstrapInputs) -> base_pb2.Node:
    node = base_pb2.Node(
        id=(
            f"{inputs.proxy_type}~{inputs.node_ip}~{inputs.pod_name}.{inputs.namespace}~"
            f"{inputs.namespace}.svc.{inputs.cluster_domain}"
        ),
        cluster=service_cluster(inputs),
    )
    # The template always renders "locality": {} even when every part is empty.
    node.locality.SetInParent()
    node.locality.region = inputs.region
    node.locality.zone = inputs.zone
    node.locality.sub_zone = inputs.sub_zone
    node.metadata.update(build_node_metadata(inputs))
    return node


def _default_proxy_config() -> dict[str, object]:
    # mesh.DefaultProxyConfig() as protojson (camelCase), which is what PROXY_CONFIG carries.
    return {
        "binaryPath": "/usr/local/bin/envoy",
        "configPath": CONFIG_PATH,
        "controlPlaneAuthPolicy": "MUTUAL_TLS",
        "discoveryAddress": DISCOVERY_ADDRESS,
        "drainDuration": "45s",
        "proxyAdminPort": ADMIN_PORT,
        "serviceCluster": "istio-proxy",
        "statNameLength": 189,
        "statusPort": AGENT_STATUS_PORT,
        "terminationDrainDuration": "5s",
    }


def _pod_ports_json(ports: tuple[PodPort, ...]) -> str:
    # model.PodPortList marshals to a JSON *string* holding a compact JSON list.
    if not ports:
        return ""
    items = []
    for p in ports:
        item: dict[str, object] = {"name": p.name} if p.name else {}
        item.update(containerPort=p.container_port, protocol=p.protocol)
        items.append(item)
    return json.dumps(items, separators=(",", ":"))


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
