"""Behaviours from Istio's simulation tests (pilot/pkg/networking/core/*_simulation_test.go) that
meshlens's trace once got wrong; each names the Go function that decides it (issue 14)."""

from __future__ import annotations

from typing import Any

from meshlens.model.mesh import MeshConfig
from meshlens.pipeline import compile_for, load_string, server_compiler
from meshlens.simulate import Request, Trace, simulate
from meshlens.source import RawDocument, SourceSpan
from tests.test_trace_outcomes import trace as outcomes_trace
from tests.test_listeners_outbound import NS

BASE = NS  # a Namespace with injection and a client Deployment

ALIAS = BASE + """
---
apiVersion: v1
kind: Service
metadata: {name: alias, namespace: default}
spec: {type: ExternalName, externalName: concrete.default.svc.cluster.local}
---
apiVersion: v1
kind: Service
metadata: {name: concrete, namespace: default}
spec:
  clusterIP: 1.2.3.4
  ports:
  - {name: http, port: 80}
  - {name: auto, port: 81}
  - {name: tcp, port: 82}
  - {name: tls, port: 83}
  - {name: https, port: 84}
"""


def mesh(**cfg: Any) -> MeshConfig:
    return MeshConfig.from_document(RawDocument(cfg, SourceSpan("mesh.yaml", 1, 1)))


def trace(text: str, url: str, *headers: str, proxy: str = "deploy/client.default",
          mesh_config: MeshConfig | None = None, **opts: Any) -> Trace:
    return outcomes_trace(text, url, *headers, proxy=proxy, mesh=mesh_config, **opts)


def clusters(t: Trace) -> list[str]:
    return [c["name"] for c in t.clusters]


def test_external_name_aliases_are_vhost_domains() -> None:
    """`PushContext.initServiceAliases` + `generateVirtualHostDomains`: Host: alias reaches the
    concrete Service's virtual host, not allow_any (TestExternalNameServices)."""
    for port in (80, 81):
        t = trace(ALIAS, f"http://1.2.3.4:{port}/", "host: alias.default.svc.cluster.local")
        assert clusters(t) == [f"outbound|{port}||concrete.default.svc.cluster.local"]
        assert t.layers[2].detail["virtual_host"].startswith("concrete.default.svc.cluster.local")
    assert clusters(trace(ALIAS, "tcp://1.2.3.4:82")) == ["outbound|82||concrete.default.svc.cluster.local"]
    t = trace(ALIAS, "tls://1.2.3.4:83", sni="alias.default")
    assert clusters(t) == ["outbound|83||concrete.default.svc.cluster.local"]
    # and the app's DNS follows the CNAME
    t = trace(ALIAS, "http://alias/")
    assert "CNAME" in t.layers[0].detail["resolved"] and t.layers[0].detail["original_destination"] == "1.2.3.4:80"


HEADLESS = BASE + """
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: default}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{name: tls, port: 443}]
---
apiVersion: v1
kind: Pod
metadata: {name: db-0, namespace: default, labels: {app: db}}
spec: {containers: [{name: db, image: db, ports: [{containerPort: 443}]}]}
status: {podIP: 10.244.9.9}
"""


def test_headless_tls_pod_listener_has_no_sni_match() -> None:
    """`buildSidecarOutboundTLSFilterChainOpts`: server names only for wildcard or CIDR-matched
    listeners; a headless Service's per-pod listener 10.244.9.9_443 matches any SNI."""
    loaded = load_string(HEADLESS, "t.yaml")
    result = compile_for(loaded, "deploy/client.default")
    lst = next(x for x in result.listeners if x.name == "10.244.9.9_443")
    assert all(not c.filter_chain_match.server_names for c in lst.filter_chains)
    t = trace(HEADLESS, "tls://10.244.9.9:443", sni="something-else.example")
    assert t.layers[1].name == "10.244.9.9_443"
    assert clusters(t) == ["outbound|443||db.default.svc.cluster.local"]


