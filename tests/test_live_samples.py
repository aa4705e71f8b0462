"""Istio's samples, given as-is (no Namespace objects), compile as an injected mesh for every pod
(a Gateway API Gateway's NAME-istio pods compile as routers).

grpc-echo is left out: its pods use the `grpc-agent` injection template (proxyless gRPC, no
Envoy), which meshlens does not model.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from meshlens.diagnostics import Level
from meshlens.model.proxy import infer_proxy_type
from meshlens.pipeline import compile_for, load

SAMPLES = Path(__file__).resolve().parent / "conformance" / "samples"
BOOKINFO = [SAMPLES / "bookinfo" / "platform" / "kube" / "bookinfo.yaml", SAMPLES / "bookinfo" / "networking"]
CASES = {
    "bookinfo": BOOKINFO,
    "helloworld": [SAMPLES / "helloworld"],
    "httpbin": [SAMPLES / "httpbin"],
    "curl": [SAMPLES / "curl"],
    "sleep": [SAMPLES / "sleep"],
    "tcp-echo": [SAMPLES / "tcp-echo"],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_sample_compiles_injected_for_each_pod(name: str) -> None:
    loaded = load([str(p) for p in CASES[name]])
    assert not loaded.errors
    errors = [d.format() for d in loaded.diagnostics if d.level == Level.ERROR]
    assert errors == []
    pods = loaded.mesh.registry.workloads
    assert pods, "the sample has pods"
    for w in pods:
        # a Gateway API Gateway's NAME-istio pods run the proxy as a router, not injected
        router = infer_proxy_type(w) == "router"
        assert w.injected or router, f"{w.key} is not injected"
        result = compile_for(loaded, w.key)
        assert not [d for d in result.diagnostics if d.level == Level.ERROR], w.key
        assert not any("has no sidecar" in d.message for d in result.diagnostics), w.key
        assert result.clusters and result.listeners, w.key
    namespaces = {w.namespace for w in pods}
    assert any(d.code == "ML0304" and all(ns in d.message for ns in namespaces)
               for d in loaded.diagnostics)


def test_bookinfo_endpoints_carry_istio_tls_mode() -> None:
    loaded = load([str(p) for p in BOOKINFO])
    result = compile_for(loaded, "deploy/productpage-v1")
    cla = next(c for c in result.endpoints
               if c.cluster_name == "outbound|9080|v1|reviews.default.svc.cluster.local")
    lbs = [lb for loc in cla.endpoints for lb in loc.lb_endpoints]
    assert len(lbs) == 1
    tls = lbs[0].metadata.filter_metadata["envoy.transport_socket_match"].fields["tlsMode"]
    assert tls.string_value == "istio"
