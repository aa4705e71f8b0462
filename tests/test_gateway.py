"""Gateway proxies in router mode: istiod's rules, each test naming the Go function it checks.

pilot/pkg/model/gateway.go (`mergeGateways`, `resolvePorts`, `gatewayRDSRouteName`,
`sanitizeServerHostNamespace`, `GetSNIHostsForServer`), pilot/pkg/model/push_context.go
(`PushContext.mergeGateways`, `VirtualServicesForGateway`), pilot/pkg/networking/core/gateway.go
(`buildGatewayListeners`, `buildGatewayHTTPRouteConfig`, `collapseDuplicateRoutes`,
`pickMatchingGatewayHosts`, `buildGatewayConnectionManager`) and the behaviours of
pilot/pkg/networking/core/gateway_simulation_test.go, written as our own cases (the goldens in
tests/cases/gateway-*).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from meshlens.compiler.gateway.routes import intersection, names_for_namespace
from meshlens.compiler.gateway.tls import resource_name
from meshlens.model.gateways import resolve_ports, sanitize_hosts
from meshlens.pipeline import compile_for, load, load_string, server_compiler
from meshlens.simulate import Request
from meshlens.simulate_gateway import simulate_gateway

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "tests" / "cases"
SAMPLES = ROOT / "tests" / "conformance" / "samples"
GATEWAY = "deploy/istio-ingressgateway.istio-system"


def case(name: str, proxy: str = GATEWAY, **kw: Any) -> Any:
    loaded = load([str(CASES / name / "manifests.yaml")])
    return loaded, compile_for(loaded, proxy, **kw)


def route(result: Any, name: str) -> Any:
    return next(r for r in result.routes if r.name == name)


def hcm(listener: Any, i: int = 0) -> hcm_pb2.HttpConnectionManager:
    h = hcm_pb2.HttpConnectionManager()
    listener.filter_chains[i].filters[-1].typed_config.Unpack(h)
    return h


# --- proxy type ------------------------------------------------------------------------------------

def test_gateway_pod_is_a_router_and_sidecars_stay_sidecars() -> None:
    """`model.NodeType`: Istio's ingress gateway (``istio-proxy`` running ``proxy router``)."""
    loaded, result = case("gateway-bookinfo")
    assert result.proxy.type == "router"
    assert result.bootstrap.node.id.startswith("router~")
    assert compile_for(loaded, "deploy/productpage-v1.default").proxy.type == "sidecar"
    forced = compile_for(loaded, GATEWAY, proxy_type="sidecar")
    assert forced.proxy.type == "sidecar" and "virtualOutbound" in [x.name for x in forced.listeners]


def test_gateway_cluster_set() -> None:
    """`buildClusters` default branch: outbound clusters and BlackHoleCluster, no passthrough or inbound."""
    _, result = case("gateway-bookinfo")
    names = [c.name for c in result.clusters]
    assert names[-1] == "BlackHoleCluster"
    assert "PassthroughCluster" not in names and "InboundPassthroughCluster" not in names
    assert not [n for n in names if n.startswith("inbound|")]


# --- model/gateway.go ------------------------------------------------------------------------------

def test_resolve_ports_translates_service_port_to_target_port() -> None:
    """`resolvePorts`: Service port 80 → targetPort 8080; an unknown port is kept (legacy selector)."""
    _, result = case("gateway-resolve-ports")
    assert [x.name for x in result.listeners] == ["0.0.0.0_8080", "0.0.0.0_9000"]
    assert [r.name for r in result.routes] == ["http.8080", "http.9000"]
    # the vhost name keeps the Server's own port number
    assert route(result, "http.8080").virtual_hosts[0].name == "web.example.com:80"


def test_resolve_ports_unit() -> None:
    from meshlens.model.gateways import ServiceTarget

    class Svc:
        labels: dict[str, str] = {}

    class Port:
        def __init__(self, port: int) -> None:
            self.port = port

    targets = [ServiceTarget(Svc(), Port(80), 8080), ServiceTarget(Svc(), Port(443), 8443)]  # type: ignore[arg-type]
    assert resolve_ports(80, targets, legacy=True) == [8080]
    assert resolve_ports(9000, targets, legacy=True) == [9000]
    assert resolve_ports(9000, targets, legacy=False) == []