def se(addresses: list[str]) -> str:
    return BASE + f"""
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: ext, namespace: default}}
spec:
  hosts: [ext.example.com]
  addresses: {addresses}
  ports: [{{name: tcp, number: 9000, protocol: TCP}}]
  resolution: STATIC
  endpoints: [{{address: 2.2.2.2}}]
"""


def test_serviceentry_full_length_prefix_is_a_host_and_ipv6_32_is_a_cidr() -> None:
    """`serviceentry/conversion.go` `convertServices`: /32 (IPv4) and /128 (IPv6) become the bare
    IP; an IPv6 /32 stays a CIDR."""
    from meshlens.compiler.listeners import se_address

    assert se_address("10.1.2.3/32") == "10.1.2.3"
    assert se_address("2001:db8::1/128") == "2001:db8::1"
    assert se_address("2001:db8::/32") == "2001:db8::/32"
    loaded = load_string(se(["10.1.2.3/32"]), "t.yaml")
    names = [x.name for x in compile_for(loaded, "deploy/client.default").listeners]
    assert "10.1.2.3_9000" in names
    t = trace(se(["10.1.2.3/32"]), "tcp://10.1.2.3:9000")
    assert clusters(t) == ["outbound|9000||ext.example.com"]
    loaded = load_string(se(["2001:db8::/32"]), "t.yaml")
    lst = [x for x in compile_for(loaded, "deploy/client.default").listeners if x.name == "0.0.0.0_9000"]
    assert lst and any(pr.prefix_len.value == 32 for c in lst[0].filter_chains
                       for pr in c.filter_chain_match.prefix_ranges)


def test_allow_any_dynamic_dns_catch_all_http_chain() -> None:
    """`buildOutboundCatchAllNetworkFilterChains`: under ALLOW_ANY_DYNAMIC_DNS virtualOutbound gets
    the HTTP inspector and ``virtualOutbound-catchall-tcp-http`` → AllowAnyDynamicDNSCluster;
    other bytes still go to PassthroughCluster (TestPassthroughTraffic)."""
    m = mesh(outboundTrafficPolicy={"mode": "ALLOW_ANY_DYNAMIC_DNS"})
    t = trace(BASE, "http://api.example.org:8123/", mesh_config=m)
    assert t.layers[1].detail["filter_chain"] == "virtualOutbound-catchall-tcp-http"
    assert clusters(t) == ["AllowAnyDynamicDNSCluster"]
    t = trace(BASE, "tcp://api.example.org:8123", mesh_config=m)
    assert clusters(t) == ["PassthroughCluster"]
    t = trace(BASE, "http://api.example.org:8123/")
    assert clusters(t) == ["PassthroughCluster"]


def test_listener_picked_by_address_and_port_loop() -> None:
    """Envoy hands a redirected connection to the listener bound to its original destination:
    a request to port 15006 lands on virtualInbound's blackhole chain (TestLoop)."""
    t = trace(ALIAS, "http://1.2.3.4:15006/")
    assert t.layers[1].name == "virtualInbound"
    assert t.layers[1].detail["filter_chain"] == "virtualInbound-blackhole"
    assert clusters(t) == ["BlackHoleCluster"] and t.verdict == "BlackHole"
    t = trace(ALIAS, "http://1.2.3.4:15001/")
    assert t.layers[1].detail["filter_chain"] == "virtualOutbound-blackhole"



FAILOVER = NS.replace("labels: {app: client}}", "labels: {app: client, version: v1}}") + """
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: default}
spec:
  selector: {app: echo}
  ports: [{name: http, port: 80}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: dns, namespace: default}
spec:
  hosts: [dns.example.com]
  ports: [{name: http, number: 80, protocol: HTTP}]
  resolution: DNS
  endpoints:
  - {address: a.example.com, labels: {version: v2}}
  - {address: b.example.com, labels: {version: v1}}
""" + "".join(f"""
---
apiVersion: v1
kind: Pod
metadata: {{name: echo-{v}, namespace: default, labels: {{app: echo, version: {v}}}}}
spec: {{containers: [{{name: e, image: e, ports: [{{containerPort: 80}}]}}]}}
status: {{podIP: 10.244.7.{i}}}
""" for i, v in ((1, "v2"), (2, "v1"), (3, "v3"))) + "".join(f"""
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: {name}, namespace: default}}
spec:
  host: {host}
  trafficPolicy:
    outlierDetection: {{consecutive5xxErrors: 3}}
    loadBalancer:
      localityLbSetting: {{enabled: true, failoverPriority: [version]}}
""" for name, host in (("echo", "echo.default.svc.cluster.local"), ("dns", "dns.example.com")))


