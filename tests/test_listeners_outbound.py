"""Outbound LDS: virtualOutbound and per-port listeners (lds-rds.md §2.2, §2.3, §9 T37-T43, §10.1)."""

from __future__ import annotations

from typing import Any

from meshlens.compiler import CompileResult
from meshlens.emit import to_dict
from meshlens.pipeline import compile_string

NS = """
apiVersion: v1
kind: Namespace
metadata: {name: default, labels: {istio-injection: enabled}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: client, namespace: default}
spec:
  selector: {matchLabels: {app: client}}
  template:
    metadata: {labels: {app: client}}
    spec: {containers: [{name: c, image: x}]}
"""


def svc(name: str, ports: str, *, ip: str | None = None, ns: str = "default", extra: str = "") -> str:
    cip = f"\n  clusterIP: {ip}" if ip else ""
    return f"""
---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {ns}{extra}}}
spec:{cip}
  selector: {{app: {name}}}
  ports: {ports}
"""


def listeners(yaml_text: str, proxy: str = "deploy/client", mesh: Any = None) -> dict[str, dict[str, Any]]:
    result: CompileResult = compile_string(NS + yaml_text, proxy, mesh_config=mesh)
    assert result.listeners is not None
    return {lst.name: to_dict(lst) for lst in result.listeners}


def hcm(chain: dict[str, Any]) -> dict[str, Any]:
    f = chain["filters"][-1]
    assert f["name"] == "envoy.filters.network.http_connection_manager"
    return f["typed_config"]


def test_virtual_outbound_listener() -> None:
    ls = listeners("")
    vo = ls["virtualOutbound"]
    assert vo["address"]["socket_address"] == {"address": "0.0.0.0", "port_value": 15001}
    assert vo["use_original_dst"] is True
    assert vo["traffic_direction"] == "OUTBOUND"
    names = [c["name"] for c in vo["filter_chains"]]
    assert names == ["virtualOutbound-blackhole", "virtualOutbound-catchall-tcp"]
    assert vo["filter_chains"][0]["filter_chain_match"] == {"destination_port": 15001}
    tcp = vo["filter_chains"][1]["filters"][0]["typed_config"]
    assert tcp["cluster"] == "PassthroughCluster" and tcp["stat_prefix"] == "PassthroughCluster"


