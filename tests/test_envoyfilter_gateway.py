"""EnvoyFilter on gateways (the GATEWAY context), WAYPOINT patches, and targetRefs.

Each test names the istiod function it pins: `buildClusters` (default branch, ``clusterPatcher``
with ``EnvoyFilter_GATEWAY``), `ListenerBuilder.patchListeners` (``Router``), `BuildHTTPRoutes`
(``Router``: `ApplyRouteConfigurationPatches` with the GATEWAY context),
`routeConfigurationMatch` / `anyPortMatches` / `ParseGatewayRDSRouteName`, `normalizeClusters`,
`ShouldAttachPolicy`. Inputs are the golden gateway cases under tests/cases/gateway-*.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from meshlens.compiler import CompileResult
from meshlens.pipeline import compile_for, load_string
from test_envoyfilter import LUA, ef, lua_patch

CASES = Path(__file__).resolve().parent / "cases"
GATEWAY = "deploy/istio-ingressgateway.istio-system"


def gw(case: str, extra: str, proxy: str = GATEWAY) -> CompileResult:
    text = (CASES / case / "manifests.yaml").read_text()
    return compile_for(load_string(text + extra, "m.yaml"), proxy)


def http_filters(result: CompileResult, listener: str = "0.0.0.0_8080", chain: int = 0) -> list[str]:
    lis = next(x for x in result.listeners or [] if x.name == listener)
    h = hcm_pb2.HttpConnectionManager()
    next(f for f in lis.filter_chains[chain].filters if f.name.endswith("manager")).typed_config.Unpack(h)
    return [f.name for f in h.http_filters]


def route(result: CompileResult, name: str) -> Any:
    return next(r for r in result.routes or [] if r.name == name)


# --- listeners: ListenerBuilder.patchListeners for a Router ---------------------------------------

def test_gateway_context_patches_the_gateway_listener() -> None:
    r = gw("gateway-bookinfo", ef("lua", lua_patch("INSERT_BEFORE", context="GATEWAY"),
                                  ns="istio-system"))
    assert http_filters(r)[-2:] == ["my.lua", "envoy.filters.http.router"]
    origin = r.provenance.of("listener", "0.0.0.0_8080")
    assert any(o.rule == "patched by EnvoyFilter istio-system/lua" for o in origin.values())


def test_sidecar_contexts_never_touch_a_gateway_and_gateway_never_a_sidecar() -> None:
    for context in ("SIDECAR_OUTBOUND", "SIDECAR_INBOUND"):
        r = gw("gateway-bookinfo", ef("lua", lua_patch("INSERT_BEFORE", context=context),
                                      ns="istio-system"))
        assert "my.lua" not in http_filters(r)
    # a root-namespace GATEWAY patch reaches the gateway but no sidecar
    r = gw("gateway-bookinfo", ef("lua", lua_patch("INSERT_BEFORE", context="GATEWAY", port=9080),
                                  ns="istio-system"), proxy="deploy/productpage-v1.default")
    lis = next(x for x in r.listeners or [] if x.name == "0.0.0.0_9080")
    h = hcm_pb2.HttpConnectionManager()
    lis.filter_chains[0].filters[-1].typed_config.Unpack(h)
    assert "my.lua" not in [f.name for f in h.http_filters]


def test_any_context_applies_to_gateways_too() -> None:
    r = gw("gateway-bookinfo", ef("lua", lua_patch("INSERT_FIRST", context="ANY"), ns="istio-system"))
    assert http_filters(r)[0] == "my.lua"


def test_listener_add_remove_and_network_filter_on_a_gateway() -> None:
    """`patchListeners`: an ADD without a context (ANY) is added for GATEWAY; REMOVE by port."""
    patches = f"""  - applyTo: LISTENER
    match: {{context: ANY}}
    patch:
      operation: ADD
      value:
        name: extra
        address: {{socket_address: {{address: 0.0.0.0, port_value: 9999}}}}
        filter_chains: [{{filters: [{{name: envoy.filters.network.tcp_proxy, typed_config: {{'@type': type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: x, cluster: BlackHoleCluster}}}}]}}]
  - applyTo: NETWORK_FILTER
    match: {{context: GATEWAY, listener: {{portNumber: 8080}}}}
    patch:
      operation: INSERT_FIRST
      value: {{name: my.rbac, typed_config: {{'@type': type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC, stat_prefix: x}}}}
  - applyTo: FILTER_CHAIN
    match: {{context: GATEWAY, listener: {{portNumber: 8080}}}}
    patch: {{operation: MERGE, value: {{name: merged-chain}}}}
"""
    r = gw("gateway-bookinfo", ef("lis", patches, ns="istio-system"))
    assert [x.name for x in r.listeners or []] == ["0.0.0.0_8080", "extra"]
    lis = r.listeners[0]  # type: ignore[index]
    assert lis.filter_chains[0].name == "merged-chain"
    assert [f.name for f in lis.filter_chains[0].filters][0] == "my.rbac"
    removed = gw("gateway-bookinfo", ef("rm", """  - applyTo: LISTENER
    match: {context: GATEWAY, listener: {portNumber: 8080}}
    patch: {operation: REMOVE}