def test_failover_priority_orders_endpoints_by_matching_labels() -> None:
    """`applyFailoverPriorities` / `applyFailoverPriorityPerLocality`, for EDS and DNS clusters:
    endpoints sharing the proxy's ``version`` get priority 0, the others 1."""
    loaded = load_string(FAILOVER, "t.yaml")
    result = compile_for(loaded, "deploy/client.default")
    cla = next(e for e in result.endpoints if e.cluster_name == "outbound|80||echo.default.svc.cluster.local")
    by_priority = {loc.priority: sorted(e.endpoint.address.socket_address.address for e in loc.lb_endpoints)
                   for loc in cla.endpoints}
    assert by_priority == {0: ["10.244.7.2"], 1: ["10.244.7.1", "10.244.7.3"]}
    dns = next(c for c in result.clusters if c.name == "outbound|80||dns.example.com")
    by_priority = {loc.priority: [e.endpoint.address.socket_address.address for e in loc.lb_endpoints]
                   for loc in dns.load_assignment.endpoints}
    assert by_priority == {0: ["b.example.com"], 1: ["a.example.com"]}
    t = trace(FAILOVER, "http://echo/")
    assert {e["address"]: e["priority"] for e in t.endpoints} == {"10.244.7.1": 1, "10.244.7.2": 0,
                                                                   "10.244.7.3": 1}


POD = NS + """
---
apiVersion: v1
kind: Pod
metadata: {name: app, namespace: default, labels: {app: app}}
spec: {containers: [{name: a, image: a, ports: [{containerPort: 8080}]}]}
status: {podIP: 10.244.5.5}
---
apiVersion: v1
kind: Service
metadata: {name: backend, namespace: default}
spec: {selector: {app: app}, ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: backend-alt, namespace: default}
spec: {selector: {app: app}, ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se, namespace: default}
spec:
  hosts: [se.example.com]
  location: MESH_INTERNAL
  ports: [{name: tcp, number: 9000, targetPort: 9090, protocol: TCP}]
  resolution: STATIC
  endpoints: [{address: 10.244.5.5}]
"""


def _inbound_clusters(text: str, m: MeshConfig | None = None) -> dict[str, Any]:
    result = compile_for(load_string(text, "t.yaml", mesh_config=m), "app.default")
    return {c.name: c for c in result.clusters if c.name.startswith("inbound|")}


def test_inbound_clusters_shared_target_port_and_serviceentry_instance() -> None:
    """`TestInboundClusters`: two Services sharing a target port give one cluster whose telemetry
    metadata lists both, sorted (`Proxy.SetServiceTargets`, `addTelemetryMetadata`); a pod that is
    the endpoint of a ServiceEntry in its namespace serves that entry's target port
    (`serviceentry.Controller.GetProxyServiceTargets`)."""
    clusters = _inbound_clusters(POD)
    assert sorted(clusters) == ["inbound|8080||", "inbound|9090||"]
    services = clusters["inbound|8080||"].metadata.filter_metadata["istio"]["services"]
    assert [s["host"] for s in services] == ["backend-alt.default.svc.cluster.local",
                                             "backend.default.svc.cluster.local"]
    for port, cluster in ((8080, "inbound|8080||"), (9090, "inbound|9090||")):
        t = trace(POD, f"tcp://10.244.5.5:{port}", proxy="app.default", inbound=True, peer="mtls")
        assert t.verdict == "ok" and t.layers[-1].detail["inbound_cluster"] == cluster


