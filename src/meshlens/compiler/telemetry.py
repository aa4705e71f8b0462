"""``istio.stats``: the Prometheus stats filters istiod adds when a metrics provider is enabled.

Layer: L4. Imports: compiler.filters, protobuf.

`Telemetries.telemetryFilters` with no Telemetry resource: `mergeMetrics` takes MeshConfig
``defaultProviders.metrics``; each name (sorted, `fetchProvider` ignoring case) that is an
``extensionProviders`` entry of kind ``prometheus`` -- MeshConfig's defaults include one named
``prometheus`` (`DefaultMeshConfig`), user entries are added to them -- gives one ``istio.stats``
filter (`buildHTTPTelemetryFilter` / `buildTCPTelemetryFilter`) with a ``stats.PluginConfig``
(`generateStatsConfig`: ``disable_host_header_fallback`` on inbound, no overrides, no reporting
interval without a Telemetry). The HTTP filter goes after cors, before the router; the network
filter after the authz filters, before tcp_proxy, also on the blackhole and catch-all chains
(`buildMetricsNetworkFilters`). The ``stats.PluginConfig`` message (istio/api
``envoy/extensions/stats/config.proto``) is declared here from its field numbers.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from meshlens.compiler import filters as flt

STATS = "istio.stats"
DEFAULT_PROVIDERS = {"prometheus": "prometheus", "stackdriver": "stackdriver", "envoy": "envoyFileAccessLog"}


def _build() -> Any:
    fdp = descriptor_pb2.FileDescriptorProto(name="envoy/extensions/stats/config.proto",
                                             package="stats", syntax="proto3",
                                             dependency=["google/protobuf/duration.proto"])
    F = descriptor_pb2.FieldDescriptorProto
    mc = fdp.message_type.add(name="MetricConfig")
    entry = mc.nested_type.add(name="DimensionsEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL, json_name="key")
    entry.field.add(name="value", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL, json_name="value")
    mc.field.add(name="dimensions", number=1, type=F.TYPE_MESSAGE, label=F.LABEL_REPEATED,
                 type_name=".stats.MetricConfig.DimensionsEntry", json_name="dimensions")
    mc.field.add(name="name", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL, json_name="name")
    mc.field.add(name="tags_to_remove", number=3, type=F.TYPE_STRING, label=F.LABEL_REPEATED,
                 json_name="tagsToRemove")
    mc.field.add(name="drop", number=5, type=F.TYPE_BOOL, label=F.LABEL_OPTIONAL, json_name="drop")
    rep = fdp.enum_type.add(name="Reporter")
    rep.value.add(name="UNSPECIFIED", number=0)
    rep.value.add(name="SERVER_GATEWAY", number=1)
    pc = fdp.message_type.add(name="PluginConfig")
    pc.field.add(name="disable_host_header_fallback", number=6, type=F.TYPE_BOOL,
                 label=F.LABEL_OPTIONAL, json_name="disableHostHeaderFallback")
    pc.field.add(name="tcp_reporting_duration", number=7, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL,
                 type_name=".google.protobuf.Duration", json_name="tcpReportingDuration")
    pc.field.add(name="metrics", number=8, type=F.TYPE_MESSAGE, label=F.LABEL_REPEATED,
                 type_name=".stats.MetricConfig", json_name="metrics")
    pc.field.add(name="reporter", number=10, type=F.TYPE_ENUM, label=F.LABEL_OPTIONAL,
                 type_name=".stats.Reporter", json_name="reporter")
    pool = descriptor_pool.Default()
    try:
        desc = pool.FindMessageTypeByName("stats.PluginConfig")
    except KeyError:
        from google.protobuf import duration_pb2  # noqa: F401  (the dependency must be in the pool)

        pool.Add(fdp)
        desc = pool.FindMessageTypeByName("stats.PluginConfig")
    return message_factory.GetMessageClass(desc)


PluginConfig = _build()


def _providers(mesh: Any) -> list[dict[str, Any]]:
    """MeshConfig ``extensionProviders`` over istiod's defaults (`ApplyMeshConfig`)."""
    out: list[dict[str, Any]] = [{"name": n, k: {}} for n, k in DEFAULT_PROVIDERS.items()]
    for p in mesh.get("extensionProviders") or []:
        if not isinstance(p, dict):
            continue
        same = [i for i, e in enumerate(out) if e["name"] == p.get("name")]
        if same:
            out[same[0]] = p
        else:
            out.append(p)
    return out


def prometheus_providers(mesh: Any) -> list[str]:
    """The metrics providers of ``defaultProviders`` that are Prometheus, in istiod's order."""
    dp = mesh.get("defaultProviders")
    names = dp.get("metrics") if isinstance(dp, dict) else None
    out = []
    for name in sorted({str(n) for n in names or []}):
        p = next((e for e in _providers(mesh) if str(e.get("name", "")).lower() == name.lower()), None)
        if p is not None and "prometheus" in p:
            out.append(name)
    return out


def _config(inbound: bool) -> Any:
    return PluginConfig(disable_host_header_fallback=inbound)


def stats_http_filters(mesh: Any, *, inbound: bool) -> list[Any]:
    """`buildHTTPTelemetryFilter`."""
    return [flt.http_filter(STATS, _config(inbound)) for _ in prometheus_providers(mesh)]


def stats_network_filters(mesh: Any, *, inbound: bool) -> list[Any]:
    """`buildTCPTelemetryFilter` (`buildMetricsNetworkFilters`)."""
    return [flt.network_filter(STATS, _config(inbound)) for _ in prometheus_providers(mesh)]