""", ns="istio-system"))
    assert removed.listeners == []


# --- clusters: buildClusters (default branch), normalizeClusters ----------------------------------

def test_gateway_clusters_merge_add_and_normalize() -> None:
    static = ("{name: %s, type: STATIC, connect_timeout: 1s, load_assignment: {cluster_name: %s, "
              "endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, "
              "port_value: 9}}}}]}]}}")
    patches = f"""  - applyTo: CLUSTER
    match: {{context: GATEWAY, cluster: {{service: reviews.default.svc.cluster.local, portNumber: 9080}}}}
    patch: {{operation: MERGE, value: {{connect_timeout: 7s}}}}
  - applyTo: CLUSTER
    match: {{context: GATEWAY}}
    patch: {{operation: ADD, value: {static % ("my-static", "my-static")}}}
  - applyTo: CLUSTER
    patch: {{operation: ADD, value: {static % ("any-static", "any-static")}}}
  - applyTo: CLUSTER
    match: {{context: GATEWAY}}
    patch: {{operation: ADD, value: {static % ("BlackHoleCluster", "BlackHoleCluster")}}}
  - applyTo: CLUSTER
    match: {{context: SIDECAR_OUTBOUND, cluster: {{portNumber: 9080}}}}
    patch: {{operation: REMOVE}}
"""
    r = gw("gateway-bookinfo", ef("cl", patches, ns="istio-system"))
    names = [c.name for c in r.clusters]
    assert names[-3:] == ["BlackHoleCluster", "my-static", "any-static"]  # the ADDs come last
    assert names.count("BlackHoleCluster") == 1  # normalizeClusters keeps the first
    bh = r.cluster("BlackHoleCluster")
    assert bh is not None and bh.type == 0  # STATIC, the built one (not the ADD's load assignment)
    assert not bh.load_assignment.endpoints
    c = r.cluster("outbound|9080||reviews.default.svc.cluster.local")
    assert c is not None and c.connect_timeout.seconds == 7  # REMOVE was SIDECAR_OUTBOUND only
    assert r.provenance.of("cluster", c.name)["connect_timeout"].rule == \
        "patched by EnvoyFilter istio-system/cl"


# --- routes: routeConfigurationMatch for GATEWAY --------------------------------------------------

VHOST = """  - applyTo: VIRTUAL_HOST
    match: {context: GATEWAY, routeConfiguration: %s}
    patch: {operation: MERGE, value: {per_request_buffer_limit_bytes: 1234}}
"""


def test_route_port_number_is_the_server_port_through_the_port_map() -> None:
    """`anyPortMatches`: route ``http.8080`` serves Gateway port 80 (``resolvePorts``), so a
    ``portNumber: 80`` match applies and ``portNumber: 8080`` does not."""
    r80 = gw("gateway-resolve-ports", ef("vh", VHOST % "{portNumber: 80}", ns="istio-system"))
    assert route(r80, "http.8080").virtual_hosts[0].per_request_buffer_limit_bytes.value == 1234
    r8080 = gw("gateway-resolve-ports", ef("vh", VHOST % "{portNumber: 8080}", ns="istio-system"))
    assert route(r8080, "http.8080").virtual_hosts[0].per_request_buffer_limit_bytes.value != 1234
    # a port no server resolved to is compared with the route's own port
    r9000 = gw("gateway-resolve-ports", ef("vh", VHOST % "{portNumber: 9000}", ns="istio-system"))
    assert route(r9000, "http.9000").virtual_hosts[0].per_request_buffer_limit_bytes.value == 1234


def test_route_match_on_port_name_and_gateway_of_an_https_route() -> None:
    """`ParseGatewayRDSRouteName`: ``https.443.https-web.web-gw.shop`` carries the server's port
    name and the Gateway ``shop/web-gw``."""
    r = gw("gateway-https-credentials",
           ef("vh", VHOST % "{portName: https-web, gateway: shop/web-gw}", ns="istio-system"))
    patched = [rc.name for rc in r.routes or []
               if any(vh.per_request_buffer_limit_bytes.value == 1234 for vh in rc.virtual_hosts)]
    assert patched == ["https.443.https-web.web-gw.shop"]
    none = gw("gateway-https-credentials",
              ef("vh", VHOST % "{portName: https-web, gateway: other/web-gw}", ns="istio-system"))
    assert not any(vh.per_request_buffer_limit_bytes.value == 1234
                   for rc in none.routes or [] for vh in rc.virtual_hosts)


def test_http_route_patch_on_a_gateway_route() -> None:
    patches = """  - applyTo: HTTP_ROUTE
    match: {context: GATEWAY, routeConfiguration: {vhost: {route: {action: ROUTE}}}}
    patch: {operation: MERGE, value: {decorator: {operation: patched}}}