def test_inbound_traffic_policy_localhost_is_static_to_loopback() -> None:
    """`buildInboundClustersFromServiceInstances`: inboundTrafficPolicy LOCALHOST binds the inbound
    clusters STATIC to 127.0.0.1:targetPort."""
    clusters = _inbound_clusters(POD, mesh(inboundTrafficPolicy={"mode": "LOCALHOST"}))
    c = clusters["inbound|8080||"]
    assert c.type == c.STATIC
    sa = c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address
    assert (sa.address, sa.port_value) == ("127.0.0.1", 8080)
    assert _inbound_clusters(POD)["inbound|8080||"].type == c.ORIGINAL_DST


def test_sidecar_ingress_replaces_service_ports_and_port_level_mtls_adds_passthrough_chains() -> None:
    """`buildInboundClusters` with a Sidecar ``ingress`` (TestInboundClusters "ingress to ...");
    a port-level PeerAuthentication on a port no Service serves gets passthrough chains
    (TestInboundSidecarTLSModes)."""
    sidecar = POD + """
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: sidecar, namespace: default}
spec:
  ingress:
  - port: {number: 80, protocol: HTTP, name: http}
    defaultEndpoint: 127.0.0.1:8080
"""
    clusters = _inbound_clusters(sidecar)
    assert sorted(clusters) == ["inbound|80||"]
    pa = POD + """
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: app, namespace: default}
spec:
  selector: {matchLabels: {app: app}}
  mtls: {mode: PERMISSIVE}
  portLevelMtls: {"7777": {mode: STRICT}}
"""
    t = trace(pa, "tcp://10.244.5.5:7777", proxy="app.default", inbound=True, peer="mtls")
    assert t.verdict == "ok" and t.layers[-1].detail["inbound_cluster"] == "InboundPassthroughCluster"
    t = trace(pa, "tcp://10.244.5.5:7777", proxy="app.default", inbound=True)
    assert t.verdict == "NR" and t.fix is not None and t.fix["yaml_path"] == "{.spec.portLevelMtls.7777.mode}"


def test_external_name_alias_is_a_server_name_on_wildcard_tls_listeners() -> None:
    """`buildSidecarOutboundTLSFilterChainOpts`: a wildcard TLS listener matches the aliases'
    names (and their `GenerateAltVirtualHosts` forms) as well as the service's."""
    text = NS + """
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: default}
spec:
  hosts: [ext.example.com]
  ports: [{name: tls, number: 443, protocol: TLS}]
  resolution: DNS
  endpoints: [{address: ext.example.com}]
---
apiVersion: v1
kind: Service
metadata: {name: ext-alias, namespace: default}
spec: {type: ExternalName, externalName: ext.example.com}
"""
    result = compile_for(load_string(text, "t.yaml"), "deploy/client.default")
    lst = next(x for x in result.listeners if x.name == "0.0.0.0_443")
    names = {n for c in lst.filter_chains for n in c.filter_chain_match.server_names}
    assert {"ext.example.com", "ext-alias.default.svc.cluster.local", "ext-alias"} <= names
    t = trace(text, "tls://ext-alias:443")
    assert clusters(t) == ["outbound|443||ext.example.com"]


def test_aliases_outside_the_sidecar_scope_are_not_domains() -> None:
    """`SidecarScope` `matchingAliasService`: a Sidecar that imports only the concrete Service
    drops the alias from its virtual host domains (``Host: alias`` falls to allow_any)."""
    scoped = ALIAS + """
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  egress: [{hosts: [./concrete.default.svc.cluster.local]}]
"""
    t = trace(scoped, "http://1.2.3.4:80/", "host: alias.default.svc.cluster.local")
    assert t.layers[2].detail["virtual_host"] == "allow_any" and clusters(t) == ["PassthroughCluster"]
    t = trace(ALIAS, "http://1.2.3.4:80/", "host: alias.default.svc.cluster.local")
    assert clusters(t) == ["outbound|80||concrete.default.svc.cluster.local"]