def test_registry_only_sends_the_catch_all_to_the_blackhole() -> None:
    from meshlens.model.mesh import MeshConfig
    from meshlens.source import RawDocument, SourceSpan

    mesh = MeshConfig.from_document(RawDocument({"outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}},
                                                SourceSpan("mesh.yaml", 1, 1)))
    ls = listeners(svc("web", "[{name: http, port: 8080}]"), mesh=mesh)
    assert ls["virtualOutbound"]["filter_chains"][1]["filters"][0]["typed_config"]["cluster"] == "BlackHoleCluster"
    default = ls["0.0.0.0_8080"]["default_filter_chain"]
    assert default["name"] == "PassthroughFilterChain"
    assert default["filters"][0]["typed_config"]["cluster"] == "BlackHoleCluster"


def test_http_listener_shape_T38() -> None:
    ls = listeners(svc("web", "[{name: http, port: 8080}]"))
    lst = ls["0.0.0.0_8080"]
    assert lst["bind_to_port"] is False
    assert [f["name"] for f in lst["listener_filters"]] == ["envoy.filters.listener.http_inspector"]
    assert len(lst["filter_chains"]) == 1
    chain = lst["filter_chains"][0]
    assert chain["filter_chain_match"] == {"transport_protocol": "raw_buffer",
                                           "application_protocols": ["http/1.1", "h2c"]}
    assert chain["transport_socket_connect_timeout"] == "15s"
    h = hcm(chain)
    assert h["rds"]["route_config_name"] == "8080"
    assert h["stat_prefix"] == "outbound_0.0.0.0_8080;"
    assert [f["name"] for f in h["http_filters"]] == [
        "istio.metadata_exchange", "envoy.filters.http.grpc_stats", "istio.alpn",
        "envoy.filters.http.fault", "envoy.filters.http.cors", "envoy.filters.http.router"]
    assert lst["default_filter_chain"]["filters"][0]["typed_config"]["stat_prefix"] == "PassthroughCluster"


def test_rds_names_per_listener_T37() -> None:
    ls = listeners(svc("test1", "[{name: web, port: 8080}]", ip="1.2.3.4")
                   + svc("test2", "[{name: http, port: 8080}]", ip="2.3.4.5")
                   + svc("test3", "[{port: 8080}]", ip="3.4.5.6"))
    names = sorted(n for n in ls if n.endswith("_8080"))
    assert names == ["0.0.0.0_8080", "1.2.3.4_8080", "3.4.5.6_8080"]
    assert hcm(ls["0.0.0.0_8080"]["filter_chains"][0])["rds"]["route_config_name"] == "8080"
    auto = ls["1.2.3.4_8080"]
    http = [c for c in auto["filter_chains"] if "application_protocols" in c.get("filter_chain_match", {})]
    assert hcm(http[0])["rds"]["route_config_name"] == "test1.default.svc.cluster.local:8080"
    tcp = auto["default_filter_chain"]["filters"][0]["typed_config"]
    assert tcp["cluster"] == "outbound|8080||test1.default.svc.cluster.local"


def test_tcp_service_with_vip_worked_example() -> None:
    ls = listeners(svc("mysqldb", "[{name: tcp, port: 3306}]", ip="10.96.1.9"))
    lst = ls["10.96.1.9_3306"]
    assert lst["address"]["socket_address"] == {"address": "10.96.1.9", "port_value": 3306}
    assert "listener_filters" not in lst
    assert len(lst["filter_chains"]) == 1 and "default_filter_chain" not in lst
    tcp = lst["filter_chains"][0]["filters"][0]["typed_config"]
    assert tcp["cluster"] == tcp["stat_prefix"] == "outbound|3306||mysqldb.default.svc.cluster.local"


def test_three_tcp_services_on_one_vip_oldest_wins_T39() -> None:
    yaml_text = "".join(
        f"""
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: se{i}, namespace: default, creationTimestamp: "2026-01-0{i}T00:00:00Z"}}
spec:
  hosts: [svc{i}.example.com]
  addresses: [1.2.3.4]
  resolution: STATIC
  ports: [{{number: 8080, name: tcp, protocol: TCP}}]
  endpoints: [{{address: 9.9.9.{i}}}]
""" for i in (3, 1, 2))
    ls = listeners(yaml_text)
    lst = ls["1.2.3.4_8080"]
    assert len(lst["filter_chains"]) == 1
    assert lst["filter_chains"][0]["filters"][0]["typed_config"]["cluster"] == "outbound|8080||svc1.example.com"


def test_http_and_tcp_without_vip_share_a_port() -> None:
    yaml_text = svc("web", "[{name: http, port: 9000}]") + """
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: raw, namespace: default}
spec:
  hosts: [raw.example.com]
  resolution: DNS
  ports: [{number: 9000, name: tcp, protocol: TCP}]
"""
    lst = listeners(yaml_text)["0.0.0.0_9000"]
    assert hcm(lst["filter_chains"][0])["rds"]["route_config_name"] == "9000"
    assert lst["default_filter_chain"]["filters"][0]["typed_config"]["cluster"] == "outbound|9000||raw.example.com"


def test_reserved_ports_are_skipped_for_http_T41() -> None:
    ls = listeners(svc("a", "[{name: http-status, port: 15021}, {name: http, port: 8080}]")
                   + svc("b", "[{name: tcp, port: 15090}]", ip="10.96.7.7"))
    assert "0.0.0.0_15021" not in ls
    assert "10.96.7.7_15090" in ls and "0.0.0.0_8080" in ls


def test_headless_tcp_service_gets_one_listener_per_pod() -> None:
    yaml_text = """
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: c, image: x, ports: [{containerPort: 5432}]}]}
""" + svc("db", "[{name: tcp, port: 5432}]", ip="None")
    ls = listeners(yaml_text)
    per_pod = sorted(n for n in ls if n.endswith("_5432"))
    assert len(per_pod) == 2 and all(not n.startswith("0.0.0.0") for n in per_pod)


def test_tls_serviceentry_without_address_matches_sni() -> None:
    yaml_text = """
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: default}
spec:
  hosts: [api.vendor.com]
  resolution: DNS
  ports: [{number: 443, name: tls, protocol: TLS}]
"""
    lst = listeners(yaml_text)["0.0.0.0_443"]
    assert lst["filter_chains"][0]["filter_chain_match"]["server_names"] == ["api.vendor.com"]
    assert [f["name"] for f in lst["listener_filters"]] == ["envoy.filters.listener.tls_inspector"]
    assert lst["default_filter_chain"]["name"] == "PassthroughFilterChain"


def test_tcp_virtual_service_weighted_routes() -> None:
    yaml_text = svc("db", "[{name: tcp, port: 5432}]", ip="10.96.3.3") + """
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: db-split, namespace: default}
spec:
  hosts: [db]
  tcp:
  - route:
    - {destination: {host: db, subset: a}, weight: 80}
    - {destination: {host: db, subset: b}, weight: 20}
"""
    lst = listeners(yaml_text)["10.96.3.3_5432"]
    tcp = lst["filter_chains"][0]["filters"][0]["typed_config"]
    assert tcp["stat_prefix"] == "db-split.default"
    assert tcp["weighted_clusters"]["clusters"] == [
        {"name": "outbound|5432|a|db.default.svc.cluster.local", "weight": 80},
        {"name": "outbound|5432|b|db.default.svc.cluster.local", "weight": 20}]
    assert lst["filter_chains"][0]["metadata"]["filter_metadata"]["istio"]["config"] == \
        "/apis/networking.istio.io/v1/namespaces/default/virtual-service/db-split"
