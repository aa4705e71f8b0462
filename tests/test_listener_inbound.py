"""Inbound LDS: ``virtualInbound`` and bind-to-port inbound listeners, pinned to istiod's tests.

Cases of lds-rds.md §9 "LDS inbound / mTLS" and §10.3, written as manifests for one pod (the
proxy) and asserted partially on the emitted JSON:

* T44 (TestVirtualInboundHasPassthroughClusters): chain inventory and order for an HTTP port
  80 → targetPort 8080, PERMISSIVE.
* T45 (TestInbound matrix): the chains of an HTTP, a TCP and an auto port under mesh
  PERMISSIVE / STRICT / DISABLE, and the passthrough chains; written as a Kubernetes Service
  selecting the pod (a ServiceEntry's static endpoint is not a service target here).
* TestInboundListenerFilters: the TLS/HTTP inspector predicates for HTTP:80, auto:81, TCP:82
  in its three cases, evaluated per port as the Go test does, and their exact shape.
* T46 (TestPeerAuthenticationPassthrough): port-level PA on ports without a service, both ways.
* T47 (TestPeerAuthenticationWithSidecar): Sidecar ingress replaces the service chains;
  port-level PA on a non-ingress port becomes per-port passthrough chains.
* Sidecar ingress with ``captureMode: NONE``: a bind-to-port listener.
* §10.3: the reviews pod (HTTP 9080, PERMISSIVE), field by field, and a real-Envoy validation.
* Around them: the HCM and tcp_proxy of inbound chains, HTTP2/gRPC ports, mesh options (retry
  policy, meshMTLS, trust domain aliases, access logs, stat names, protocol detection timeout),
  interception NONE/TPROXY, and the provenance of each chain's mTLS mode.

T48 (ENABLE_TLS_ON_SIDECAR_INGRESS) is not written: the flag is off by default and not a compile
option; T49's "direct call to 15006 hits the blackhole chain" is the blackhole assertion.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from meshlens.compiler import CompileOptions, compile_proxy
from meshlens.compiler.clusters import ClusterContext
from meshlens.compiler.draft import Built
from meshlens.compiler.listener_inbound import build_inbound_listeners
from meshlens.compiler.traffic_policy import PolicyContext
from meshlens.emit import config_dump, to_dict
from meshlens.model import resolve_proxy
from meshlens.model.mesh import MeshConfig
from meshlens.pipeline import load_string
from meshlens.source import RawDocument, SourceSpan

POD_IP = "10.1.2.3"
ALL_ISTIO = ["istio", "istio-peer-exchange", "istio-http/1.0", "istio-http/1.1", "istio-h2"]
MTLS_HTTP = ["istio-http/1.0", "istio-http/1.1", "istio-h2"]
MTLS_TCP = ["istio-peer-exchange", "istio"]
PLAIN_HTTP = ["http/1.1", "h2c"]
HCM = "envoy.filters.network.http_connection_manager"
TCP_PROXY = "envoy.filters.network.tcp_proxy"
MX = "istio.metadata_exchange"
TLS_INSPECTOR = "envoy.filters.listener.tls_inspector"
DOWNSTREAM_TLS = ("type.googleapis.com/"
                  "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext")
LISTENER_TYPE = "type.googleapis.com/envoy.config.listener.v3.Listener"
HTTP_INSPECTOR = "envoy.filters.listener.http_inspector"


# --- manifests -------------------------------------------------------------------------------


def pod(name: str = "app", ns: str = "default", *, labels: dict[str, str] | None = None,
        ports: tuple[int, ...] = (), annotations: dict[str, str] | None = None) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name, "namespace": ns, "labels": labels or {"app": name}}
    if annotations:
        md["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md,
            "spec": {"containers": [{"name": "app", "image": "app",
                                     "ports": [{"containerPort": p} for p in ports]}]},
            "status": {"podIP": POD_IP, "conditions": [{"type": "Ready", "status": "True"}]}}


def service(name: str, ports: list[tuple[str, int, int]], *, ns: str = "default",
            selector: dict[str, str] | None = None) -> dict[str, Any]:
    """A Service selecting the ``app`` pod; ``ports`` are (name, port, targetPort)."""
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": selector or {"app": "app"},
                     "ports": [{"name": n, "port": p, "targetPort": t} for n, p, t in ports]}}


def peer_auth(mode: str | None, *, name: str = "default", ns: str = "istio-system",
              selector: dict[str, str] | None = None,
              port_level: dict[int, str | None] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if mode:
        spec["mtls"] = {"mode": mode}
    if selector:
        spec["selector"] = {"matchLabels": selector}
    if port_level:
        spec["portLevelMtls"] = {p: ({"mode": m} if m else {}) for p, m in port_level.items()}
    return {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def sidecar(ingress: list[dict[str, Any]], *, ns: str = "default") -> dict[str, Any]:
    return {"apiVersion": "networking.istio.io/v1", "kind": "Sidecar",
            "metadata": {"name": "sidecar", "namespace": ns},
            "spec": {"workloadSelector": {"labels": {"app": "app"}}, "ingress": ingress}}


def namespaces() -> list[dict[str, Any]]:
    return [{"apiVersion": "v1", "kind": "Namespace",
             "metadata": {"name": n, "labels": {"istio-injection": "enabled"}}}
            for n in ("default", "istio-system")]


# --- compiling -------------------------------------------------------------------------------


def _mesh(values: dict[str, Any] | None) -> MeshConfig | None:
    return MeshConfig.from_document(RawDocument(values, SourceSpan("mesh.yaml", 1, 1))) \
        if values else None


def compile_inbound(*docs: dict[str, Any], proxy: str = "app.default",
                    mesh: dict[str, Any] | None = None, **flags: Any) -> list[Built]:
    """Build the context the way ``compile_proxy`` does and run the inbound listener builder."""
    text = yaml.safe_dump_all([*namespaces(), *docs], sort_keys=False)
    loaded = load_string(text, mesh_config=_mesh(mesh))
    p = resolve_proxy(loaded.mesh.registry.workloads, proxy)
    result = compile_proxy(loaded.mesh, p, options=CompileOptions(**flags))
    mc = loaded.mesh.mesh_config
    ctx = ClusterContext(loaded.mesh, p, result.scope, result.options,
                         PolicyContext(mc, result.options, mc.doc, p.workload.locality))
    return build_inbound_listeners(ctx)


def listeners(*docs: dict[str, Any], **kw: Any) -> dict[str, dict[str, Any]]:
    return {b.message.name: to_dict(b.message) for b in compile_inbound(*docs, **kw)}


def virtual_inbound(*docs: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return listeners(*docs, **kw)["virtualInbound"]


def summary(fc: dict[str, Any]) -> Row:
    """(name, transport, ALPN, terminates TLS, terminal filter) of a filter chain."""
    m = fc.get("filter_chain_match", {})
    return (fc["name"], m.get("transport_protocol", ""), m.get("application_protocols", []),
            "transport_socket" in fc, fc["filters"][-1]["name"])


Row = tuple[str, str, list[str], bool, str]


def chains_for(lst: dict[str, Any], port: int | None) -> list[Row]:
    """Summaries of the chains matching ``destination_port`` (None: chains without one)."""
    return [summary(fc) for fc in lst["filter_chains"]
            if fc.get("filter_chain_match", {}).get("destination_port") == port]


def network_filter(fc: dict[str, Any], name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [f["typed_config"] for f in fc["filters"] if f["name"] == name]
    assert found, f"no {name} in chain {fc['name']}"
    return found[0]


def find_listener_filter(lst: dict[str, Any], name: str) -> dict[str, Any] | None:
    found = [f for f in lst.get("listener_filters", []) if f["name"] == name]
    return found[0] if found else None


def listener_filter(lst: dict[str, Any], name: str) -> dict[str, Any]:
    f = find_listener_filter(lst, name)
    assert f is not None, f"no listener filter {name}"
    return f


def disabled_on(predicate: dict[str, Any] | None, port: int) -> bool:
    """Evaluate a ``filter_disabled`` predicate for a destination port (xdstest's evaluator)."""
    if predicate is None:
        return False
    if "not_match" in predicate:
        return not disabled_on(predicate["not_match"], port)
    if "or_match" in predicate:
        return any(disabled_on(r, port) for r in predicate["or_match"]["rules"])
    r = predicate["destination_port_range"]
    return bool(r["start"] <= port < r["end"])


def inspector_disabled(lst: dict[str, Any], name: str, port: int) -> bool:
    """An absent inspector is disabled everywhere."""
    f = find_listener_filter(lst, name)
    return f is None or disabled_on(f.get("filter_disabled"), port)


def port_range(*ports: int) -> dict[str, Any]:
    rules = [{"destination_port_range": {"start": p, "end": p + 1}} for p in ports]
    return rules[0] if len(rules) == 1 else {"or_match": {"rules": rules}}


# --- T44: chain inventory ------------------------------------------------------------------


def test_t44_virtual_inbound_chain_inventory() -> None:
    vi = virtual_inbound(pod(ports=(8080,)), service("app", [("http", 80, 8080)]))
    assert [(fc["name"], fc.get("filter_chain_match", {}).get("transport_protocol"))
            for fc in vi["filter_chains"]] == [
        ("virtualInbound-blackhole", None),
        ("virtualInbound-catchall-http", "tls"), ("virtualInbound-catchall-http", "raw_buffer"),
        ("virtualInbound", "tls"), ("virtualInbound", "raw_buffer"), ("virtualInbound", "tls"),
        ("0.0.0.0_8080", "tls"), ("0.0.0.0_8080", "raw_buffer")]
    assert [f["name"] for f in vi["listener_filters"]] == [
        "envoy.filters.listener.original_dst", TLS_INSPECTOR, HTTP_INSPECTOR]


def test_t44_target_port_keys_the_chain_service_port_names_the_vhost() -> None:
    vi = virtual_inbound(pod(ports=(8080,)), service("app", [("http", 80, 8080)]))
    fc = vi["filter_chains"][-1]
    assert fc["filter_chain_match"] == {"destination_port": 8080,
                                        "transport_protocol": "raw_buffer"}
    hcm = network_filter(fc, HCM)
    assert hcm["stat_prefix"] == "inbound_0.0.0.0_8080;"
    rc = hcm["route_config"]
    assert rc["name"] == "inbound|8080||"
    vh = rc["virtual_hosts"][0]
    assert vh["name"] == "inbound|http|80"
    assert vh["routes"][0]["decorator"] == {"operation": "app.default.svc.cluster.local:80/*"}
    assert vh["routes"][0]["route"]["cluster"] == "inbound|8080||"


def test_t49_blackhole_chain_guards_the_inbound_port() -> None:
    bh = virtual_inbound(pod())["filter_chains"][0]
    assert bh["name"] == "virtualInbound-blackhole"
    assert bh["filter_chain_match"] == {"destination_port": 15006}
    assert [f["name"] for f in bh["filters"]] == [MX, TCP_PROXY]
    assert network_filter(bh, TCP_PROXY) == {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
        "stat_prefix": "BlackHoleCluster", "cluster": "BlackHoleCluster"}


# --- T45: mode × protocol matrix -----------------------------------------------------------

T45_SERVICE = service("app", [("tcp", 70, 70), ("http", 80, 80), ("auto", 81, 81)])

HTTP_ROWS = {
    "STRICT": [("0.0.0.0_80", "tls", [], True, HCM)],
    "PERMISSIVE": [("0.0.0.0_80", "tls", ALL_ISTIO, True, HCM),
                   ("0.0.0.0_80", "raw_buffer", [], False, HCM)],
    "DISABLE": [("0.0.0.0_80", "raw_buffer", [], False, HCM)],
}
TCP_ROWS = {
    "STRICT": [("0.0.0.0_70", "tls", [], True, TCP_PROXY)],
    "PERMISSIVE": [("0.0.0.0_70", "tls", ALL_ISTIO, True, TCP_PROXY),
                   ("0.0.0.0_70", "tls", [], False, TCP_PROXY),
                   ("0.0.0.0_70", "raw_buffer", [], False, TCP_PROXY)],
    "DISABLE": [("0.0.0.0_70", "raw_buffer", [], False, TCP_PROXY)],
}
AUTO_ROWS = {
    "STRICT": [("0.0.0.0_81", "tls", MTLS_HTTP, True, HCM),
               ("0.0.0.0_81", "tls", [], True, TCP_PROXY)],
    "PERMISSIVE": [("0.0.0.0_81", "tls", MTLS_HTTP, True, HCM),
                   ("0.0.0.0_81", "raw_buffer", PLAIN_HTTP, False, HCM),
                   ("0.0.0.0_81", "tls", MTLS_TCP, True, TCP_PROXY),
                   ("0.0.0.0_81", "raw_buffer", [], False, TCP_PROXY),
                   ("0.0.0.0_81", "tls", [], False, TCP_PROXY)],
    "DISABLE": [("0.0.0.0_81", "raw_buffer", PLAIN_HTTP, False, HCM),
                ("0.0.0.0_81", "raw_buffer", [], False, TCP_PROXY)],
}


def _passthrough_rows(mode: str) -> list[Row]:
    return [(("virtualInbound-catchall-http" if term == HCM else "virtualInbound"),
             transport, alpn, tls, term) for _, transport, alpn, tls, term in AUTO_ROWS[mode]]


@pytest.mark.parametrize("mode", ["PERMISSIVE", "STRICT", "DISABLE"])
def test_t45_chains_per_mode_and_protocol(mode: str) -> None:
    docs = [pod(ports=(70, 80, 81)), T45_SERVICE]
    if mode != "PERMISSIVE":
        docs.append(peer_auth(mode))
    vi = virtual_inbound(*docs)
    assert chains_for(vi, 80) == HTTP_ROWS[mode]
    assert chains_for(vi, 70) == TCP_ROWS[mode]
    assert chains_for(vi, 81) == AUTO_ROWS[mode]
    assert chains_for(vi, None) == _passthrough_rows(mode)
    # Service chains follow the passthrough chains, in target-port order.
    ports = [fc["filter_chain_match"].get("destination_port") for fc in vi["filter_chains"][1:]
             if "destination_port" in fc.get("filter_chain_match", {})]
    assert ports == sorted(ports)


def test_t45_permissive_is_the_default_without_any_peer_authentication() -> None:
    explicit = virtual_inbound(pod(ports=(70, 80, 81)), T45_SERVICE, peer_auth("PERMISSIVE"))
    assert explicit == virtual_inbound(pod(ports=(70, 80, 81)), T45_SERVICE)


def test_mtls_downstream_context_per_chain_kind() -> None:
    vi = virtual_inbound(pod(ports=(70, 80)), service("app", [("tcp", 70, 70), ("http", 80, 80)]))
    by = {(fc["name"], fc["filter_chain_match"].get("transport_protocol"),
           tuple(fc["filter_chain_match"].get("application_protocols", []))): fc
          for fc in vi["filter_chains"] if "transport_socket" in fc}
    http_ctx = by[("0.0.0.0_80", "tls", tuple(ALL_ISTIO))]["transport_socket"]
    tcp_ctx = by[("0.0.0.0_70", "tls", tuple(ALL_ISTIO))]["transport_socket"]
    assert http_ctx["name"] == "envoy.transport_sockets.tls"
    sds = {"api_config_source": {"api_type": "GRPC", "grpc_services": [
        {"envoy_grpc": {"cluster_name": "sds-grpc"}}], "set_node_on_first_message_only": True,
        "transport_api_version": "V3"}, "initial_fetch_timeout": "0s", "resource_api_version": "V3"}
    assert http_ctx["typed_config"] == {
        "@type": DOWNSTREAM_TLS,
        "common_tls_context": {
            "tls_params": {"tls_minimum_protocol_version": "TLSv1_2",
                           "tls_maximum_protocol_version": "TLSv1_3",
                           "cipher_suites": ["ECDHE-ECDSA-AES256-GCM-SHA384",
                                             "ECDHE-RSA-AES256-GCM-SHA384",
                                             "ECDHE-ECDSA-AES128-GCM-SHA256",
                                             "ECDHE-RSA-AES128-GCM-SHA256",
                                             "AES256-GCM-SHA384", "AES128-GCM-SHA256"]},
            "alpn_protocols": ["h2", "http/1.1"],
            "tls_certificate_sds_secret_configs": [{"name": "default", "sds_config": sds}],
            "combined_validation_context": {
                "default_validation_context": {
                    "match_subject_alt_names": [{"prefix": "spiffe://cluster.local/"}]},
                "validation_context_sds_secret_config": {"name": "ROOTCA", "sds_config": sds}}},
        "require_client_certificate": True}
    assert tcp_ctx["typed_config"]["common_tls_context"]["alpn_protocols"] == [
        "istio-peer-exchange", "h2", "http/1.1"]


def test_mesh_mtls_settings_and_trust_domain_aliases_shape_the_context() -> None:
    vi = virtual_inbound(pod(ports=(80,)), service("app", [("http", 80, 80)]), mesh={
        "trustDomain": "td1", "trustDomainAliases": ["td2", "td1"],
        "meshMTLS": {"minProtocolVersion": "TLSV1_3",
                     "cipherSuites": ["ECDHE-RSA-AES256-GCM-SHA384"]}})
    ctx = [fc for fc in vi["filter_chains"] if "transport_socket" in fc][-1]["transport_socket"]
    common = ctx["typed_config"]["common_tls_context"]
    assert common["tls_params"] == {"tls_minimum_protocol_version": "TLSv1_3",
                                    "tls_maximum_protocol_version": "TLSv1_3",
                                    "cipher_suites": ["ECDHE-RSA-AES256-GCM-SHA384"]}
    assert common["combined_validation_context"]["default_validation_context"] == {
        "match_subject_alt_names": [{"prefix": "spiffe://td1/"}, {"prefix": "spiffe://td2/"}]}


# --- listener filters (TestInboundListenerFilters) ------------------------------------------

FILTER_DOCS = [pod(ports=(80, 81, 82)),
               service("test1", [("http", 80, 80)]), service("test2", [("auto", 81, 81)]),
               service("test3", [("tcp", 82, 82)])]


@pytest.mark.parametrize(("mode", "http_disabled", "tls_disabled"), [
    ("PERMISSIVE", {80: True, 82: True, 81: False, 1000: False},
     {80: False, 82: False, 81: False, 1000: False}),
    ("DISABLE", {80: True, 82: True, 81: False, 1000: False}, None),
    ("STRICT", {80: True, 82: True, 81: True, 1000: True},
     {80: False, 82: False, 81: False, 1000: False}),
])
def test_inbound_listener_filter_predicates(mode: str, http_disabled: dict[int, bool],
                                            tls_disabled: dict[int, bool] | None) -> None:
    docs = FILTER_DOCS + ([peer_auth(mode)] if mode != "PERMISSIVE" else [])
    vi = virtual_inbound(*docs)
    for port, expect in http_disabled.items():
        assert inspector_disabled(vi, HTTP_INSPECTOR, port) is expect, (mode, "http", port)
    if tls_disabled is None:
        assert find_listener_filter(vi, TLS_INSPECTOR) is None
    else:
        for port, expect in tls_disabled.items():
            assert inspector_disabled(vi, TLS_INSPECTOR, port) is expect, (mode, "tls", port)


def test_inbound_listener_filter_predicate_shapes() -> None:
    permissive = virtual_inbound(*FILTER_DOCS)
    tls = listener_filter(permissive, TLS_INSPECTOR)
    http = listener_filter(permissive, HTTP_INSPECTOR)
    assert tls["filter_disabled"] == port_range(15006)
    assert tls["typed_config"]["initial_read_buffer_size"] == 512
    assert http["filter_disabled"] == port_range(80, 82, 15006)
    strict = virtual_inbound(*FILTER_DOCS, peer_auth("STRICT"))
    assert [f["name"] for f in strict["listener_filters"]] == [
        "envoy.filters.listener.original_dst", TLS_INSPECTOR]
    disable = virtual_inbound(*FILTER_DOCS, peer_auth("DISABLE"))
    assert [f["name"] for f in disable["listener_filters"]] == [
        "envoy.filters.listener.original_dst", HTTP_INSPECTOR]
    assert listener_filter(disable, HTTP_INSPECTOR)["filter_disabled"] == port_range(80, 82, 15006)


def test_tls_inspector_opts_ports_in_when_the_passthrough_is_plaintext() -> None:
    """Workload DISABLE with one STRICT port: the inspector runs only there (not_match)."""
    vi = virtual_inbound(pod(ports=(80,)), service("app", [("http", 80, 80)]),
                         peer_auth("DISABLE", ns="default", selector={"app": "app"},
                                   port_level={80: "STRICT"}))
    assert listener_filter(vi, TLS_INSPECTOR)["filter_disabled"] == {"not_match": port_range(80)}
    assert inspector_disabled(vi, TLS_INSPECTOR, 80) is False
    assert inspector_disabled(vi, TLS_INSPECTOR, 9999) is True


def test_listener_level_fields() -> None:
    vi = virtual_inbound(pod())
    assert vi["address"] == {"socket_address": {"address": "0.0.0.0", "port_value": 15006}}
    assert vi["traffic_direction"] == "INBOUND"
    assert vi["continue_on_listener_filters_timeout"] is True
    assert vi["max_connections_to_accept_per_socket_event"] == 1
    assert vi["listener_filters_timeout"] == "0s"
    assert "access_log" not in vi and "transparent" not in vi
    timed = virtual_inbound(pod(), mesh={"protocolDetectionTimeout": "100ms"})
    assert timed["listener_filters_timeout"] == "0.100s"


# --- workload-level and port-level PeerAuthentication --------------------------------------


def test_workload_policy_beats_namespace_and_mesh_and_is_recorded() -> None:
    docs = [pod(ports=(80,)), service("app", [("http", 80, 80)]), peer_auth("STRICT"),
            peer_auth("STRICT", ns="default"),
            peer_auth("DISABLE", name="app-off", ns="default", selector={"app": "app"})]
    built = compile_inbound(*docs)[0]
    vi = to_dict(built.message)
    assert chains_for(vi, 80) == HTTP_ROWS["DISABLE"]
    assert chains_for(vi, None) == _passthrough_rows("DISABLE")
    i = next(i for i, fc in enumerate(vi["filter_chains"])
             if fc.get("filter_chain_match", {}).get("destination_port") == 80)
    origin = built.origins[f"filter_chains[{i}]"]
    assert origin.rule == "peer-authentication"
    assert origin.resource is not None and origin.resource.name == "app-off"
    assert origin.field == ("spec", "mtls", "mode")
    port_origin = built.origins[f"filter_chains[{i}].filter_chain_match.destination_port"]
    assert port_origin.resource is not None and port_origin.resource.kind == "Service"


def test_default_mode_is_recorded_as_istiod_default() -> None:
    built = compile_inbound(pod(ports=(80,)), service("app", [("http", 80, 80)]))[0]
    origin = built.origins["filter_chains[1]"]
    assert origin.resource is None and "no PeerAuthentication: PERMISSIVE" in origin.note


def test_workload_unset_inherits_namespace_mode() -> None:
    vi = virtual_inbound(pod(ports=(80,)), service("app", [("http", 80, 80)]),
                         peer_auth("STRICT", ns="default"),
                         peer_auth(None, name="wl", ns="default", selector={"app": "app"},
                                   port_level={9000: None}))
    assert chains_for(vi, 80) == HTTP_ROWS["STRICT"]
    # A port-level entry without a mode inherits the (namespace-level) STRICT.
    assert chains_for(vi, 9000) == _passthrough_rows("STRICT")


def test_root_namespace_selector_policy_is_not_a_workload_policy() -> None:
    vi = virtual_inbound(pod(ports=(80,)), service("app", [("http", 80, 80)]),
                         peer_auth("STRICT", name="root-wl", selector={"app": "app"}))
    assert chains_for(vi, 80) == HTTP_ROWS["PERMISSIVE"]


def test_port_level_mode_on_a_service_target_port() -> None:
    vi = virtual_inbound(pod(ports=(70, 80)), service("app", [("tcp", 70, 70), ("http", 8000, 80)]),
                         peer_auth("PERMISSIVE", name="wl", ns="default", selector={"app": "app"},
                                   port_level={80: "STRICT"}))
    assert chains_for(vi, 80) == HTTP_ROWS["STRICT"]  # keyed by the target port, not 8000
    assert chains_for(vi, 70) == TCP_ROWS["PERMISSIVE"]
    assert chains_for(vi, None) == _passthrough_rows("PERMISSIVE")
    assert not chains_for(vi, 8000)


def test_t46_port_level_passthrough_without_services() -> None:
    vi = virtual_inbound(pod(labels={"app": "foo"}),
                         peer_auth("STRICT", ns="default", selector={"app": "foo"},
                                   port_level={9000: "DISABLE"}), proxy="app.default")
    assert chains_for(vi, None) == _passthrough_rows("STRICT")
    assert chains_for(vi, 9000) == _passthrough_rows("DISABLE")
    per_port = [fc for fc in vi["filter_chains"]
                if fc.get("filter_chain_match", {}).get("destination_port") == 9000]
    # Per-port passthrough chains still describe port 0: vhost inbound|http|0, decorator :0/*.
    hcm = network_filter(per_port[0], HCM)
    assert hcm["stat_prefix"] == "InboundPassthroughCluster;"
    assert hcm["route_config"]["virtual_hosts"][0]["name"] == "inbound|http|0"
    assert network_filter(per_port[-1], TCP_PROXY)["cluster"] == "InboundPassthroughCluster"


def test_port_level_mode_is_recorded_with_its_portlevelmtls_path() -> None:
    built = compile_inbound(pod(labels={"app": "foo"}),
                            peer_auth("STRICT", ns="default", selector={"app": "foo"},
                                      port_level={9000: "DISABLE"}))[0]
    vi = to_dict(built.message)
    i = next(i for i, fc in enumerate(vi["filter_chains"])
             if fc.get("filter_chain_match", {}).get("destination_port") == 9000)
    origin = built.origins[f"filter_chains[{i}]"]
    assert origin.resource is not None and origin.resource.kind == "PeerAuthentication"
    assert origin.field == ("spec", "portLevelMtls", 9000, "mode")
    assert "DISABLE (port level)" in origin.note
    assert built.origins["filter_chains[1]"].field == ("spec", "mtls", "mode")


def test_t46_service_port_takes_the_port_level_mode_from_its_service_chain() -> None:
    vi = virtual_inbound(pod(labels={"app": "foo"}, ports=(8000,)),
                         service("foo", [("http", 8000, 8000)], selector={"app": "foo"}),
                         peer_auth("STRICT", ns="default", selector={"app": "foo"},
                                   port_level={9000: "DISABLE"}))
    assert chains_for(vi, 8000) == [("0.0.0.0_8000", "tls", [], True, HCM)]
    assert chains_for(vi, 9000) == _passthrough_rows("DISABLE")


def test_t46_inverse_policy() -> None:
    vi = virtual_inbound(pod(labels={"app": "foo"}, ports=(8000,)),
                         service("foo", [("http", 8000, 8000)], selector={"app": "foo"}),
                         peer_auth("DISABLE", ns="default", selector={"app": "foo"},
                                   port_level={9000: "STRICT"}))
    assert chains_for(vi, 8000) == [("0.0.0.0_8000", "raw_buffer", [], False, HCM)]
    assert chains_for(vi, None) == _passthrough_rows("DISABLE")
    assert chains_for(vi, 9000) == _passthrough_rows("STRICT")
    order = [fc.get("filter_chain_match", {}).get("destination_port") for fc in vi["filter_chains"]]
    assert order == [15006, None, None, 9000, 9000, 8000]  # per-port passthrough before services


def test_port_level_passthrough_ports_are_sorted() -> None:
    vi = virtual_inbound(pod(), peer_auth("PERMISSIVE", ns="default", selector={"app": "app"},
                                          port_level={9100: "STRICT", 9000: "DISABLE"}))
    ports = [fc["filter_chain_match"]["destination_port"] for fc in vi["filter_chains"]
             if fc.get("filter_chain_match", {}).get("destination_port") not in (None, 15006)]
    assert ports == [9000, 9000, 9100, 9100]


# --- Sidecar ingress ---------------------------------------------------------------------------


def test_t47_sidecar_ingress_replaces_service_chains() -> None:
    vi = virtual_inbound(
        pod(ports=(8080, 9090)), service("app", [("http", 8080, 8080), ("tcp", 9090, 9090)]),
        peer_auth("STRICT", ns="default", selector={"app": "app"}, port_level={9090: "DISABLE"}),
        sidecar([{"port": {"number": 8080, "protocol": "TCP", "name": "tls"},
                  "defaultEndpoint": "127.0.0.1:8080"}]))
    assert chains_for(vi, 8080) == [(f"{POD_IP}_8080", "tls", [], True, TCP_PROXY)]
    # 9090 is not an ingress port: no service chain, port-level passthrough instead.
    assert chains_for(vi, 9090) == _passthrough_rows("DISABLE")
    ingress = next(fc for fc in vi["filter_chains"]
               if fc.get("filter_chain_match", {}).get("destination_port") == 8080)
    assert ingress["metadata"] == {"filter_metadata": {"istio": {
        "config": "/apis/networking.istio.io/v1/namespaces/default/sidecar/sidecar"}}}
    assert network_filter(ingress, TCP_PROXY)["cluster"] == "inbound|8080||"


def test_sidecar_ingress_http_route_uses_the_sidecar_as_hostname() -> None:
    vi = virtual_inbound(pod(ports=(8080,)), sidecar([
        {"port": {"number": 8080, "protocol": "HTTP", "name": "http"}, "bind": "0.0.0.0"}]))
    fc = [fc for fc in vi["filter_chains"]
          if fc.get("filter_chain_match", {}).get("destination_port") == 8080][-1]
    assert fc["name"] == "0.0.0.0_8080"
    hcm = network_filter(fc, HCM)
    assert hcm["stat_prefix"] == "inbound_0.0.0.0_8080;"
    route = hcm["route_config"]["virtual_hosts"][0]["routes"][0]
    assert route["decorator"] == {"operation": "sidecar.default:8080/*"}


def test_sidecar_ingress_capture_mode_none_binds_its_own_listener() -> None:
    out = listeners(pod(ports=(8080,)), sidecar([
        {"port": {"number": 8080, "protocol": "HTTP", "name": "http"}, "captureMode": "NONE",
         "defaultEndpoint": "127.0.0.1:8080"}]), mesh={"accessLogFile": "/dev/stdout"})
    assert list(out) == ["virtualInbound", f"{POD_IP}_8080"]
    bound = out[f"{POD_IP}_8080"]
    assert bound["address"] == {"socket_address": {"address": POD_IP, "port_value": 8080}}
    assert bound["traffic_direction"] == "INBOUND"
    assert bound["max_connections_to_accept_per_socket_event"] == 1
    assert [f["name"] for f in bound["listener_filters"]] == [TLS_INSPECTOR]  # no original_dst
    assert [summary(fc) for fc in bound["filter_chains"]] == [
        (f"{POD_IP}_8080", "tls", ALL_ISTIO, True, HCM),
        (f"{POD_IP}_8080", "raw_buffer", [], False, HCM)]
    assert bound["access_log"][0]["filter"] == {"response_flag_filter": {"flags": ["NR"]}}
    vi = out["virtualInbound"]
    assert chains_for(vi, 8080) == []  # not in the virtual listener


def test_interception_none_without_ingress_has_no_inbound_listeners() -> None:
    none = {"sidecar.istio.io/interceptionMode": "NONE"}
    assert listeners(pod(ports=(80,), annotations=none), service("app", [("http", 80, 80)])) == {}


def test_interception_none_with_ingress_has_only_bound_listeners() -> None:
    none = {"sidecar.istio.io/interceptionMode": "NONE"}
    out = listeners(pod(ports=(8080,), annotations=none), sidecar([
        {"port": {"number": 8080, "protocol": "TCP", "name": "tcp"}, "bind": "0.0.0.0",
         "defaultEndpoint": "127.0.0.1:8080"}]))
    assert list(out) == ["0.0.0.0_8080"]  # captureMode DEFAULT follows interception NONE
    assert [summary(fc) for fc in out["0.0.0.0_8080"]["filter_chains"]] == [
        ("0.0.0.0_8080", "tls", ALL_ISTIO, True, TCP_PROXY),
        ("0.0.0.0_8080", "tls", [], False, TCP_PROXY),
        ("0.0.0.0_8080", "raw_buffer", [], False, TCP_PROXY)]


def test_tproxy_virtual_inbound_is_transparent_and_keeps_the_source() -> None:
    vi = virtual_inbound(pod(annotations={"sidecar.istio.io/interceptionMode": "TPROXY"}))
    assert vi["transparent"] is True
    src = listener_filter(vi, "envoy.filters.listener.original_src")
    assert src["typed_config"]["mark"] == 1337
    assert [f["name"] for f in vi["listener_filters"]][:2] == [
        "envoy.filters.listener.original_dst", "envoy.filters.listener.original_src"]


# --- service targets -----------------------------------------------------------------------------


def test_first_service_wins_a_target_port_and_reserved_ports_are_skipped() -> None:
    vi = virtual_inbound(pod(ports=(8080, 15021)),
                         service("first", [("http", 80, 8080), ("status", 15021, 15021)]),
                         service("second", [("tcp", 90, 8080)]))
    assert chains_for(vi, 8080) == [("0.0.0.0_8080", "tls", ALL_ISTIO, True, HCM),
                                    ("0.0.0.0_8080", "raw_buffer", [], False, HCM)]
    assert chains_for(vi, 15021) == []


# --- HTTP and TCP chain contents -----------------------------------------------------------------


def test_inbound_tcp_chain() -> None:
    vi = virtual_inbound(pod(ports=(3306,)), service("db", [("tcp", 3306, 3306)]),
                         peer_auth("DISABLE"))
    fc = next(fc for fc in vi["filter_chains"]
          if fc.get("filter_chain_match", {}).get("destination_port") == 3306)
    assert [f["name"] for f in fc["filters"]] == [MX, TCP_PROXY]
    tcp = network_filter(fc, TCP_PROXY)
    assert (tcp["stat_prefix"], tcp["cluster"]) == ("inbound|3306||", "inbound|3306||")
    assert "access_log" not in tcp


def test_mongo_port_gets_the_mongo_proxy_filter() -> None:
    vi = virtual_inbound(pod(ports=(27017,)), service("db", [("mongo", 27017, 27017)]),
                         peer_auth("DISABLE"))
    fc = next(fc for fc in vi["filter_chains"]
          if fc.get("filter_chain_match", {}).get("destination_port") == 27017)
    assert [f["name"] for f in fc["filters"]] == [
        MX, "envoy.filters.network.mongo_proxy", TCP_PROXY]


def test_inbound_http_connection_manager() -> None:
    vi = virtual_inbound(pod(ports=(9080,)), service("reviews", [("http", 9080, 9080)]),
                         peer_auth("DISABLE"))
    fc = vi["filter_chains"][-1]
    assert [f["name"] for f in fc["filters"]] == [MX, HCM]
    hcm = network_filter(fc, HCM)
    expected = {
        "stat_prefix": "inbound_0.0.0.0_9080;", "use_remote_address": False,
        "forward_client_cert_details": "APPEND_FORWARD",
        "set_current_client_cert_details": {"subject": True, "dns": True, "uri": True},
        "server_name": "istio-envoy",
        "proxy_100_continue": True, "normalize_path": True,
        "path_with_escaped_slashes_action": "KEEP_UNCHANGED",
        "upgrade_configs": [{"upgrade_type": "websocket"}], "stream_idle_timeout": "0s"}
    assert {k: hcm.get(k) for k in expected} == expected
    # codec_type AUTO and server_header_transformation OVERWRITE are the enums' zero values,
    # which proto3 JSON (and Envoy's dump) leaves out.
    assert "codec_type" not in hcm and "server_header_transformation" not in hcm
    assert "http2_protocol_options" not in hcm and "access_log" not in hcm
    assert "tracing" in hcm
    assert [f["name"] for f in hcm["http_filters"]] == [
        MX, "envoy.filters.http.grpc_stats", "envoy.filters.http.fault", "envoy.filters.http.cors",
        "envoy.filters.http.router"]
    assert hcm["route_config"] == {
        "name": "inbound|9080||", "validate_clusters": False,
        "virtual_hosts": [{"name": "inbound|http|9080", "domains": ["*"], "routes": [{
            "name": "default", "match": {"prefix": "/"},
            "decorator": {"operation": "reviews.default.svc.cluster.local:9080/*"},
            "route": {"cluster": "inbound|9080||", "timeout": "0s",
                      "max_stream_duration": {"max_stream_duration": "0s",
                                              "grpc_timeout_header_max": "0s"},
                      "retry_policy": {"retry_on": "reset-before-request", "num_retries": 2}}}]}]}


@pytest.mark.parametrize(("name", "h2", "retries", "grpc_web"), [
    ("http2", True, True, False), ("grpc", True, False, False), ("grpc-web", True, False, True)])
def test_http2_and_grpc_ports(name: str, h2: bool, retries: bool, grpc_web: bool) -> None:
    vi = virtual_inbound(pod(ports=(9000,)), service("app", [(name, 9000, 9000)]),
                         peer_auth("DISABLE"))
    hcm = network_filter(vi["filter_chains"][-1], HCM)
    assert ("http2_protocol_options" in hcm) is h2
    route = hcm["route_config"]["virtual_hosts"][0]["routes"][0]["route"]
    assert ("retry_policy" in route) is retries
    assert ("envoy.filters.http.grpc_web" in [f["name"] for f in hcm["http_filters"]]) is grpc_web


@pytest.mark.parametrize(("policy", "expected"), [
    ({"attempts": 4, "retryOn": "reset,503"},
     {"retry_on": "reset,retriable-status-codes", "num_retries": 4,
      "retriable_status_codes": [503]}),
    ({}, None),
    ({"attempts": 0}, None),
])
def test_mesh_default_inbound_retry_policy(policy: dict[str, Any], expected: Any) -> None:
    vi = virtual_inbound(pod(ports=(80,)), service("app", [("http", 80, 80)]),
                         peer_auth("DISABLE"), mesh={"defaultInboundHttpRetryPolicy": policy})
    route = network_filter(vi["filter_chains"][-1], HCM)["route_config"]["virtual_hosts"][0][
        "routes"][0]["route"]
    assert route.get("retry_policy") == expected


def test_access_logs_only_with_access_log_file() -> None:
    docs = [pod(ports=(70, 80)), service("app", [("tcp", 70, 70), ("http", 80, 80)])]
    vi = virtual_inbound(*docs, mesh={"accessLogFile": "/dev/stdout"})
    assert len(vi["access_log"]) == 1
    log = vi["access_log"][0]
    assert log["name"] == "envoy.access_loggers.file"
    assert log["filter"] == {"response_flag_filter": {"flags": ["NR"]}}
    assert log["typed_config"]["path"] == "/dev/stdout"
    assert "%RESPONSE_CODE% %RESPONSE_FLAGS%" in \
        log["typed_config"]["log_format"]["text_format_source"]["inline_string"]
    for fc in vi["filter_chains"]:
        if fc["name"] == "virtualInbound-blackhole":
            assert "access_log" not in network_filter(fc, TCP_PROXY)
        elif fc["filters"][-1]["name"] == TCP_PROXY:
            assert "filter" not in network_filter(fc, TCP_PROXY)["access_log"][0]
        else:
            assert "filter" not in network_filter(fc, HCM)["access_log"][0]
    quiet = virtual_inbound(*docs, mesh={"accessLogFile": "/dev/stdout",
                                         "disableEnvoyListenerLog": True})
    assert "access_log" not in quiet


def test_without_metadata_exchange() -> None:
    vi = virtual_inbound(pod(ports=(70,)), service("app", [("tcp", 70, 70)]),
                         metadata_exchange=False)
    assert all(f["name"] != MX for fc in vi["filter_chains"] for f in fc["filters"])
    mtls = next(fc for fc in vi["filter_chains"] if "transport_socket" in fc
                and fc["filter_chain_match"].get("destination_port") == 70)
    assert mtls["transport_socket"]["typed_config"]["common_tls_context"]["alpn_protocols"] == [
        "h2", "http/1.1"]


def test_inbound_cluster_stat_name_pattern() -> None:
    vi = virtual_inbound(pod(ports=(7070,)), service("db", [("tcp-db", 70, 7070)]),
                         peer_auth("DISABLE"),
                         mesh={"inboundClusterStatName":
                               "inbound|%SERVICE_PORT%|%SERVICE_PORT_NAME%|%SERVICE%"})
    fc = next(fc for fc in vi["filter_chains"]
          if fc.get("filter_chain_match", {}).get("destination_port") == 7070)
    tcp = network_filter(fc, TCP_PROXY)
    assert tcp["stat_prefix"] == "inbound|70|tcp-db|db.default"
    assert tcp["cluster"] == "inbound|7070||"


# --- §10.3: the reviews pod, and the real Envoy -------------------------------------------------

REVIEWS = [pod("reviews-v1", labels={"app": "reviews", "version": "v1"}, ports=(9080,)),
           service("reviews", [("http", 9080, 9080)], selector={"app": "reviews"})]


def test_worked_example_reviews_server_side() -> None:
    vi = virtual_inbound(*REVIEWS, proxy="reviews-v1.default")
    assert [fc["name"] for fc in vi["filter_chains"]] == [
        "virtualInbound-blackhole", "virtualInbound-catchall-http", "virtualInbound-catchall-http",
        "virtualInbound", "virtualInbound", "virtualInbound", "0.0.0.0_9080", "0.0.0.0_9080"]
    mtls, plain = vi["filter_chains"][-2:]
    assert mtls["filter_chain_match"] == {"destination_port": 9080, "transport_protocol": "tls",
                                          "application_protocols": ALL_ISTIO}
    assert mtls["transport_socket"]["typed_config"]["common_tls_context"]["alpn_protocols"] == [
        "h2", "http/1.1"]
    assert plain["filter_chain_match"] == {"destination_port": 9080,
                                           "transport_protocol": "raw_buffer"}
    for fc in (mtls, plain):
        assert [f["name"] for f in fc["filters"]] == [MX, HCM]
        rc = network_filter(fc, HCM)["route_config"]
        assert rc["name"] == "inbound|9080||"
        assert rc["virtual_hosts"][0]["name"] == "inbound|http|9080"
        assert rc["virtual_hosts"][0]["routes"][0]["route"]["cluster"] == "inbound|9080||"
    assert listener_filter(vi, TLS_INSPECTOR)["filter_disabled"] == port_range(15006)
    assert listener_filter(vi, HTTP_INSPECTOR)["filter_disabled"] == port_range(9080, 15006)


@pytest.mark.envoy
def test_virtual_inbound_loads_into_real_envoy() -> None:
    from meshlens.lab.envoy import validate_config_dump

    docs = [*namespaces(), pod(ports=(70, 80, 81, 9000)),
            service("app", [("tcp", 70, 70), ("http", 80, 80), ("auto", 81, 81),
                            ("grpc", 9000, 9000)]),
            peer_auth("PERMISSIVE", ns="default", selector={"app": "app"},
                      port_level={9100: "STRICT", 70: "STRICT"}),
            sidecar([{"port": {"number": 8080, "protocol": "HTTP", "name": "http"},
                      "captureMode": "NONE", "defaultEndpoint": "127.0.0.1:8080"},
                     {"port": {"number": 81, "name": "auto"}, "defaultEndpoint": "127.0.0.1:81"}])]
    for with_sidecar in (False, True):
        text = yaml.safe_dump_all(docs if with_sidecar else docs[:-1], sort_keys=False)
        mesh = load_string(text, mesh_config=_mesh({"accessLogFile": "/dev/stdout"})).mesh
        p = resolve_proxy(mesh.registry.workloads, "app.default")
        result = compile_proxy(mesh, p)
        mc = mesh.mesh_config
        ctx = ClusterContext(mesh, p, result.scope, result.options,
                             PolicyContext(mc, result.options, mc.doc, p.workload.locality))
        built = build_inbound_listeners(ctx)
        dump = to_dict(config_dump(result))
        dump["configs"] = [c for c in dump["configs"]
                           if not c["@type"].endswith(("ListenersConfigDump", "RoutesConfigDump",
                                                       "ScopedRoutesConfigDump"))]
        dump["configs"].append({
            "@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
            "dynamic_listeners": [{"name": b.message.name,
                                   "active_state": {"listener": {
                                       "@type": LISTENER_TYPE,
                                       **to_dict(b.message)}}} for b in built]})
        verdict = validate_config_dump(dump)
        assert verdict.ok, f"Envoy rejected the inbound listeners: {verdict.error}"
        assert any(c.startswith("listener virtualInbound:") for c in verdict.changes)
        assert [b.message.name for b in built] == (
            ["virtualInbound", f"{POD_IP}_8080"] if with_sidecar else ["virtualInbound"])
