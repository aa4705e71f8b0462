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

from envoy.admin.v3 import config_dump_pb2
from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.core.v3 import extension_pb2
from envoy.extensions.resource_monitors.downstream_connections.v3 import (
    downstream_connections_pb2,
)

from meshlens.compiler.bootstrap.node import (
    BootstrapInputs,
    PodPort,
    build_node,
    build_node_metadata,
    proxy_config,
    service_cluster,
)
from meshlens.compiler.bootstrap.template import (
    ADMIN_PORT,
    AGENT_STATUS_PORT,
    DISCOVERY_ADDRESS,
    ENVOY_PROMETHEUS_PORT,
    ENVOY_STATUS_PORT,
    LOCALHOST,
    MAX_INT32,
    SDS_SOCKET,
    _LOG_FORMAT,
    _apply_admin,
    _apply_dynamic_resources,
    _apply_runtime,
    _build_stats_config,
    _build_xds_grpc_cluster,
    _pack,
    _pipe,
    _static_cluster,
    _static_listener,
    _tcp,
    _typed_struct,
)
from meshlens.errors import UsageError

__all__ = [
    "ADMIN_PORT", "AGENT_STATUS_PORT", "DISCOVERY_ADDRESS", "ENVOY_PROMETHEUS_PORT",
    "ENVOY_STATUS_PORT", "SDS_SOCKET", "BootstrapInputs", "PodPort", "bootstrap_config_dump",
    "build_bootstrap", "build_node_metadata", "proxy_config", "service_cluster",
]


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
    bs.node.CopyFrom(build_node(inputs))
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


