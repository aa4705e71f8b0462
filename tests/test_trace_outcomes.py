"""trace: the response, not only the route (issue 14): status and flags, faults, retries and
timeouts, DNS like a pod, inbound calls with each peer TLS mode, fixes that name the cause, exit
codes, and the JSON Schema every trace output follows."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from meshlens.model.mesh import MeshConfig
from meshlens.pipeline import compile_for, load, load_string, server_compiler
from meshlens.simulate import Request, Trace, simulate

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "schemas" / "trace.schema.json").read_text())
SEED_PATH = "tests/cases/seed-llm-server-canary/manifests.yaml"
SEED = (ROOT / SEED_PATH).read_text()
BOOKINFO = ROOT / "tests" / "conformance" / "samples" / "bookinfo"
NS_INJECT = """
---
apiVersion: v1
kind: Namespace
metadata: {name: default, labels: {istio-injection: enabled}}
"""


def check(t: Trace) -> Trace:
    """Every trace output follows schemas/trace.schema.json."""
    jsonschema.validate(json.loads(json.dumps(t.to_dict())), SCHEMA)
    return t


def trace(text: str, url: str, *headers: str, proxy: str = "deploy/client.mesh-demo",
          mesh: MeshConfig | None = None, **opts: Any) -> Trace:
    loaded = load_string(text, "t.yaml", mesh_config=mesh)
    result = compile_for(loaded, proxy)
    return check(simulate(result, Request.parse(url, headers=list(headers), **opts),
                          server=server_compiler(loaded)))


@cache
def _bookinfo(*files: str) -> Any:
    paths = [str(BOOKINFO / "platform" / "kube" / "bookinfo.yaml"),
             str(BOOKINFO / "networking" / "destination-rule-all.yaml"),
             *(str(BOOKINFO / "networking" / f) for f in files)]
    return load(paths)


def bookinfo(url: str, *headers: str, files: tuple[str, ...] = (), proxy: str = "deploy/reviews-v2.default",
             **opts: Any) -> Trace:
    loaded = _bookinfo(*files)
    result = compile_for(loaded, proxy)
    return check(simulate(result, Request.parse(url, headers=list(headers), **opts),
                          server=server_compiler(loaded)))


# -- faults ----------------------------------------------------------------------------------------

def test_bookinfo_abort_gives_500_FI_for_jason_only() -> None:
    t = bookinfo("http://ratings:9080/ratings/0", "end-user: jason",
                 files=("virtual-service-ratings-test-abort.yaml",))
    assert (t.verdict, t.status, t.flags) == ("FI", 500, ["FI"])
    assert t.fix is not None and t.fix["yaml_path"] == "{.spec.http[0].fault}"
    assert t.fix["file"].endswith("virtual-service-ratings-test-abort.yaml") and t.fix["line"]
    other = bookinfo("http://ratings:9080/ratings/0", files=("virtual-service-ratings-test-abort.yaml",))
    assert (other.verdict, other.status, other.flags) == ("ok", 200, [])


def test_bookinfo_delay_gives_DI_and_200_not_UT() -> None:
    t = bookinfo("http://ratings:9080/ratings/0", "end-user: jason",
                 files=("virtual-service-ratings-test-delay.yaml",))
    assert (t.verdict, t.status, t.flags) == ("DI", 200, ["DI"])
    assert any(x.layer == "fault" and x.detail["delay"]["fixed_delay"] == "7s" for x in t.layers)


FAULTY = SEED.replace("""  - name: default-90-10                 # everyone else: 90% v1, 10% v2
""", """  - name: default-90-10
    fault:
      abort: {httpStatus: 503, percentage: {value: 25}}
      delay: {fixedDelay: 2s, percentage: {value: 100}}
    timeout: 1s