def test_sanitize_server_host_namespace() -> None:
    """`sanitizeServerHostNamespace`: ./h → ns/h, */h → h, */* → only *."""
    assert sanitize_hosts(["./a.com", "*/b.com", "x/c.com"], "shop") == ["shop/a.com", "b.com", "x/c.com"]
    assert sanitize_hosts(["a.com", "*/*"], "shop") == ["*"]


def test_names_for_namespace_and_intersection() -> None:
    """`host.NamesForNamespace` and `host.Names.Intersection`."""
    assert names_for_namespace(["shop/a.com", "blog/b.com", "*/c.com", "d.com"], "shop") == ["a.com", "c.com", "d.com"]
    assert intersection(["*.example.com"], ["a.example.com", "x.org"]) == ["a.example.com"]
    assert intersection(["a.example.com"], ["*.example.com"]) == ["a.example.com"]


def test_https_route_names_and_sds_secret_names() -> None:
    """`gatewayRDSRouteName`: https.PORT.NAME.GATEWAY.NS; `ApplyCredentialSDSToServerCommonTLSContext`."""
    _, result = case("gateway-https-credentials")
    assert [r.name for r in result.routes] == [
        "https.443.https-mesh.web-gw.shop", "https.443.https-partners.web-gw.shop",
        "https.443.https-web.web-gw.shop"]
    [lst] = result.listeners
    assert lst.name == "0.0.0.0_8443" and lst.listener_filters[0].name == "envoy.filters.listener.tls_inspector"
    sni = [list(fc.filter_chain_match.server_names) for fc in lst.filter_chains]
    assert sni == [["web.example.com"], ["partners.example.com"], ["mesh.example.com"]]
    from envoy.extensions.transport_sockets.tls.v3 import tls_pb2

    ctxs = []
    for fc in lst.filter_chains:
        c = tls_pb2.DownstreamTlsContext()
        fc.transport_socket.typed_config.Unpack(c)
        ctxs.append(c)
    simple, mutual, istio = ctxs
    assert [s.name for s in simple.common_tls_context.tls_certificate_sds_secret_configs] == ["kubernetes://web-cred"]
    assert simple.require_client_certificate.value is False
    assert mutual.common_tls_context.combined_validation_context.validation_context_sds_secret_config.name == \
        "kubernetes://partners-cred-cacert"
    assert mutual.require_client_certificate.value is True
    assert [s.name for s in istio.common_tls_context.tls_certificate_sds_secret_configs] == ["default"]
    assert resource_name("kubernetes-gateway://shop/c") == "kubernetes-gateway://shop/c"
    assert resource_name("sds://c") == "kubernetes://c"


def test_missing_secret_still_builds_the_chain_and_says_so() -> None:
    """The listener is built whether or not the credential Secret exists (istiod does not read it)."""
    _, result = case("gateway-https-credentials")
    assert len(result.listeners[0].filter_chains) == 3
    notes = [d.message for d in result.diagnostics]
    assert any("istio-system/partners-cred is not in the input" in m for m in notes)
    assert not any("web-cred" in m for m in notes)


def test_merged_servers_and_first_gateway_wins() -> None:
    """`mergeGateways`: HTTP servers of two Gateways share http.8080; a TCP server on the port is skipped."""
    _, result = case("gateway-merged-servers")
    rc = route(result, "http.8080")
    by = {v.name: [r.route.cluster for r in v.routes] for v in rc.virtual_hosts}
    # api.example.com comes from b-api's VirtualService only; web.example.com from a-web's only
    # (api's VirtualService also names web.example.com, but b-api's server does not serve it).
    assert by == {"api.example.com:80": ["outbound|9090||api.shop.svc.cluster.local"],
                  "web.example.com:80": ["outbound|8000||web.shop.svc.cluster.local"]}
    assert any("conflict with existing server" in d.message and d.resource.name == "c-tcp"
               for d in result.diagnostics)


# --- core/gateway.go -------------------------------------------------------------------------------

def test_gateway_hcm() -> None:
    """`buildGatewayConnectionManager`: remote address, istio-envoy, XFCC SANITIZE_SET."""
    _, result = case("gateway-bookinfo")
    h = hcm(result.listeners[0])
    assert h.use_remote_address.value is True
    assert h.server_name == "istio-envoy"
    assert h.forward_client_cert_details == hcm_pb2.HttpConnectionManager.SANITIZE_SET
    assert h.set_current_client_cert_details.uri and h.set_current_client_cert_details.subject.value
    assert h.rds.route_config_name == "http.8080" and h.stat_prefix == "outbound_0.0.0.0_8080;"


