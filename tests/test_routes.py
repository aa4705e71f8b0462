"""RDS: route configurations, virtual hosts and VirtualService translation (lds-rds.md §3, §4, §6,
the RDS test cases of §9 and the worked example §10.2).

Routes are not wired into ``compile`` yet, so each test builds the compiler context the way
``compile_proxy`` does and calls ``build_route_configs`` directly. Assertions are partial.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from meshlens.compiler.clusters import ClusterContext
from meshlens.compiler.options import CompileOptions
from meshlens.compiler.retry import parse_retry_on, translate_inbound_retry_policy, \
    translate_retry_policy
from meshlens.compiler.route_translate import default_inbound_route
from meshlens.compiler.routes import build_route_configs
from meshlens.compiler.traffic_policy import PolicyContext
from meshlens.emit import to_dict
from meshlens.model import resolve_proxy
from meshlens.model.mesh import DEFAULTS, MeshConfig
from meshlens.model.scope import SidecarScope, build_scope, select_sidecar
from meshlens.model.virtual_services import index_virtual_services
from meshlens.pipeline import load_string

Doc = dict[str, Any]
DEFAULT_RETRY = {
    "retry_on": "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
    "num_retries": 2,
    "retry_host_predicate": [{
        "name": "envoy.retry_host_predicates.previous_hosts",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts"
                                  ".v3.PreviousHostsPredicate"}}],
    "host_selection_retry_max_attempts": "5",
}
NAMESPACES = ("default", "not-default", "foo", "bar", "arbitrary", "istio-system")


# --- builders -----------------------------------------------------------------------------------

def meta(name: str, ns: str, created: str | None = None) -> Doc:
    m: Doc = {"name": name, "namespace": ns}
    if created:
        m["creationTimestamp"] = created
    return m


def client(ns: str = "default", name: str = "client", labels: dict[str, str] | None = None) -> Doc:
    lbl = {"app": name, **(labels or {})}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(name, ns),
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": lbl},
                                  "spec": {"containers": [{"name": "c", "image": "x"}]}}}}


def svc(name: str, ns: str = "default", ports: tuple[tuple[int, str], ...] = ((80, "http"),),
        ip: str | None = None) -> Doc:
    spec: Doc = {"selector": {"app": name},
                 "ports": [{"name": n, "port": p} for p, n in ports]}
    if ip:
        spec["clusterIP"] = ip
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta(name, ns), "spec": spec}


def se(name: str, hosts: list[str], ports: tuple[tuple[int, str], ...], *, ns: str = "default",
       addresses: list[str] | None = None, resolution: str = "DNS",
       created: str | None = None) -> Doc:
    spec: Doc = {"hosts": hosts, "resolution": resolution, "location": "MESH_INTERNAL",
                 "ports": [{"number": p, "name": f"{proto.lower() or 'auto'}-{p}",
                            **({"protocol": proto} if proto else {})} for p, proto in ports]}
    if addresses:
        spec["addresses"] = addresses
    return {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
            "metadata": meta(name, ns, created), "spec": spec}


def vs(name: str, hosts: list[str], http: list[Doc], *, ns: str = "default",
       created: str | None = None, **spec: Any) -> Doc:
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": meta(name, ns, created), "spec": {"hosts": hosts, "http": http, **spec}}


def dr(name: str, host: str, *, ns: str = "default", **spec: Any) -> Doc:
    return {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": meta(name, ns), "spec": {"host": host, **spec}}


def sidecar(ns: str, **spec: Any) -> Doc:
    return {"apiVersion": "networking.istio.io/v1", "kind": "Sidecar",
            "metadata": meta("default", ns), "spec": spec}


def to_yaml(docs: list[Doc]) -> str:
    ns = [{"apiVersion": "v1", "kind": "Namespace",
           "metadata": {"name": n, "labels": {"istio-injection": "enabled"}}} for n in NAMESPACES]
    return "\n---\n".join(json.dumps(d) for d in ns + docs)


def registry_only() -> MeshConfig:
    return MeshConfig({**DEFAULTS, "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}})


def context(docs: list[Doc], proxy: str = "deploy/client.default",
            mesh_config: MeshConfig | None = None) -> ClusterContext:
    # Istio's route tests skip validation; some fixtures are rejected by istiod's webhook.
    loaded = load_string(to_yaml(docs), mesh_config=mesh_config, admission=False)
    errors = [d.format() for d in loaded.diagnostics if d.level == "error"]
    assert not errors, errors
    mesh = loaded.mesh
    p = resolve_proxy(mesh.registry.workloads, proxy)
    sc = select_sidecar(mesh.sidecars, p, mesh.mesh_config.root_namespace)
    scope = build_scope(mesh.registry, p, sc,
                        index_virtual_services(mesh.virtual_services, mesh.mesh_config),
                        mesh.mesh_config)
    opts = CompileOptions()
    pctx = PolicyContext(mesh.mesh_config, opts, mesh.mesh_config.doc, p.workload.locality)
    return ClusterContext(mesh, p, scope, opts, pctx)


def rds(docs: list[Doc], *names: str, proxy: str = "deploy/client.default",
        mesh_config: MeshConfig | None = None) -> dict[str, Doc]:
    ctx = context(docs, proxy, mesh_config)
    built = build_route_configs(ctx, list(names))
    assert [b.message.name for b in built] == sorted(set(names))
    return {b.message.name: to_dict(b.message) for b in built}


def vhosts(rc: Doc) -> dict[str, Doc]:
    return {v["name"]: v for v in rc.get("virtual_hosts", [])}


def cluster_of(vh: Doc, i: int = 0) -> str:
    return str(vh["routes"][i]["route"]["cluster"])


def one_route(http: list[Doc], *, port: int = 80, extra: list[Doc] | None = None,
              proxy: str = "deploy/client.default", **vs_spec: Any) -> list[Doc]:
    """The routes of VS ``t`` for service ``test`` (ports 80 and 8080) on route ``port``."""
    docs = [client(), svc("test", ports=((80, "http"), (8080, "http-alt"))),
            vs("t", ["test"], http, **vs_spec), *(extra or [])]
    rc = rds(docs, str(port), proxy=proxy)[str(port)]
    return list(vhosts(rc)["test.default.svc.cluster.local:" + str(port)]["routes"])


DEST = {"destination": {"host": "test"}}


# --- RDS / virtual hosts ------------------------------------------------------------------------

def test_t01_plain_http_service_no_vs() -> None:
    rc = rds([client(), svc("reviews", ports=((9080, "http"),), ip="10.96.1.5")], "9080")["9080"]
    assert [v["name"] for v in rc["virtual_hosts"]] == [
        "reviews.default.svc.cluster.local:9080", "allow_any"]
    vh = rc["virtual_hosts"][0]
    assert vh["domains"] == ["reviews.default.svc.cluster.local", "reviews.default.svc.cluster.local.",
                             "reviews", "reviews.default.svc", "reviews.default", "10.96.1.5"]
    assert vh["include_request_attempt_count"] is True
    (route,) = vh["routes"]
    assert route["name"] == "default"
    assert route["match"] == {"prefix": "/"}
    assert route["decorator"] == {"operation": "reviews.default.svc.cluster.local:9080/*"}
    assert route["route"] == {"cluster": "outbound|9080||reviews.default.svc.cluster.local",
                              "timeout": "0s", "max_grpc_timeout": "0s",
                              "retry_policy": DEFAULT_RETRY}
    assert "metadata" not in route
    allow = rc["virtual_hosts"][1]
    assert allow["domains"] == ["*"]
    assert allow["routes"] == [{"name": "allow_any", "match": {"prefix": "/"},
                                "route": {"cluster": "PassthroughCluster", "timeout": "0s",
                                          "max_grpc_timeout": "0s"}}]
    assert rc["validate_clusters"] is False
    assert rc["max_direct_response_body_size_bytes"] == 1048576
    assert rc["ignore_port_in_host_matching"] is True


@pytest.mark.parametrize("reverse", [False, True], ids=["more-exact-first", "more-exact-second"])
def test_t02_more_exact_first(reverse: bool) -> None:
    entries = [se("a", ["test.local"], ((80, "HTTP"),), created="2020-01-01T00:00:00Z"),
               se("b", ["test"], ((80, "HTTP"),), created="2020-01-02T00:00:00Z")]
    docs = [client(), *(reversed(entries) if reverse else entries)]
    vh = vhosts(rds(docs, "80")["80"])
    assert list(vh) == ["test.local:80", "test:80", "allow_any"]
    assert vh["test.local:80"]["domains"] == ["test.local", "test.local."]
    assert cluster_of(vh["test.local:80"]) == "outbound|80||test.local"
    assert vh["test:80"]["domains"] == ["test", "test."]
    assert cluster_of(vh["test:80"]) == "outbound|80||test"


def test_t03_fqdn_service_vs_short_named_service() -> None:
    docs = [client(), se("a", ["test.default.svc.cluster.local"], ((80, "HTTP"),)),
            se("b", ["test"], ((80, "HTTP"),))]
    vh = vhosts(rds(docs, "80")["80"])
    assert vh["test.default.svc.cluster.local:80"]["domains"] == [
        "test.default.svc.cluster.local", "test.default.svc.cluster.local.", "test.default.svc",
        "test.default"]
    assert vh["test:80"]["domains"] == ["test", "test."]


def test_t04_vs_with_dotted_short_host_is_literal() -> None:
    fqdn = "test-duplicate-domains.default.svc.cluster.local"
    docs = [client(), se("s", [fqdn], ((80, "HTTP"),)),
            vs("acme", [fqdn, "test-duplicate-domains.default"],
               [{"route": [{"destination": {"host": "test-duplicate-domains.default"}}]}],
               gateways=["mesh"], created="2020-01-01T00:00:00Z"),
            vs("acme2", ["Test-duplicate-domains.default.svc.cluster.local"],
               [{"route": [{"destination": {"host": "other"}}]}], created="2021-01-01T00:00:00Z")]
    vh = vhosts(rds(docs, "80")["80"])
    assert list(vh) == [f"{fqdn}:80", "test-duplicate-domains.default:80", "allow_any"]
    assert vh["test-duplicate-domains.default:80"]["domains"] == ["test-duplicate-domains.default"]
    assert vh[f"{fqdn}:80"]["domains"] == [fqdn, fqdn + ".", "test-duplicate-domains",
                                           "test-duplicate-domains.default.svc"]
    for name in ("test-duplicate-domains.default:80", f"{fqdn}:80"):
        assert cluster_of(vh[name]) == "outbound|80||test-duplicate-domains.default"


def test_t05_vs_host_collides_with_generated_domain() -> None:
    fqdn = "test.default.svc.cluster.local"
    docs = [client(), se("s", [fqdn], ((80, "HTTP"),)),
            vs("acme", ["test.default"], [{"route": [{"destination": {"host": "test.default"}}]}])]
    vh = vhosts(rds(docs, "80")["80"])
    assert vh["test.default:80"]["domains"] == ["test.default"]
    assert cluster_of(vh["test.default:80"]) == "outbound|80||test.default"
    assert vh[f"{fqdn}:80"]["domains"] == [fqdn, fqdn + ".", "test", "test.default.svc"]
    assert vh[f"{fqdn}:80"]["routes"][0]["name"] == "default"
    assert cluster_of(vh[f"{fqdn}:80"]) == f"outbound|80||{fqdn}"


def test_t06_multi_port_service() -> None:
    docs = [client(), se("s", ["test.local"], ((70, "HTTP"), (80, "HTTP"), (90, "HTTP")))]
    rc = rds(docs, "80")["80"]
    assert [v["name"] for v in rc["virtual_hosts"]] == ["test.local:80", "allow_any"]
    assert rc["virtual_hosts"][0]["domains"] == ["test.local", "test.local."]


def test_t07_egress_port_without_service_registry_only() -> None:
    docs = [client("not-default"),
            se("bookinfo", ["bookinfo.com"], ((9999, "HTTP"), (70, "HTTP")), ns="not-default"),
            sidecar("not-default", egress=[
                {"port": {"number": 9000, "protocol": "HTTP", "name": "something"},
                 "bind": "1.1.1.1", "hosts": ["*/bookinfo.com"]},
                {"hosts": ["*/*"]}])]
    ctx = context(docs, "deploy/client.not-default", registry_only())
    assert ctx.scope.egress_listeners[0].services == []  # so no listener for 9000
    (built,) = build_route_configs(ctx, ["9000"])
    rc = to_dict(built.message)
    assert rc["virtual_hosts"] == [{
        "name": "block_all", "domains": ["*"], "include_request_attempt_count": True,
        "routes": [{"name": "block_all", "match": {"prefix": "/"},
                    "direct_response": {"status": 502}}]}]


def test_t08_unix_domain_socket_egress_listener() -> None:
    uds = "unix://foo/bar/baz"
    docs = [client(), svc("bookinfo", ns="bookinfo-ns", ports=((9999, "http"), (70, "http-70")),
                          ip="None"),
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bookinfo-ns"}},
            sidecar("default", egress=[
                {"port": {"number": 0, "protocol": "HTTP", "name": "uds"}, "bind": uds,
                 "hosts": ["*/bookinfo.bookinfo-ns.svc.cluster.local"]},
                {"hosts": ["*/*"]}])]
    rc = rds(docs, uds)[uds]
    vh = vhosts(rc)
    h = "bookinfo.bookinfo-ns.svc.cluster.local"
    assert list(vh) == [f"{h}:70", f"{h}:9999", "allow_any"]
    assert set(vh[f"{h}:9999"]["domains"]) == {
        f"{h}:9999", f"*.{h}:9999", f"{h}.:9999", f"*.{h}.:9999",
        "bookinfo.bookinfo-ns:9999", "*.bookinfo.bookinfo-ns:9999",
        "bookinfo.bookinfo-ns.svc:9999", "*.bookinfo.bookinfo-ns.svc:9999"}
    assert all(d.endswith(":70") for d in vh[f"{h}:70"]["domains"])


def test_t09_sniffed_route_name() -> None:
    docs = [client(), se("p", ["test-private.com"], ((80, ""), (70, "")),
                         addresses=["9.9.9.9"], resolution="STATIC")]
    rc = rds(docs, "test-private.com:70")["test-private.com:70"]
    assert [(v["name"], v["domains"]) for v in rc["virtual_hosts"]] == [
        ("test-private.com:70", ["*"])]
    assert cluster_of(rc["virtual_hosts"][0]) == "outbound|70||test-private.com"


def test_t10_vs_for_non_registry_host_only_on_port_80() -> None:
    docs = [client(), svc("web", ports=((80, "http"), (8080, "http-alt"))),
            vs("acme-v3", ["test-private-3.com"],
               [{"route": [{"destination": {"host": "test.org", "port": {"number": 63}},
                            "weight": 100}]}], ns="not-default"),
            vs("nosvc", ["match-no-service"], [{"route": [DEST]}], ns="not-default")]
    out = rds(docs, "80", "8080")
    vh80, vh8080 = vhosts(out["80"]), vhosts(out["8080"])
    assert vh80["test-private-3.com:80"]["domains"] == ["test-private-3.com"]
    assert cluster_of(vh80["test-private-3.com:80"]) == "outbound|63||test.org"
    short = "match-no-service.not-default.svc.cluster.local"
    assert vh80[f"{short}:80"]["domains"] == [short]
    assert "test-private-3.com:8080" not in vh8080 and f"{short}:8080" not in vh8080
    assert list(vh8080) == ["web.default.svc.cluster.local:8080", "allow_any"]


def test_t11_vs_hosts_with_subsets_and_authority_matches() -> None:
    docs = [client(), se("a", ["service-A.default.svc.cluster.local"], ((7777, "HTTP"),)),
            sidecar("default", outboundTrafficPolicy={"mode": "ALLOW_ANY"}),
            vs("vs-1", ["service-A.default.svc.cluster.local", "service-A.v2", "service-A.v3"], [
                {"match": [{"headers": {":authority": {"exact": "service-A.v2"}}}],
                 "route": [{"destination": {"host": "service-A", "subset": "v2"}}]},
                {"match": [{"headers": {":authority": {"exact": "service-A.v3"}}}],
                 "route": [{"destination": {"host": "service-A", "subset": "v3"}}]}])]
    rc = rds(docs, "7777")["7777"]
    vh = vhosts(rc)
    assert list(vh) == ["service-a.default.svc.cluster.local:7777", "service-a.v2:7777",
                        "service-a.v3:7777", "allow_any"]
    assert vh["service-a.default.svc.cluster.local:7777"]["domains"][:2] == [
        "service-a.default.svc.cluster.local", "service-a.default.svc.cluster.local."]
    assert vh["service-a.v2:7777"]["domains"] == ["service-a.v2"]
    assert sum(len(v["routes"]) for v in rc["virtual_hosts"]) == 7
    assert cluster_of(vh["service-a.v2:7777"], 0) == \
        "outbound|7777|v2|service-A.default.svc.cluster.local"
    assert cluster_of(vh["service-a.v2:7777"], 1) == \
        "outbound|7777|v3|service-A.default.svc.cluster.local"


def test_t12_http_proxy_egress_port() -> None:
    docs = [client(),
            se("p", ["test-private.com"], ((80, "HTTP"),), addresses=["9.9.9.9"],
               resolution="STATIC"),
            se("q", ["test.com"], ((8080, "HTTP"),), addresses=["8.8.8.8"], resolution="STATIC"),
            sidecar("default", egress=[{"port": {"number": 7443, "protocol": "HTTP_PROXY",
                                                 "name": "proxy"}, "hosts": ["*/*"]}])]
    rc = rds(docs, "7443", mesh_config=registry_only())["7443"]
    vh = vhosts(rc)
    assert set(vh["test-private.com:80"]["domains"]) == {
        "test-private.com", "test-private.com:80", "9.9.9.9", "9.9.9.9:80", "test-private.com.",
        "test-private.com.:80"}
    assert set(vh["test.com:8080"]["domains"]) == {"test.com:8080", "8.8.8.8:8080",
                                                  "test.com.:8080"}
    assert rc["virtual_hosts"][-1]["name"] == "block_all"


def test_t13_headless_domains() -> None:
    rc = rds([client(), svc("headless", ip="None")], "80")["80"]
    h = "headless.default.svc.cluster.local"
    assert vhosts(rc)[f"{h}:80"]["domains"] == [
        h, h + ".", "headless", "headless.default.svc", "headless.default",
        f"*.{h}", f"*.{h}.", "*.headless", "*.headless.default.svc", "*.headless.default"]


def test_t14_cross_namespace_service() -> None:
    docs = [client("not-default"), svc("echo", ip="10.96.3.3")]
    rc = rds(docs, "80", proxy="deploy/client.not-default")["80"]
    h = "echo.default.svc.cluster.local"
    assert vhosts(rc)[f"{h}:80"]["domains"] == [h, h + ".", "echo.default", "echo.default.svc",
                                               "10.96.3.3"]


# --- Sidecar-scope / multi-VS routing (TestSidecarRoutes) ---------------------------------------

KNOWN = "known.default.svc.cluster.local"
ALT = "alt-known.default.svc.cluster.local"


def base_services() -> list[Doc]:
    ports = ((80, "http"), (8080, "http-alt"))
    return [svc("known", ports=ports, ip="2.0.0.0"), svc("alt-known", ports=ports, ip="2.0.0.1"),
            svc("not-default", ns="not-default", ports=ports, ip="2.0.0.2")]


def route_vs(name: str, host: str, dest: str, *, ns: str = "default", created: str | None = None,
             dest_port: int | None = None, match_port: int | None = None) -> Doc:
    d: Doc = {"host": dest}
    if dest_port:
        d["port"] = {"number": dest_port}
    http: Doc = {"route": [{"destination": d}]}
    if match_port:
        http["match"] = [{"port": match_port}]
    return vs(name, [host], [http], ns=ns, created=created)


def test_t15_simple_port_8080() -> None:
    out = rds([client(), *base_services(), route_vs("a", KNOWN, ALT)], "80", "8080")
    assert cluster_of(vhosts(out["8080"])[f"{KNOWN}:8080"]) == f"outbound|8080||{ALT}"
    assert cluster_of(vhosts(out["80"])[f"{KNOWN}:80"]) == f"outbound|80||{ALT}"


@pytest.mark.parametrize("kw", [{}, {"match_port": 8080}, {"dest_port": 8080}],
                         ids=["plain", "match-8080", "dest-8080"])
def test_t16_unknown_host_only_on_port_80(kw: dict[str, int]) -> None:
    foo = "foo.default.svc.cluster.local"
    out = rds([client(), *base_services(), route_vs("a", foo, foo, **kw)], "80", "8080")
    assert not any(n.startswith(foo) for n in vhosts(out["8080"]))
    if kw.get("match_port"):
        assert f"{foo}:80" not in vhosts(out["80"])  # the only route needs port 8080
    else:
        port = kw.get("dest_port", 80)
        assert cluster_of(vhosts(out["80"])[f"{foo}:80"]) == f"outbound|{port}||{foo}"


def test_t17_multiple_rules_oldest_wins() -> None:
    docs = [client("not-default"), *base_services(),
            route_vs("a", KNOWN, "arbitrary.example.com", ns="arbitrary",
                     created="2019-01-01T00:00:00Z"),
            route_vs("b", KNOWN, "default.example.com", created="2020-01-01T00:00:00Z"),
            route_vs("c", KNOWN, "not-default.example.com", ns="not-default",
                     created="2021-01-01T00:00:00Z")]
    out = rds(docs, "80", "8080", proxy="deploy/client.not-default")
    assert cluster_of(vhosts(out["80"])[f"{KNOWN}:80"]) == "outbound|80||arbitrary.example.com"
    assert cluster_of(vhosts(out["8080"])[f"{KNOWN}:8080"]) == \
        "outbound|8080||arbitrary.example.com"


def test_t18_wildcard_match_with_sidecar() -> None:
    docs = [client(), *base_services(),
            route_vs("w", "*.cluster.local", "arbitrary.example.com"),
            sidecar("default", egress=[{"hosts": ["*/*.cluster.local"]}])]
    vh = vhosts(rds(docs, "80")["80"])
    assert cluster_of(vh[f"{KNOWN}:80"]) == "outbound|80||arbitrary.example.com"
    assert cluster_of(vh[f"{ALT}:80"]) == "outbound|80||arbitrary.example.com"
    assert "*.cluster.local:80" not in vh


@pytest.mark.parametrize("wild_older", [True, False])
def test_t19_wildcard_and_explicit(wild_older: bool) -> None:
    t1, t2 = "2019-01-01T00:00:00Z", "2020-01-01T00:00:00Z"
    docs = [client(), *base_services(),
            route_vs("wild", "*.cluster.local", "wild.example.com",
                     created=t1 if wild_older else t2),
            route_vs("explicit", KNOWN, "explicit.example.com", created=t2 if wild_older else t1)]
    vh = vhosts(rds(docs, "80")["80"])
    assert cluster_of(vh[f"{KNOWN}:80"]) == "outbound|80||explicit.example.com"
    assert cluster_of(vh[f"{ALT}:80"]) == "outbound|80||wild.example.com"
    assert "*.cluster.local:80" not in vh


def test_t20_wildcard_and_explicit_unknown() -> None:
    docs = [client(), *base_services(),
            route_vs("wild", "*.tld", "wild.example.com", created="2019-01-01T00:00:00Z"),
            route_vs("explicit", "example.tld", "explicit.example.com",
                     created="2020-01-01T00:00:00Z")]
    vh = vhosts(rds(docs, "80")["80"])
    assert vh["*.tld:80"]["domains"] == ["*.tld"]
    assert cluster_of(vh["*.tld:80"]) == "outbound|80||wild.example.com"
    assert cluster_of(vh["example.tld:80"]) == "outbound|80||explicit.example.com"
    assert vh[f"{KNOWN}:80"]["routes"][0]["name"] == "default"


def test_t21_multi_host_import_single() -> None:
    docs = [client(), *base_services(),
            vs("m", [KNOWN, ALT], [{"route": [{"destination": {"host": "example.com"}}]}]),
            sidecar("default", egress=[{"hosts": [f"*/{KNOWN}"]}])]
    vh = vhosts(rds(docs, "80")["80"])
    assert cluster_of(vh[f"{KNOWN}:80"]) == "outbound|80||example.com"
    assert vh[f"{ALT}:80"]["domains"] == [ALT]
    assert cluster_of(vh[f"{ALT}:80"]) == "outbound|80||example.com"


def test_t22_import_only_an_unknown_service() -> None:
    foo = "foo.default.svc.cluster.local"
    docs = [client(), *base_services(), route_vs("a", foo, "example.com"),
            sidecar("default", egress=[{"hosts": [f"*/{foo}"]}])]
    scope: SidecarScope = context(docs).scope
    (eg,) = scope.egress_listeners
    assert eg.services == []  # no imported service: no listener on 80, no RDS request
    assert [v.name for v in eg.virtual_services] == ["a"]


# --- VirtualService → Envoy route translation (TestBuildHTTPRoutes) -----------------------------

def test_t23_catch_all_termination() -> None:
    routes = one_route([
        {"name": "route", "match": [{"name": "non-catch-all", "uri": {"prefix": "/route/v1"}},
                                    {"name": "catch-all", "uri": {"prefix": "/"}}],
         "route": [{"destination": {"host": "*.example.org", "port": {"number": 8484}},
                    "weight": 100}]},
        {"name": "never", "route": [DEST]}])
    assert [r["name"] for r in routes] == ["route.non-catch-all", "route.catch-all"]
    assert routes[0]["match"] == {"prefix": "/route/v1", "case_sensitive": True}
    assert routes[1]["match"] == {"prefix": "/", "case_sensitive": True}
    assert routes[0]["route"]["cluster"] == "outbound|8484||*.example.org"


def test_t24_port_only_match_is_a_catch_all() -> None:
    http = [{"name": "route 1", "match": [{"name": "catch-all for 8080", "port": 8080}],
             "route": [DEST]},
            {"name": "route 2", "match": [{"headers": {"cookie": {"exact": "canary"}}}],
             "route": [DEST]},
            {"name": "route 3", "route": [DEST]}]
    assert [r["name"] for r in one_route(http, port=8080)] == ["route 1.catch-all for 8080"]
    assert [r["name"] for r in one_route(http, port=80)] == ["route 2", "route 3"]


def test_t25_source_label_filtering() -> None:
    routes = one_route([{"name": "r", "match": [
        {"name": "catch-all", "uri": {"prefix": "/"}, "sourceLabels": {"matchingNoSrc": "xxx"}},
        {"name": "specific match", "uri": {"prefix": "/a"}}], "route": [DEST]}])
    assert [(r["name"], r["match"]["prefix"]) for r in routes] == [("r.specific match", "/a")]


@pytest.mark.parametrize("ns", ["foo", "bar"])
def test_t26_source_namespace(ns: str) -> None:
    docs = [client(ns), svc("test", ns="default"),
            vs("t", ["test.default.svc.cluster.local"], [
                {"name": "foo", "match": [{"sourceNamespace": "foo"}], "route": [DEST]},
                {"name": "bar", "match": [{"sourceNamespace": "bar"}], "route": [DEST]}])]
    rc = rds(docs, "80", proxy=f"deploy/client.{ns}")["80"]
    routes = vhosts(rc)["test.default.svc.cluster.local:80"]["routes"]
    assert [r["name"] for r in routes] == [ns]


def test_t27_header_match_forms() -> None:
    (r,) = one_route([{"match": [{
        "uri": {"regex": "\\/(.?)\\/status"},
        "headers": {"FOO-HEADER": {}, "x-star": {"regex": "*"}, "x-exact": {"exact": "v"},
                    "@request.auth.claims.foo": {"exact": "bar"}},
        "withoutHeaders": {"WITHOUT": {}, "X-RE": {"regex": "BAR .+?\\..+?\\..+?"},
                           "@request.auth.claims[group][id]": {"prefix": "g"}},
        "queryParams": {"token": {"regex": "*"}, "a": {"exact": "foo"}},
        "method": {"exact": "GET"}, "authority": {"prefix": "ex"}, "scheme": {"exact": "http"}}],
        "route": [DEST]}])
    m = r["match"]
    assert m["safe_regex"] == {"regex": "\\/(.?)\\/status"}
    assert m["headers"] == [
        {"name": "FOO-HEADER", "present_match": True},
        {"name": "WITHOUT", "present_match": True, "invert_match": True},
        {"name": "X-RE", "string_match": {"safe_regex": {"regex": "BAR .+?\\..+?\\..+?"}},
         "invert_match": True, "treat_missing_header_as_empty": True},
        {"name": "x-exact", "string_match": {"exact": "v"}},
        {"name": "x-star", "present_match": True},
        {"name": ":method", "string_match": {"exact": "GET"}},
        {"name": ":authority", "string_match": {"prefix": "ex"}},
        {"name": ":scheme", "string_match": {"exact": "http"}}]
    assert m["query_parameters"] == [{"name": "a", "string_match": {"exact": "foo"}},
                                     {"name": "token", "present_match": True}]
    claim, inverted = m["dynamic_metadata"]
    assert claim["filter"] == "envoy.filters.http.jwt_authn"
    assert [p["key"] for p in claim["path"]] == ["payload", "foo"]
    assert claim["value"]["or_match"]["value_matchers"][1] == {"string_match": {"exact": "bar"}}
    assert "invert" not in claim
    assert [p["key"] for p in inverted["path"]] == ["payload", "group", "id"]
    assert inverted["invert"] is True


@pytest.mark.parametrize(("timeout", "expected"), [("10s", "10s"), ("1.5s", "1.500s"), (None, "0s")])
def test_t28_timeouts(timeout: str | None, expected: str) -> None:
    http: Doc = {"route": [DEST], **({"timeout": timeout} if timeout else {})}
    (r,) = one_route([http])
    assert (r["route"]["timeout"], r["route"]["max_grpc_timeout"]) == (expected, expected)


def test_t29_header_operations_single_destination() -> None:
    (r,) = one_route([{
        "headers": {"request": {"set": {"x-req-set": "v1", ":authority": "foo.extsvc.com"},
                                "add": {"x-req-add": "v2", ":authority": "bar.extsvc.com"},
                                "remove": ["x-req-remove"]},
                    "response": {"set": {"x-resp-set": "v1"}, "add": {"x-resp-add": "v2"},
                                 "remove": ["x-resp-remove"]}},
        "route": [{"destination": {"host": "test"}, "headers": {
            "request": {"set": {"x-route-req-set": "v1", ":authority": "internal.foo.extsvc.com"},
                        "add": {"x-route-req-add": "v2"}, "remove": ["x-route-req-remove"]},
            "response": {"set": {"x-route-resp-set": "v1"}, "add": {"x-route-resp-add": "v2"},
                         "remove": ["x-route-resp-remove"]}}}]}])
    ow, ap = "OVERWRITE_IF_EXISTS_OR_ADD", "APPEND_IF_EXISTS_OR_ADD"
    assert [(h["header"]["key"], h.get("append_action", "APPEND_IF_EXISTS_OR_ADD"))
            for h in r["request_headers_to_add"]] == [
        ("x-req-set", ow), ("x-req-add", ap), ("x-route-req-set", ow), ("x-route-req-add", ap)]
    assert r["request_headers_to_remove"] == ["x-req-remove", "x-route-req-remove"]
    assert [h["header"]["key"] for h in r["response_headers_to_add"]] == [
        "x-resp-set", "x-resp-add", "x-route-resp-set", "x-route-resp-add"]
    assert r["response_headers_to_remove"] == ["x-resp-remove", "x-route-resp-remove"]
    assert r["route"]["host_rewrite_literal"] == "foo.extsvc.com"


def test_t30_header_operations_weighted() -> None:
    def dest(subset: str, weight: int) -> Doc:
        return {"destination": {"host": "c-weighted.extsvc.com", "subset": subset,
                                "port": {"number": 8080}}, "weight": weight,
                "headers": {"request": {"set": {f"x-route-req-set-{subset}": "v1",
                                                ":authority": f"{subset}.foo.extsvc.com"},
                                        "add": {f"x-route-req-add-{subset}": "v2"},
                                        "remove": [f"x-route-req-remove-{subset}"]},
                            "response": {"set": {f"x-route-resp-set-{subset}": "v1"}}}}
    (r,) = one_route([{"headers": {"request": {"set": {"x-req-set": "v1"}}},
                       "route": [dest("blue", 9), dest("green", 1)]}])
    blue, green = r["route"]["weighted_clusters"]["clusters"]
    assert blue["name"] == "outbound|8080|blue|c-weighted.extsvc.com" and blue["weight"] == 9
    assert [h["header"]["key"] for h in blue["request_headers_to_add"]] == [
        "x-route-req-set-blue", "x-route-req-add-blue"]
    assert blue["request_headers_to_remove"] == ["x-route-req-remove-blue"]
    assert blue["host_rewrite_literal"] == "blue.foo.extsvc.com"
    assert green["weight"] == 1 and green["host_rewrite_literal"] == "green.foo.extsvc.com"
    assert [h["header"]["key"] for h in r["request_headers_to_add"]] == ["x-req-set"]
    assert "total_weight" not in r["route"]["weighted_clusters"]


def test_t31_redirects() -> None:
    routes = one_route([
        {"match": [{"uri": {"exact": "/a"}}],
         "redirect": {"uri": "example.org", "authority": "some-authority.default.svc.cluster.local",
                      "redirectCode": 308}},
        {"match": [{"uri": {"exact": "/b"}}], "redirect": {"uri": "x", "redirectCode": 317}},
        {"match": [{"uri": {"exact": "/c"}}],
         "redirect": {"authority": "foo.example.com", "prefixRewrite": "/", "redirectCode": 301}},
        {"match": [{"uri": {"exact": "/d"}}],
         "redirect": {"uri": "/d", "derivePort": "FROM_REQUEST_PORT", "scheme": "https"}}])
    assert routes[0]["redirect"] == {"host_redirect": "some-authority.default.svc.cluster.local",
                                     "path_redirect": "example.org",
                                     "response_code": "PERMANENT_REDIRECT"}
    assert "redirect" not in routes[1] and "route" not in routes[1]
    assert routes[1]["decorator"] == {"operation": "t:80/b"}
    assert routes[2]["redirect"] == {"host_redirect": "foo.example.com", "prefix_rewrite": "/"}
    assert routes[3]["redirect"] == {"path_redirect": "/d", "scheme_redirect": "https",
                                     "port_redirect": 80}


def test_t32_rewrites() -> None:
    routes = one_route([
        {"match": [{"uri": {"prefix": "/a"}}], "route": [DEST],
         "rewrite": {"uriRegexRewrite": {"match": "/.*", "rewrite": "/replace-full"}}},
        {"match": [{"uri": {"prefix": "/b"}}], "route": [DEST], "rewrite": {"uri": "/replace-prefix"}},
        {"match": [{"uri": {"regex": "^/service/([^/]+)(/.*)$"}}], "route": [DEST],
         "rewrite": {"uriRegexRewrite": {"match": "^/service/([^/]+)(/.*)$",
                                         "rewrite": "\\2/instance/\\1"}}},
        {"route": [DEST], "rewrite": {"authority": "bar.example.org"}}])
    assert routes[0]["route"]["regex_rewrite"] == {"pattern": {"regex": "/.*"},
                                                  "substitution": "/replace-full"}
    assert routes[1]["route"]["prefix_rewrite"] == "/replace-prefix"
    assert routes[2]["route"]["regex_rewrite"]["substitution"] == "\\2/instance/\\1"
    assert routes[3]["route"]["host_rewrite_literal"] == "bar.example.org"
    assert "append_x_forwarded_host" not in routes[3]["route"]


def test_t33_direct_response() -> None:
    (r,) = one_route([{
        "directResponse": {"status": 200, "body": {"string": "hello"}},
        "headers": {"response": {"set": {
            "Strict-Transport-Security": "max-age=31536000; includeSubDomains; preload"}}}}])
    assert r["direct_response"] == {"status": 200, "body": {"inline_string": "hello"}}
    assert r["response_headers_to_add"] == [{
        "header": {"key": "Strict-Transport-Security",
                   "value": "max-age=31536000; includeSubDomains; preload"},
        "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}]


def test_t34_consistent_hash_from_destination_rule() -> None:
    entry = se("ex", ["*.example.org"], ((8484, "HTTP"),), resolution="NONE")
    rule = dr("acme", "*.example.org", ns="istio-system", trafficPolicy={
        "loadBalancer": {"consistentHash": {"httpCookie": {"name": "hash-cookie",
                                                           "ttl": "0.0000001s"}}},
        "portLevelSettings": [{"port": {"number": 8484}, "loadBalancer": {
            "consistentHash": {"httpCookie": {"name": "hash-cookie-1"}}}}]})
    route_vs_ = vs("acme", ["*.example.org"], [{"route": [
        {"destination": {"host": "*.example.org"}, "weight": 100}]}])
    # VS route: the top-level hash (the destination names no port), no previous-hosts predicate.
    rc = rds([client(), entry, rule, route_vs_], "8484")["8484"]
    (r,) = vhosts(rc)["*.example.org:8484"]["routes"]
    assert r["route"]["hash_policy"] == [{"cookie": {"name": "hash-cookie", "ttl": "0.000000100s"}}]
    assert "retry_host_predicate" not in r["route"]["retry_policy"]
    # Default route: the port-level hash wins, and the predicate stays.
    rc = rds([client(), entry, rule], "8484")["8484"]
    (r,) = vhosts(rc)["*.example.org:8484"]["routes"]
    assert r["name"] == "default"
    assert r["route"]["hash_policy"] == [{"cookie": {"name": "hash-cookie-1"}}]
    assert r["route"]["retry_policy"]["retry_host_predicate"]


def _retry(policy: Doc | None, hash_policy: bool = False) -> Doc | None:
    out = translate_retry_policy(policy, hash_policy=hash_policy)
    return to_dict(out) if out is not None else None


def test_t35_retries() -> None:
    assert _retry(None) == DEFAULT_RETRY
    assert "retry_host_predicate" not in (_retry(None, True) or {})
    assert _retry({"attempts": 0}) is None
    r = _retry({"attempts": 2, "retryOn": "some,fake,5xx,404,conditions,503"}) or {}
    assert r["retry_on"] == "some,fake,5xx,conditions,retriable-status-codes"
    assert r["retriable_status_codes"] == [404, 503]
    r = _retry({"attempts": 2, "retryOn": "gateway-error,retriable-status-codes,503"}) or {}
    assert (r["retry_on"], r["retriable_status_codes"]) == (
        "gateway-error,retriable-status-codes", [503])
    assert parse_retry_on(" some,\t,fake ,\tconditions, ,") == ("some,fake,conditions", [])
    assert parse_retry_on("5xx,1000") == ("5xx,1000", [])
    r = _retry({"attempts": 2, "perTryTimeout": "3s", "backoff": "2s"}) or {}
    assert r["per_try_timeout"] == "3s" and r["retry_back_off"] == {"base_interval": "2s"}
    assert r["host_selection_retry_max_attempts"] == "5" and r["retry_host_predicate"]
    r = _retry({"attempts": 2, "retryRemoteLocalities": True}) or {}
    assert r["retry_priority"] == {
        "name": "envoy.retry_priorities.previous_priorities",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.retry.priority"
                                  ".previous_priorities.v3.PreviousPrioritiesConfig",
                         "update_frequency": 2}}
    assert "retry_host_predicate" not in (_retry({"attempts": 2, "retryIgnorePreviousHosts": False})
                                          or {})
    # On a route: VS retries replace the default policy.
    (route,) = one_route([{"route": [DEST], "retries": {"attempts": 3, "retryOn": "5xx"}}])
    assert route["route"]["retry_policy"]["num_retries"] == 3


def test_t36_inbound_retry_policy() -> None:
    assert to_dict(translate_inbound_retry_policy(None)) == {"retry_on": "reset-before-request",
                                                             "num_retries": 2}
    out = translate_inbound_retry_policy(
        {"attempts": 5, "retryOn": "reset,connect-failure", "backoff": "10ms"})
    assert to_dict(out) == {"retry_on": "reset,connect-failure", "num_retries": 5,
                            "retry_back_off": {"base_interval": "0.010s"}}
    assert translate_inbound_retry_policy({}) is None
    http = to_dict(default_inbound_route("inbound|9080||", "reviews.default.svc.cluster.local:9080/*",
                                         grpc=False, inbound_retry=None))
    assert http == {
        "name": "default", "match": {"prefix": "/"},
        "decorator": {"operation": "reviews.default.svc.cluster.local:9080/*"},
        "route": {"cluster": "inbound|9080||", "timeout": "0s",
                  "max_stream_duration": {"max_stream_duration": "0s",
                                          "grpc_timeout_header_max": "0s"},
                  "retry_policy": {"retry_on": "reset-before-request", "num_retries": 2}}}
    grpc = to_dict(default_inbound_route("inbound|9080||", "x:9080/*", grpc=True,
                                         inbound_retry=None))
    assert "retry_policy" not in grpc["route"]


# --- more features ------------------------------------------------------------------------------

def test_fault_cors_mirror_and_metadata() -> None:
    (r,) = one_route([{
        "name": "all",
        "route": [{"destination": {"host": "test", "subset": "v1"}}],
        "fault": {"delay": {"fixedDelay": "7s", "percentage": {"value": 12.5}},
                  "abort": {"grpcStatus": "UNAVAILABLE"}},
        "corsPolicy": {"allowOrigins": [{"exact": "https://a.example"}, {"regex": ".*b"}],
                       "allowMethods": ["GET", "POST"], "allowHeaders": ["x-a"],
                       "exposeHeaders": ["x-b"], "maxAge": "24h", "allowCredentials": True,
                       "unmatchedPreflights": "IGNORE"},
        "mirror": {"host": "test", "subset": "v2"}, "mirrorPercentage": {"value": 50},
        "mirrors": [{"destination": {"host": "other", "port": {"number": 9000}}},
                    {"destination": {"host": "zero"}, "percentage": {"value": 0}}]}])
    assert r["metadata"] == {"filter_metadata": {"istio": {
        "config": "/apis/networking.istio.io/v1/namespaces/default/virtual-service/t"}}}
    assert r["decorator"] == {"operation": "test.default.svc.cluster.local:80/*"}
    fault = r["typed_per_filter_config"]["envoy.filters.http.fault"]
    assert fault["@type"] == "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"
    assert fault["delay"] == {"fixed_delay": "7s",
                              "percentage": {"numerator": 125000, "denominator": "MILLION"}}
    assert fault["abort"] == {"grpc_status": 14}
    cors = r["typed_per_filter_config"]["envoy.filters.http.cors"]
    assert cors["allow_origin_string_match"] == [{"exact": "https://a.example"},
                                                 {"safe_regex": {"regex": ".*b"}}]
    assert (cors["allow_methods"], cors["allow_headers"], cors["expose_headers"],
            cors["max_age"]) == ("GET,POST", "x-a", "x-b", "86400")
    assert cors["allow_credentials"] is True
    assert cors["forward_not_matching_preflights"] is False
    assert cors["filter_enabled"] == {"default_value": {"numerator": 100}}
    assert r["route"]["request_mirror_policies"] == [
        {"cluster": "outbound|80|v2|test.default.svc.cluster.local",
         "runtime_fraction": {"default_value": {"numerator": 500000, "denominator": "MILLION"}},
         "trace_sampled": False, "disable_shadow_host_suffix_append": True},
        {"cluster": "outbound|9000||other.default.svc.cluster.local",
         "runtime_fraction": {"default_value": {"numerator": 100}},
         "trace_sampled": False, "disable_shadow_host_suffix_append": True}]


def test_omitted_destination_port_and_weights() -> None:
    docs = [client(), svc("reviews", ports=((9080, "http"), (9090, "http-admin"))),
            vs("r", ["reviews"], [{"route": [
                {"destination": {"host": "reviews", "subset": "v1"}, "weight": 50},
                {"destination": {"host": "reviews", "subset": "v2"}, "weight": 0},
                {"destination": {"host": "reviews", "subset": "v3"}, "weight": 50}]}])]
    out = rds(docs, "9080", "9090")
    for port in (9080, 9090):
        (r,) = vhosts(out[str(port)])[f"reviews.default.svc.cluster.local:{port}"]["routes"]
        assert [c["name"] for c in r["route"]["weighted_clusters"]["clusters"]] == [
            f"outbound|{port}|v1|reviews.default.svc.cluster.local",
            f"outbound|{port}|v3|reviews.default.svc.cluster.local"]
        assert r["decorator"] == {"operation": f"r:{port}/*"}


def test_delegate_virtual_service() -> None:
    docs = [client(), svc("test", ports=((80, "http"),)),
            vs("root", ["test"], [
                {"name": "r", "match": [{"uri": {"prefix": "/api"}}],
                 "delegate": {"name": "leaf", "namespace": "not-default"}, "timeout": "3s"},
                {"name": "missing", "delegate": {"name": "nope"}},
                {"name": "rest", "route": [DEST]}]),
            {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
             "metadata": meta("leaf", "not-default"),
             "spec": {"http": [
                 {"name": "v1", "match": [{"uri": {"prefix": "/api/v1"}}],
                  "route": [{"destination": {"host": "test.default.svc.cluster.local",
                                             "subset": "v1"}}]},
                 {"name": "bad", "match": [{"uri": {"prefix": "/other"}}],
                  "route": [{"destination": {"host": "x"}}]}]}}]
    ctx = context(docs)
    idx = ctx.scope.vs_index
    assert idx is not None and [d.message for d in idx.diagnostics] == [
        "match conflicts with root default/root http[0]; this delegate route is ignored",
        "delegate VirtualService default/nope not found; http[1] is ignored"]
    (built,) = build_route_configs(ctx, ["80"])
    rc = to_dict(built.message)
    routes = vhosts(rc)["test.default.svc.cluster.local:80"]["routes"]
    assert [(r["name"], r["match"].get("prefix")) for r in routes] == [
        ("r-v1", "/api/v1"), ("rest", "/")]
    assert routes[0]["route"]["timeout"] == "3s"
    assert routes[0]["metadata"]["filter_metadata"]["istio"]["config"].endswith(
        "/namespaces/default/virtual-service/root")
    origin = built.origins["virtual_hosts[0].routes[0]"]
    assert origin.resource is not None and origin.resource.name == "leaf"


def test_vs_exported_privately_is_invisible_elsewhere() -> None:
    docs = [client("not-default"), *base_services(),
            vs("private", [KNOWN], [{"route": [{"destination": {"host": "x.example.com"}}]}],
               exportTo=["."])]
    vh = vhosts(rds(docs, "80", proxy="deploy/client.not-default")["80"])
    assert vh[f"{KNOWN}:80"]["routes"][0]["name"] == "default"
    vh = vhosts(rds([client(), *docs[1:]], "80")["80"])
    assert cluster_of(vh[f"{KNOWN}:80"]) == "outbound|80||x.example.com"


def test_egress_proxy_and_unknown_route_name() -> None:
    docs = [client(), sidecar("default", outboundTrafficPolicy={
        "mode": "ALLOW_ANY", "egressProxy": {"host": "egress.example.com", "subset": "s",
                                             "port": {"number": 443}}})]
    out = rds(docs, "80", "not-a-port")
    assert cluster_of(vhosts(out["80"])["allow_any"]) == "outbound|443|s|egress.example.com"
    assert out["not-a-port"] == {"name": "not-a-port", "validate_clusters": False}


def test_worked_example_10_2() -> None:
    docs = [client("default", "productpage"),
            svc("reviews", ports=((9080, "http"),), ip="10.96.1.5"),
            svc("mysqldb", ports=((3306, "tcp"),), ip="10.96.1.9"),
            dr("reviews", "reviews",
               trafficPolicy={"loadBalancer": {"consistentHash": {"httpHeaderName": "x-user"}}},
               subsets=[{"name": v, "labels": {"version": v}} for v in ("v1", "v2", "v3")]),
            vs("reviews", ["reviews"], [
                {"name": "jason", "match": [{"headers": {"end-user": {"exact": "jason"}}}],
                 "route": [{"destination": {"host": "reviews", "subset": "v2"}}]},
                {"name": "split", "timeout": "5s",
                 "retries": {"attempts": 3, "perTryTimeout": "2s", "retryOn": "5xx,reset"},
                 "route": [{"destination": {"host": "reviews", "subset": "v1"}, "weight": 90},
                           {"destination": {"host": "reviews", "subset": "v3"}, "weight": 10}]}])]
    rc = rds(docs, "9080", proxy="deploy/productpage.default")["9080"]
    meta_ = {"filter_metadata": {"istio": {
        "config": "/apis/networking.istio.io/v1/namespaces/default/virtual-service/reviews"}}}
    no_predicate = {k: v for k, v in DEFAULT_RETRY.items() if k != "retry_host_predicate"}
    assert rc["virtual_hosts"][0] == {
        "name": "reviews.default.svc.cluster.local:9080",
        "domains": ["reviews.default.svc.cluster.local", "reviews.default.svc.cluster.local.",
                    "reviews", "reviews.default.svc", "reviews.default", "10.96.1.5"],
        "include_request_attempt_count": True,
        "routes": [
            {"name": "jason",
             "match": {"prefix": "/", "case_sensitive": True,
                       "headers": [{"name": "end-user", "string_match": {"exact": "jason"}}]},
             "metadata": meta_,
             "decorator": {"operation": "reviews.default.svc.cluster.local:9080/*"},
             "route": {"cluster": "outbound|9080|v2|reviews.default.svc.cluster.local",
                       "timeout": "0s", "max_grpc_timeout": "0s",
                       "hash_policy": [{"header": {"header_name": "x-user"}}],
                       "retry_policy": no_predicate}},
            {"name": "split", "match": {"prefix": "/"}, "metadata": meta_,
             "decorator": {"operation": "reviews:9080/*"},
             "route": {
                 "weighted_clusters": {"clusters": [
                     {"name": "outbound|9080|v1|reviews.default.svc.cluster.local", "weight": 90},
                     {"name": "outbound|9080|v3|reviews.default.svc.cluster.local", "weight": 10}]},
                 "timeout": "5s", "max_grpc_timeout": "5s",
                 "hash_policy": [{"header": {"header_name": "x-user"}}] * 2,
                 "retry_policy": {**DEFAULT_RETRY, "retry_on": "5xx,reset", "num_retries": 3,
                                  "per_try_timeout": "2s"}}}]}
    assert [v["name"] for v in rc["virtual_hosts"]] == [
        "reviews.default.svc.cluster.local:9080", "allow_any"]


def test_provenance_per_route() -> None:
    ctx = context([client(), svc("reviews", ports=((9080, "http"),)),
                   svc("ratings", ports=((9080, "http"),)),
                   vs("reviews", ["reviews"], [{"route": [{"destination": {"host": "reviews"}}]}])])
    (built,) = build_route_configs(ctx, ["9080"])
    names = [v.name for v in built.message.virtual_hosts]
    assert names == ["ratings.default.svc.cluster.local:9080",
                     "reviews.default.svc.cluster.local:9080", "allow_any"]
    assert built.origins["virtual_hosts[0].routes[0]"].rule == "istiod default"
    vs_origin = built.origins["virtual_hosts[1].routes[0]"]
    assert vs_origin.rule == "virtual-service" and vs_origin.field == ("spec", "http", 0)
    assert vs_origin.span is not None and vs_origin.span.line > 0
    for i, vh in enumerate(built.message.virtual_hosts):
        for j in range(len(vh.routes)):
            assert f"virtual_hosts[{i}].routes[{j}]" in built.origins
