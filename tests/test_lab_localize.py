"""Localization: the compiled config made runnable on loopback, its routing meaning untouched."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
import pytest
from google.protobuf import json_format

from meshlens.lab.addressing import Addressing, require_loopback
from meshlens.lab.bootstrap import build_lab_bootstrap
from meshlens.lab.certs import LabCA, spiffe_id
from meshlens.lab.guard import NotLoopback, check_loopback_only
from meshlens.lab.localize import ServerSide, localize, summarize
from meshlens.pipeline import compile_for, load, server_compiler

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "src" / "meshlens" / "examples" / "llm-server.yaml"
CASES = ROOT / "tests" / "cases"


def _json(msgs: list[Any]) -> str:
    return "\n".join(json_format.MessageToJson(m) for m in msgs)


def _addresses(node: Any, out: list[str]) -> list[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("address", "address_prefix") and isinstance(v, str):
                out.append(v)
            else:
                _addresses(v, out)
    elif isinstance(node, list):
        for v in node:
            _addresses(v, out)
    return out


def test_addressing_rules() -> None:
    a = Addressing()
    assert a.ip("10.244.1.11") == "127.244.1.11"
    assert a.ip("10.0.0.1").startswith("127.255.")  # would be the host's 127.0.0.1
    assert a.ip("192.0.2.10").startswith("127.255.")
    assert a.name("api.vendor.com") == a.name("API.vendor.com.")
    assert a.cidr("10.96.0.0", 12) == ("127.96.0.0", 12)
    assert Addressing.from_dict(a.to_dict()).ip("192.0.2.10") == a.ip("192.0.2.10")
    try:
        require_loopback("10.0.0.1")
    except ValueError:
        pass
    else:  # pragma: no cover
        raise AssertionError("a non-loopback address passed the belt")


def test_seed_client_is_loopback_only_and_keeps_routing() -> None:
    loaded = load([str(SEED)])
    result = compile_for(loaded, "deploy/client.mesh-demo")
    before = {c.name: c for c in result.clusters}
    lc = localize(result, Addressing(), access_log="x.log")
    rules = {r for r, _n, _ex in summarize(lc.changes)}
    assert {"address", "extension", "sds", "capture", "bind", "access_log"} <= rules
    # every address in the served config is loopback or the unbound wildcard of Istio's
    # per-port listeners (bind_to_port: false)
    for msg in [*lc.clusters, *lc.endpoints, *lc.listeners]:
        for addr in _addresses(json_format.MessageToDict(msg, preserving_proto_field_name=True), []):
            ip = ipaddress.ip_address(addr)
            assert ip.is_loopback or ip.is_unspecified, (msg.name if hasattr(msg, "name") else "", addr)
    bound = [lst for lst in lc.listeners
             if not lst.HasField("bind_to_port") or lst.bind_to_port.value]
    for lst in bound:
        assert lst.address.socket_address.address == "127.0.0.1"
        assert lst.enable_reuse_port.value is False
    vo = next(lst for lst in lc.listeners if lst.name == "virtualOutbound")
    assert vo.listener_filters[0].name == "envoy.filters.listener.proxy_protocol"
    text = _json(lc.clusters + lc.listeners)
    for istio_only in ("istio.metadata_exchange", "istio.alpn", "sds-grpc"):
        assert istio_only not in text
    # routing meaning kept: same cluster names, LB, breakers, outlier detection, TLS SNI/SANs
    for c in lc.clusters:
        b = before[c.name]
        assert c.lb_policy == b.lb_policy
        assert c.circuit_breakers == b.circuit_breakers
        assert c.outlier_detection == b.outlier_detection
        assert c.transport_socket.name == b.transport_socket.name
    assert [r.SerializeToString(deterministic=True) for r in lc.routes] == [
        r.SerializeToString(deterministic=True) for r in result.routes or []]
    # Istio's access log format on every HCM
    hcms = []
    for lst in lc.listeners:
        for fc in lst.filter_chains:
            for f in fc.filters:
                if f.typed_config.Is(hcm_pb2.HttpConnectionManager.DESCRIPTOR):
                    h = hcm_pb2.HttpConnectionManager()
                    f.typed_config.Unpack(h)
                    hcms.append(h)
    assert hcms and all(h.access_log for h in hcms)


def test_server_sidecar_binds_its_pod_address_and_points_inbound_at_the_app() -> None:
    loaded = load([str(SEED)])
    server = server_compiler(loaded)("10.244.201.4")
    assert server is not None
    a = Addressing()
    lc = localize(server, a, access_log="s.log",
                  server=ServerSide("127.244.201.4", {8080: 41000}))
    vi = next(lst for lst in lc.listeners if lst.name == "virtualInbound")
    assert (vi.address.socket_address.address, vi.address.socket_address.port_value) == (
        "127.244.201.4", 8080)
    inbound = next(c for c in lc.clusters if c.name == "inbound|8080||")
    assert inbound.type == cluster_pb2.Cluster.STATIC
    sa = inbound.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address
    assert (sa.address, sa.port_value) == ("127.244.201.4", 41000)
    assert inbound.upstream_bind_config.source_address.address == "127.0.0.6"


def test_dns_clusters_resolve_locally() -> None:
    loaded = load([str(CASES / "serviceentry-resolutions" / "manifests.yaml")])
    result = compile_for(loaded, "deploy/client.default")
    a = Addressing()
    lc = localize(result, a, access_log="x.log")
    dns = [c for c in result.clusters
           if c.type in (cluster_pb2.Cluster.STRICT_DNS, cluster_pb2.Cluster.LOGICAL_DNS)]
    assert dns
    for c in dns:
        local = next(x for x in lc.clusters if x.name == c.name)
        assert local.type == cluster_pb2.Cluster.STATIC
        for loc in local.load_assignment.endpoints:
            for lb in loc.lb_endpoints:
                require_loopback(lb.endpoint.address.socket_address.address)
    assert "rr-backend.example.com" in a.names


def test_bootstrap_and_secrets() -> None:
    result = compile_for(load([str(SEED)]), "deploy/client.mesh-demo")
    b = build_lab_bootstrap(result, ads_port=12345, source_ip="127.244.187.154")
    assert b["node"]["id"] == "sidecar~10.244.187.154~client-659z7nh9ht-qkdlk.mesh-demo~" \
                              "mesh-demo.svc.cluster.local" or b["node"]["id"].startswith("sidecar~")
    assert b["admin"]["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 0}
    assert b["dynamic_resources"]["ads_config"]["api_type"] == "GRPC"
    assert "stats_config" not in b
    ca = LabCA.create()
    default, root = ca.secrets(spiffe_id("cluster.local", "mesh-demo", "llm-server"))
    assert default.name == "default" and root.name == "ROOTCA"
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(default.tls_certificate.certificate_chain.inline_bytes)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://cluster.local/ns/mesh-demo/sa/llm-server"]


V6_MESH = """
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio-injection: enabled}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: client, namespace: shop}
spec:
  selector: {matchLabels: {app: client}}
  template:
    metadata: {labels: {app: client}}
    spec: {containers: [{name: c, image: curl}]}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: shop}