def test_blackhole_vhost_without_virtual_service() -> None:
    """`buildGatewayHTTPRouteConfig`: no vhost → blackhole:PORT with no routes (404 NR)."""
    _, result = case("gateway-blackhole-no-virtualservice")
    rc = route(result, "http.8080")
    [vh] = rc.virtual_hosts
    assert (vh.name, list(vh.domains), len(vh.routes)) == ("blackhole:80", ["*"], 0)
    assert rc.ignore_port_in_host_matching is True


def test_virtual_services_merge_oldest_first_catch_all_last() -> None:
    """Gateways merge VirtualServices per host (oldest first); `SortVHostRoutes` moves catch-alls last."""
    _, result = case("gateway-virtualservices-merge")
    rc = route(result, "http.8080")
    shop = next(v for v in rc.virtual_hosts if v.name == "shop.example.com:80")
    assert [r.match.WhichOneof("path_specifier") + ":" + (r.match.prefix or r.match.path)
            for r in shop.routes] == ["prefix:/api", "prefix:/"]
    assert [v.name for v in rc.virtual_hosts] == ["shop.example.com:80", "www.example.com:80"]


def test_host_intersection_and_collapse() -> None:
    """`pickMatchingGatewayHosts`/`NamesForNamespace`/`collapseDuplicateRoutes`."""
    _, result = case("gateway-host-intersection")
    rc = route(result, "http.8080")
    domains = {v.name: list(v.domains) for v in rc.virtual_hosts}
    assert domains == {"blog.example.com:80": ["blog.example.com"],
                       "www.example.com:80": ["www.example.com", "*.shop.example.com"]}


def test_https_redirect() -> None:
    """httpsRedirect: require_tls ALL, also for a Server host without a VirtualService."""
    from envoy.config.route.v3 import route_components_pb2 as rc_pb2

    _, result = case("gateway-https-redirect")
    rc = route(result, "http.8080")
    assert {v.name: (v.require_tls, len(v.routes)) for v in rc.virtual_hosts} == {
        "old.example.com:80": (rc_pb2.VirtualHost.ALL, 0), "web.example.com:80": (rc_pb2.VirtualHost.ALL, 1)}


def test_tls_passthrough_and_tcp() -> None:
    """`buildGatewayNetworkFiltersFromTLSRoutes` (SNI chains) and `...FromTCPRoutes`."""
    _, result = case("gateway-tls-passthrough-and-tcp")
    by = {x.name: x for x in result.listeners}
    tls = by["0.0.0.0_8443"]
    assert [list(fc.filter_chain_match.server_names) for fc in tls.filter_chains] == [
        ["web.example.com"], ["app.example.com"]]
    assert not tls.filter_chains[0].HasField("transport_socket")
    assert by["0.0.0.0_31400"].filter_chains[0].filters[-1].name == "envoy.filters.network.tcp_proxy"


# --- trace -----------------------------------------------------------------------------------------

def bookinfo() -> Any:
    files = [SAMPLES / "istio-system" / "ingressgateway.yaml", SAMPLES / "bookinfo" / "platform" / "kube" / "bookinfo.yaml",
             SAMPLES / "bookinfo" / "networking" / "bookinfo-gateway.yaml"]
    loaded = load([str(f) for f in files])
    return loaded, compile_for(loaded, GATEWAY)


def test_bookinfo_productpage_through_the_ingress_gateway() -> None:
    """Done-when: http://HOST/productpage → 0.0.0.0_8080 → http.8080 → productpage:9080 → its pod."""
    loaded, result = bookinfo()
    t = simulate_gateway(result, Request.parse("http://bookinfo.example.com/productpage"),
                         server=server_compiler(loaded))
    assert t.verdict == "ok", t.reason
    layers = {x.layer: x for x in t.layers}
    assert layers["gateway"].port == 8080 and "targetPort 8080" in layers["gateway"].detail["entry"]
    assert layers["route"].name.startswith("http.8080 / *:8080")
    assert [c["name"] for c in t.clusters] == ["outbound|9080||productpage.default.svc.cluster.local"]
    assert t.endpoints and t.endpoints[0]["port"] == 9080