""", 1)


def test_fault_percentages_give_both_outcomes_and_the_delay_does_not_count_against_the_timeout() -> None:
    assert FAULTY != SEED
    t = trace(FAULTY, "http://llm-server.mesh-demo/")
    probs = {(o.verdict, o.status, tuple(o.flags)): o.probability for o in t.outcomes}
    # 2s delay > 1s route timeout, yet no UT: the timeout starts at the router
    assert probs == {("FI", 503, ("DI", "FI")): 0.25, ("DI", 200, ("DI",)): 0.75}
    assert t.verdict == "DI" and t.status == 200


# -- retries and timeouts --------------------------------------------------------------------------

RETRY = SEED.replace("""  - name: default-90-10                 # everyone else: 90% v1, 10% v2
""", """  - name: default-90-10
    retries: {attempts: 3, retryOn: 5xx, perTryTimeout: 500ms}
    timeout: 4s
""", 1)


def test_upstream_503_is_retried_then_URX_with_the_attempt_count() -> None:
    t = trace(RETRY, "http://llm-server.mesh-demo/", upstream_status=503)
    assert (t.verdict, t.status, t.flags, t.attempts) == ("URX", 503, ["URX"], 4)
    assert t.fix is not None and t.fix["yaml_path"] == "{.spec.http[1].retries}"
    up = next(x for x in t.layers if x.layer == "upstream")
    assert [a["result"] for a in up.detail["attempts"]] == ["503"] * 4


def test_istio_default_retry_policy_does_not_retry_503() -> None:
    t = trace(SEED, "http://llm-server.mesh-demo/", "x-canary: v2", upstream_status=503)
    assert (t.verdict, t.status, t.flags, t.attempts) == ("ok", 503, [], 1)
    assert "not retried" in t.reason


def test_per_try_timeout_and_route_timeout() -> None:
    t = trace(RETRY, "http://llm-server.mesh-demo/", upstream_delay=0.7)
    assert (t.verdict, t.status) == ("UT", 504) and "UT" in t.flags and t.attempts == 4
    slow = RETRY.replace("perTryTimeout: 500ms", "perTryTimeout: 3s")
    t = trace(slow, "http://llm-server.mesh-demo/", upstream_delay=5)
    assert (t.verdict, t.status, t.flags, t.attempts) == ("UT", 504, ["UT"], 2)  # 3s + 1s of the second try
    ok = trace(slow, "http://llm-server.mesh-demo/", upstream_delay=0.2)
    assert (ok.verdict, ok.status) == ("ok", 200)


NO_SIDECAR = "labels: {app: llm-server, version: v2, sidecar.istio.io/inject: \"false\"}"


def test_upstream_reset_without_and_with_retries() -> None:
    bare = SEED.replace("labels: {app: llm-server, version: v2}", NO_SIDECAR).replace(
        "tls: {mode: ISTIO_MUTUAL}", "tls: {mode: DISABLE}")
    assert bare != SEED
    t = trace(bare, "http://llm-server.mesh-demo/", "x-canary: v2", upstream_reset=True)
    assert (t.verdict, t.status, t.flags) == ("UC", 503, ["UC"])
    bare_retry = RETRY.replace("labels: {app: llm-server, version: v2}", NO_SIDECAR).replace(
        "labels: {app: llm-server, version: v1}", NO_SIDECAR.replace("v2", "v1")).replace(
        "tls: {mode: ISTIO_MUTUAL}", "tls: {mode: DISABLE}")
    t = trace(bare_retry, "http://llm-server.mesh-demo/", upstream_reset=True)
    assert (t.verdict, t.flags, t.attempts) == ("URX", ["UC", "URX"], 4)
    # behind the app's own sidecar the reset becomes that sidecar's 503 (the lab measured it)
    t = trace(SEED, "http://llm-server.mesh-demo/", "x-canary: v2", upstream_reset=True)
    assert (t.verdict, t.status, t.flags) == ("ok", 503, [])


def test_route_layer_shows_rewrites_headers_mirrors_redirects_and_direct_responses() -> None:
    text = SEED.replace("""  - name: default-90-10                 # everyone else: 90% v1, 10% v2