spec:
  hosts: [api.example.com]
  addresses: ["2001:db8::10/128"]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  location: MESH_EXTERNAL
  endpoints:
  - address: "2001:db8::1"
  - address: "::ffff:198.51.100.7"
"""


def _v6_result() -> Any:
    from meshlens.loader import load_text
    from meshlens.pipeline import build

    return compile_for(build(load_text(V6_MESH, "v6.yaml"), None), "deploy/client.shop")


def test_ipv6_and_ipv4_mapped_endpoints_are_localized() -> None:
    """Issue 12 item 2: IPv6 and IPv4-mapped endpoints reached the real Envoy unchanged."""
    result = _v6_result()
    a = Addressing()
    lc = localize(result, a, access_log="x.log")
    cla = next(e for e in lc.endpoints if e.cluster_name == "outbound|80||api.example.com")
    got = [lb.endpoint.address.socket_address.address for loc in cla.endpoints
           for lb in loc.lb_endpoints]
    assert len(got) == 2 and all(ipaddress.ip_address(x) in ipaddress.ip_network("127.0.0.0/8")
                                 for x in got)
    # the map says what it did, and what it says is what was served
    assert a.ips["2001:db8::1"] in got and a.ips["::ffff:198.51.100.7"] in got
    assert a.ips["::ffff:198.51.100.7"] == a.ips["198.51.100.7"]  # the same host either way
    changes = [c.detail for c in lc.changes if c.rule == "address"]
    assert any(d.startswith("2001:db8::1 -> 127.") for d in changes)
    assert a.ip("::1") == "::1" and a.ip("::") == "::" and a.ip("fe80::1").startswith("127.255.")
    assert a.cidr("2001:db8::10", 128)[0].startswith("127.") and a.cidr("2001:db8::10", 128)[1] == 32
    check_loopback_only(clusters=lc.clusters, endpoints=lc.endpoints, listeners=lc.listeners,
                        routes=lc.routes, bootstrap=build_lab_bootstrap(result, ads_port=1))


def test_guard_refuses_any_non_loopback_socket_address() -> None:
    result = _v6_result()
    lc = localize(result, Addressing(), access_log="x.log")
    for bad in ("2001:db8::1", "::ffff:198.51.100.7", "198.51.100.7", "api.example.com", "::"):
        cla = type(lc.endpoints[0])()
        cla.CopyFrom(next(e for e in lc.endpoints if e.cluster_name.endswith("api.example.com")))
        cla.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address = bad
        with pytest.raises(NotLoopback, match=f"endpoints outbound\\|80\\|\\|api.example.com: {re.escape(bad)}"):
            check_loopback_only(endpoints=[cla], node="client")
    # a bound listener, the bootstrap's admin and a cluster's bind address are checked too
    vo = next(x for x in lc.listeners if x.name == "virtualOutbound")
    vo2 = type(vo)()
    vo2.CopyFrom(vo)
    vo2.address.socket_address.address = "0.0.0.0"
    with pytest.raises(NotLoopback, match="listener virtualOutbound: 0.0.0.0"):
        check_loopback_only(listeners=[vo2])
    boot = build_lab_bootstrap(result, ads_port=1)
    boot["admin"]["address"]["socket_address"]["address"] = "::"
    with pytest.raises(NotLoopback, match="bootstrap: ::"):
        check_loopback_only(bootstrap=boot)
    boot = build_lab_bootstrap(result, ads_port=1, source_ip="192.0.2.1")
    with pytest.raises(NotLoopback, match="192.0.2.1"):
        check_loopback_only(bootstrap=boot)
    # Istio's unbound per-port listeners keep their wildcard match key
    unbound = next(x for x in lc.listeners if x.name == "0.0.0.0_80")
    check_loopback_only(listeners=[unbound])