def test_bookinfo_other_path_is_404_nr() -> None:
    loaded, result = bookinfo()
    t = simulate_gateway(result, Request.parse("http://bookinfo.example.com/admin"))
    assert (t.verdict, t.status) == ("NR", 404)


def test_trace_blackhole_reason_and_refused_port() -> None:
    loaded, result = case("gateway-blackhole-no-virtualservice")
    t = simulate_gateway(result, Request.parse("http://web.example.com/"))
    assert t.verdict == "NR" and "no VirtualService is bound to shop/web-gw" in t.reason
    t = simulate_gateway(result, Request.parse("http://web.example.com:443/"))
    assert t.verdict == "refused" and "8443" in t.reason


def test_trace_host_port_is_ignored_and_sni_picks_the_chain() -> None:
    loaded, result = case("gateway-https-credentials")
    t = simulate_gateway(result, Request.parse("https://partners.example.com/x", headers=["host: partners.example.com:8443"]))
    assert t.verdict == "ok", t.reason
    assert next(x for x in t.layers if x.layer == "route").name.startswith("https.443.https-partners.web-gw.shop")
    t = simulate_gateway(result, Request.parse("https://nobody.example.com/"))
    assert t.verdict == "NR" and "no filter chain" in t.reason


def test_no_gateway_selects_the_pod() -> None:
    text = (CASES / "gateway-resolve-ports" / "manifests.yaml").read_text().replace(
        "selector: {istio: ingressgateway}\n  servers", "selector: {istio: egressgateway}\n  servers")
    result = compile_for(load_string(text, "m.yaml"), GATEWAY)
    assert result.listeners == [] and result.routes == []
    assert any("no Gateway selects it" in d.message for d in result.diagnostics)


@pytest.mark.parametrize("argv_proxy", [GATEWAY])
def test_cli_trace_and_proxy_config_on_a_gateway(argv_proxy: str) -> None:
    from typer.testing import CliRunner

    from meshlens.cli import app

    files = ["-f", str(CASES / "gateway-bookinfo" / "manifests.yaml")]
    r = CliRunner().invoke(app, ["trace", argv_proxy, "http://bookinfo.example.com/productpage", *files])
    assert r.exit_code == 0, r.output
    assert "verdict: ok" in r.output
    r = CliRunner().invoke(app, ["proxy-config", "listener", argv_proxy, *files])
    assert r.exit_code == 0, r.output
    assert "8080" in r.output and "Route: http.8080" in r.output
    r = CliRunner().invoke(app, ["proxy-config", "route", argv_proxy, *files])
    assert r.exit_code == 0 and "http.8080" in r.output and "/productpage" in r.output


def test_auto_passthrough() -> None:
    """`builtAutoPassthroughFilterChains` + `buildOutboundSniDnatClusters`: SNI chains per service
    port and subset, Istio mTLS ALPNs, SNI-DNAT clusters without TLS."""
    _, result = case("gateway-auto-passthrough")
    lst = next(x for x in result.listeners if x.name == "0.0.0.0_15443")
    web = [fc for fc in lst.filter_chains if "web.shop" in fc.filter_chain_match.server_names[0]]
    assert [list(fc.filter_chain_match.server_names) for fc in web] == [
        ["outbound_.8000_._.web.shop.svc.cluster.local"], ["outbound_.8000_.v1_.web.shop.svc.cluster.local"]]
    assert list(web[0].filter_chain_match.application_protocols) == [
        "istio", "istio-peer-exchange", "istio-http/1.0", "istio-http/1.1", "istio-h2"]
    names = [c.name for c in result.clusters]
    i = names.index("BlackHoleCluster")
    assert "outbound_.8000_.v1_.web.shop.svc.cluster.local" in names[i + 1:]
    sni = result.cluster("outbound_.8000_._.web.shop.svc.cluster.local")
    assert not sni.HasField("transport_socket") and not sni.transport_socket_matches
    cla = next(e for e in result.endpoints if e.cluster_name == "outbound_.8000_.v1_.web.shop.svc.cluster.local")
    assert len(cla.endpoints[0].lb_endpoints) == 1