""", """  - name: moved
    match: [{uri: {prefix: /old}}]
    redirect: {uri: /new, redirectCode: 308}
  - name: teapot
    match: [{uri: {exact: /tea}}]
    directResponse: {status: 418, body: {string: short and stout}}
  - name: api
    match: [{uri: {prefix: /api/}}]
    rewrite: {uri: /v2/}
    headers: {request: {set: {x-from: mesh}}}
    mirror: {host: llm-server, subset: v2}
    mirrorPercentage: {value: 10}
    route: [{destination: {host: llm-server, subset: v1}}]
  - name: default-90-10
""", 1)
    t = trace(text, "http://llm-server.mesh-demo/old/x")
    assert (t.verdict, t.status) == ("ok", 308) and "/new" in t.reason
    t = trace(text, "http://llm-server.mesh-demo/tea")
    assert (t.status, t.layers[2].detail["direct_response"]["body"]) == (418, "short and stout")
    t = trace(text, "http://llm-server.mesh-demo/api/models")
    d = t.layers[2].detail
    assert d["path_rewrite"] == "/api/models → /v2/models"
    assert d["request_headers_set"] == {"x-from": "mesh"}
    assert d["mirrors"][0]["cluster"].startswith("outbound|80|v2|") and d["mirrors"][0]["share"] == 10


# -- DNS -------------------------------------------------------------------------------------------

def test_typo_and_undefined_cluster_names_are_NXDOMAIN() -> None:
    for host in ("review", "reviews.nosuch.svc.cluster.local"):
        t = bookinfo(f"http://{host}:9080/", proxy="deploy/productpage-v1.default")
        assert t.verdict == "NXDOMAIN" and t.clusters == [] and t.status is None
    t = bookinfo("http://review:9080/", proxy="deploy/productpage-v1.default")
    assert "did you mean reviews.default.svc.cluster.local" in t.reason
    assert t.layers[0].detail["dns_queries"][0] == "review.default.svc.cluster.local"
    ok = bookinfo("http://reviews:9080/", proxy="deploy/productpage-v1.default")
    assert ok.verdict == "ok"
    outside = bookinfo("http://api.example.org/", proxy="deploy/productpage-v1.default")
    assert outside.verdict == "ok" and outside.clusters[0]["name"] == "PassthroughCluster"


SE_LOCAL = """
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: legacy, namespace: mesh-demo}
spec:
  hosts: [legacy.corp.cluster.local]
  ports: [{name: http, number: 80, protocol: HTTP}]
  resolution: DNS
  endpoints: [{address: legacy.example.com}]
