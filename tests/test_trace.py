"""trace: one request through the compiled config, and the verdict Envoy would give (issue 5)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from meshlens.model.mesh import MeshConfig
from meshlens.pipeline import compile_for, load_string, server_compiler
from meshlens.simulate import Request, Trace, simulate
from meshlens.source import RawDocument, SourceSpan
from tests.test_trace_outcomes import check, pa

ROOT = Path(__file__).resolve().parents[1]
SEED_PATH = "tests/cases/seed-llm-server-canary/manifests.yaml"
SEED = (ROOT / SEED_PATH).read_text()
HOST = "llm-server.mesh-demo.svc.cluster.local"


def trace(text: str, url: str, *headers: str, proxy: str = "deploy/client.mesh-demo",
          mesh: MeshConfig | None = None) -> Trace:
    loaded = load_string(text, "t.yaml", mesh_config=mesh)
    result = compile_for(loaded, proxy)
    return check(simulate(result, Request.parse(url, headers=list(headers)), server=server_compiler(loaded)))


def layers(t: Trace) -> list[str]:
    return [x.layer for x in t.layers]


def test_canary_header_goes_to_v2() -> None:
    t = trace(SEED, "http://llm-server.mesh-demo/", "x-canary: v2")
    assert t.verdict == "ok"
    assert [c["name"] for c in t.clusters] == [f"outbound|80|v2|{HOST}"]
    assert layers(t) == ["capture", "listener", "route", "cluster", "endpoint", "inbound"]
    assert t.layers[1].name == "0.0.0.0_80"
    assert {e["port"] for e in t.endpoints} == {8080}  # layer 4: the targetPort


def test_default_split_is_90_10() -> None:
    t = trace(SEED, "http://llm-server.mesh-demo/")
    assert t.verdict == "ok"
    assert [(c["name"], c["share"]) for c in t.clusters] == [
        (f"outbound|80|v1|{HOST}", 90.0), (f"outbound|80|v2|{HOST}", 10.0)]


def test_route_to_an_undefined_subset_is_NC() -> None:
    text = SEED.replace("subset: v2\n        port: {number: 80}\n  - name: default",
                        "subset: v9\n        port: {number: 80}\n  - name: default")
    assert "subset: v9" in text
    t = trace(text, "http://llm-server.mesh-demo/", "x-canary: v2")
    assert t.verdict == "NC"
    assert "v9" in t.reason
    assert t.fix and t.fix["resource"] == "VirtualService mesh-demo/llm-server" and t.fix["line"]


def test_subset_without_pods_is_UH() -> None:
    text = SEED.replace("labels: {version: v2}\n    trafficPolicy:", "labels: {version: v3}\n    trafficPolicy:")
    assert "version: v3" in text
    t = trace(text, "http://llm-server.mesh-demo/", "x-canary: v2")
    assert t.verdict == "UH"
    assert t.layers[-1].layer == "endpoint" and not t.layers[-1].ok


def test_a_failing_weighted_destination_is_partial() -> None:
    text = SEED.replace("labels: {version: v2}\n    trafficPolicy:", "labels: {version: v3}\n    trafficPolicy:")
    t = trace(text, "http://llm-server.mesh-demo/")
    assert t.verdict == "partial:UH" and "subset 'v2' selects no pod" in t.reason
    assert [c["share"] for c in t.clusters] == [90.0, 10.0] and t.status == 200


def test_registry_only_unknown_host_is_blackhole() -> None:
    mesh = MeshConfig.from_document(RawDocument({"outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}},
                                                SourceSpan("mesh.yaml", 1, 1)))
    t = trace(SEED, "http://api.unknown.example/", mesh=mesh)
    assert t.verdict == "BlackHole"
    t2 = trace(SEED, "tcp://api.unknown.example:5432", mesh=mesh)
    assert t2.verdict == "BlackHole"
    t3 = trace(SEED, "http://api.unknown.example/")
    assert t3.verdict == "ok" and t3.clusters[0]["name"] == "PassthroughCluster"


STRICT = pa("STRICT")


def test_plaintext_toward_strict_is_flagged_at_the_inbound_layer() -> None:
    text = SEED.replace("tls: {mode: ISTIO_MUTUAL}", "tls: {mode: DISABLE}") + STRICT
    t = trace(text, "http://llm-server.mesh-demo/", "x-canary: v2")
    assert t.verdict == "UC"
    assert t.layers[-1].layer == "inbound" and not t.layers[-1].ok
    ok = trace(SEED + STRICT, "http://llm-server.mesh-demo/", "x-canary: v2")
    assert ok.verdict == "ok"


def test_tcp_to_a_vip_goes_through_the_vip_port_listener() -> None:
    text = SEED + """
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: mesh-demo}
spec:
  clusterIP: 10.96.50.5
  selector: {app: db}
  ports: [{name: tcp, port: 5432}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: db, namespace: mesh-demo}
spec:
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: postgres, ports: [{containerPort: 5432}]}]}
"""
    t = trace(text, "tcp://db:5432")
    assert t.verdict == "ok", t.reason
    assert t.layers[1].name == "10.96.50.5_5432"
    assert t.clusters[0]["name"] == "outbound|5432||db.mesh-demo.svc.cluster.local"


def test_not_captured_loopback() -> None:
    t = trace(SEED, "http://127.0.0.1:8080/")
    assert t.layers[0].name == "not captured" and t.verdict == "ok"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "meshlens", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def test_cli_json_and_mermaid() -> None:
    r = run("trace", "deploy/client.mesh-demo", "http://llm-server.mesh-demo/", "-H", "x-canary: v2",
            "-f", SEED_PATH, "-o", "json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert {"layers", "clusters", "endpoints", "verdict", "reason"} <= set(data)
    assert [x["layer"] for x in data["layers"]][:4] == ["capture", "listener", "route", "cluster"]
    assert all({"layer", "name", "port", "detail"} <= set(x) for x in data["layers"])
    m = run("trace", "deploy/client.mesh-demo", "http://llm-server.mesh-demo/", "-f", SEED_PATH,
            "-o", "mermaid")
    assert m.stdout.startswith("flowchart LR") and "outbound|80|v1" in m.stdout
    bad = run("trace", "deploy/client.mesh-demo", "ftp://x/", "-f", SEED_PATH)
    assert bad.returncode == 2 and "unsupported scheme" in bad.stderr


def test_passthrough_to_a_port_the_service_lacks_is_UF() -> None:
    t = trace(SEED, "http://llm-server.mesh-demo:8080/")
    assert t.verdict == "UF" and "no port 8080" in t.reason
    assert t.clusters[0]["name"] == "PassthroughCluster"