"""
    r = gw("gateway-bookinfo", ef("rt", patches, ns="istio-system"))
    routes = route(r, "http.8080").virtual_hosts[0].routes
    assert routes and all(x.decorator.operation == "patched" for x in routes
                          if x.WhichOneof("action") == "route")
    assert "virtual_hosts[0].routes[0].decorator" in r.provenance.of("route", "http.8080")


# --- WAYPOINT: never applied to sidecars or gateways ----------------------------------------------

def test_waypoint_context_applies_to_no_sidecar_and_no_gateway() -> None:
    patch = lua_patch("INSERT_FIRST", context="WAYPOINT", sub=None)
    r = gw("gateway-bookinfo", ef("wp", patch, ns="istio-system"))
    assert "my.lua" not in http_filters(r)
    side = gw("gateway-bookinfo", ef("wp", lua_patch("INSERT_FIRST", context="WAYPOINT", sub=None,
                                                      port=9080), ns="istio-system"),
              proxy="deploy/productpage-v1.default")
    assert not side.provenance.of("envoyfilter", "istio-system/wp")


# --- targetRefs: ShouldAttachPolicy ---------------------------------------------------------------

TARGETED = """---
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: targeted, namespace: default}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: %s}]
  configPatches:
  - applyTo: HTTP_FILTER
    match:
      context: GATEWAY
      listener: {filterChain: {filter: {name: envoy.filters.network.http_connection_manager}}}
    patch:
      operation: INSERT_FIRST
      value: {name: my.lua, typed_config: {'@type': '%s', default_source_code: {inline_string: x}}}
"""


def test_target_refs_attach_to_the_named_gateway_api_gateway_only() -> None:
    proxy = "deploy/helloworld-gateway-istio.default"
    hit = gw("gateway-api-helloworld", TARGETED % ("helloworld-gateway", LUA), proxy=proxy)
    listener = hit.listeners[0].name  # type: ignore[index]
    assert http_filters(hit, listener)[0] == "my.lua"
    miss = gw("gateway-api-helloworld", TARGETED % ("other-gateway", LUA), proxy=proxy)
    assert "my.lua" not in http_filters(miss, listener)
    # an Istio-chart gateway (no gateway-name label) ignores targetRefs altogether
    chart = gw("gateway-bookinfo", (TARGETED % ("istio-ingressgateway", LUA)).replace(
        "namespace: default", "namespace: istio-system"))
    assert "my.lua" not in http_filters(chart)


# --- the patched gateway still loads in the real Envoy; analyze sees gateway patches -------------

@pytest.mark.envoy
def test_patched_gateway_config_loads_in_the_real_envoy() -> None:
    from meshlens.emit import config_dump, to_dict
    from meshlens.lab.envoy import validate_config_dump

    lua = lua_patch("INSERT_BEFORE", context="GATEWAY").replace(
        "inline_string: 'x'", "inline_string: 'function envoy_on_request(h) end'")
    patches = lua + """  - applyTo: CLUSTER
    match: {context: GATEWAY, cluster: {portNumber: 9080}}
    patch: {operation: MERGE, value: {connect_timeout: 3s}}
  - applyTo: HTTP_ROUTE
    match: {context: GATEWAY, routeConfiguration: {portNumber: 8080}}
    patch: {operation: MERGE, value: {decorator: {operation: patched}}}
"""
    r = gw("gateway-bookinfo", ef("all", patches, ns="istio-system"))
    assert len(r.provenance.of("envoyfilter", "istio-system/all")) == 3
    v = validate_config_dump(to_dict(config_dump(r)))
    assert v.ok, v.error


def test_analyze_checks_gateway_patches_against_the_gateway() -> None:
    from meshlens.analyze import by_name, run

    text = (CASES / "gateway-bookinfo" / "manifests.yaml").read_text()
    patches = lua_patch("INSERT_BEFORE", context="GATEWAY") + lua_patch(
        "INSERT_BEFORE", context="GATEWAY", port=9999)
    loaded = load_string(text + ef("gw", patches, ns="istio-system",
                                   extra="  workloadSelector: {labels: {istio: ingressgateway}}\n"),
                         "m.yaml")
    found = run(loaded, proxies=(), analyzers=by_name(["meshlens.AuthorizationEffect"]),
                include_input_diagnostics=False)
    assert [(f.code, f.path) for f in found] == [("ML1303", ("spec", "configPatches", 1))]


def test_route_configuration_merge_and_the_gateway_field_on_plain_http_routes() -> None:
    """`ParseGatewayRDSRouteName`: ``http.8080`` carries no gateway name, so a ``gateway`` match
    never selects a plain-HTTP route configuration; ``name`` or ``portNumber`` do."""
    rc = """  - applyTo: ROUTE_CONFIGURATION
    match: {context: GATEWAY, routeConfiguration: %s}
    patch: {operation: MERGE, value: {max_direct_response_body_size_bytes: 4321}}
"""
    by_name = gw("gateway-bookinfo", ef("rc", rc % "{name: http.8080}", ns="istio-system"))
    assert route(by_name, "http.8080").max_direct_response_body_size_bytes.value == 4321
    assert "max_direct_response_body_size_bytes" in by_name.provenance.of("route", "http.8080")
    by_gw = gw("gateway-bookinfo", ef("rc", rc % "{gateway: default/bookinfo-gateway}",
                                      ns="istio-system"))
    assert route(by_gw, "http.8080").max_direct_response_body_size_bytes.value != 4321