"""


def test_dns_proxy_answers_serviceentry_hosts_with_auto_allocated_addresses() -> None:
    t = trace(SEED + SE_LOCAL, "http://legacy.corp.cluster.local/")
    assert t.verdict == "NXDOMAIN"  # Kubernetes DNS does not know ServiceEntries
    on = MeshConfig.from_document(__import__("meshlens.source", fromlist=["RawDocument"]).RawDocument(
        {"defaultConfig": {"proxyMetadata": {"ISTIO_META_DNS_CAPTURE": "true",
                                             "ISTIO_META_DNS_AUTO_ALLOCATE": "true"}}},
        __import__("meshlens.source", fromlist=["SourceSpan"]).SourceSpan("mesh.yaml", 1, 1)))
    t = trace(SEED + SE_LOCAL, "http://legacy.corp.cluster.local/", mesh=on)
    assert t.verdict == "ok" and t.layers[0].detail["dns_proxy"] is True
    assert t.layers[0].detail["original_destination"].startswith("240.240.")
    assert t.clusters[0]["name"] == "outbound|80||legacy.corp.cluster.local"


# -- inbound ---------------------------------------------------------------------------------------

def pa(mode: str, namespace: str = "mesh-demo") -> str:
    """A namespace-wide PeerAuthentication document."""
    return (f"\n---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
            f"metadata: {{name: default, namespace: {namespace}}}\nspec: {{mtls: {{mode: {mode}}}}}\n")


SERVER = "deploy/llm-server-v1.mesh-demo"


@pytest.mark.parametrize(("mode", "peer", "verdict"), [
    ("STRICT", "mtls", "ok"), ("STRICT", "plaintext", "NR"), ("STRICT", "tls", "UF"),
    ("PERMISSIVE", "mtls", "ok"), ("PERMISSIVE", "plaintext", "ok"),
    ("DISABLE", "plaintext", "ok"), ("DISABLE", "mtls", "DPE"),
])
def test_inbound_calls_with_each_peer_mode(mode: str, peer: str, verdict: str) -> None:
    text = SEED + pa(mode)
    t = trace(text, "http://llm-server.mesh-demo/", proxy=SERVER, inbound=True, peer=peer)
    assert t.verdict == verdict, t.reason
    if verdict == "ok":
        assert t.status == 200 and t.layers[-1].detail["inbound_cluster"] == "inbound|8080||"
    else:
        assert t.fix is not None and t.fix["resource"] == "PeerAuthentication mesh-demo/default"
        assert t.fix["line"]
    if verdict == "NR":
        assert any(x.layer == "inbound" and not x.ok for x in t.layers) and "filter chain" in t.reason
    if verdict == "UF":
        assert t.reason.startswith(("TLS", "mTLS"))


def test_inbound_contract_no_listener_and_loop() -> None:
    t = trace(SEED, "http://10.9.9.9:8080/", proxy=SERVER, inbound=True)
    assert t.verdict == "NR" and [x.layer for x in t.layers] == ["capture"]
    assert t.verdict == "NR"


def test_plaintext_to_strict_fix_names_the_destination_rule_and_the_peer_authentication() -> None:
    text = SEED.replace("tls: {mode: ISTIO_MUTUAL}", "tls: {mode: DISABLE}") + pa("STRICT")
    t = trace(text, "http://llm-server.mesh-demo/", "x-canary: v2")
    assert t.verdict == "UC" and t.status == 503
    resources = [f["resource"] for f in t.fixes]
    assert resources == ["DestinationRule mesh-demo/llm-server", "PeerAuthentication mesh-demo/default"]
    assert all(f["file"] and f["line"] for f in t.fixes)
    assert t.fixes[0]["yaml_path"].endswith(".tls.mode}")


# -- CLI: exit codes and JSON ----------------------------------------------------------------------

def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "meshlens", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def test_cli_exit_codes_and_schema() -> None:
    bi = ["-f", str(BOOKINFO / "platform" / "kube" / "bookinfo.yaml")]
    r = run("trace", "deploy/productpage-v1", "http://review:9080/", *bi, "-o", "json")
    assert r.returncode == 1, r.stderr
    data = json.loads(r.stdout)
    jsonschema.validate(data, SCHEMA)
    assert data["verdict"] == "NXDOMAIN"
    assert run("trace", "deploy/productpage-v1", "http://review:9080/", *bi, "--exit-zero").returncode == 0
    ok = run("trace", "deploy/productpage-v1", "http://reviews:9080/", *bi, "-o", "json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["status"] == 200
    jsonschema.validate(json.loads(ok.stdout), SCHEMA)
    r = run("trace", "deploy/productpage-v1", "http://reviews:9080/", *bi, "--upstream-status", "503",
            "--upstream-delay", "20ms", "-o", "json")
    jsonschema.validate(json.loads(r.stdout), SCHEMA)
    assert run("trace", "deploy/productpage-v1", "http://reviews:9080/", *bi, "--peer", "bogus",
               "--inbound").returncode == 2
    assert run("trace", "deploy/productpage-v1", "http://reviews:9080/", *bi,
               "--upstream-delay", "soon").returncode == 2
