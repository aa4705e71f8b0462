"""The build cache (compiler/cache.py): shared builds give the output of independent builds.

Three things are pinned:

* identity: compiling every proxy of a mesh through one shared cache gives, for each proxy,
  byte-identical config and the same provenance (``explain`` text) as compiling it alone with
  nothing shared (``BuildCache(share=False)``);
* keys: for each key component, two proxies (or option sets) that differ only there get the
  output they would get alone, and the outputs differ (so a key missing the component fails);
* immutability: no shared message changes after it was inserted (``BuildCache(check=True)``
  records its bytes; the run re-serializes them at the end), including through analyze.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshlens.analyze import run as analyze_run
from meshlens.analyze.inputs import default_proxies
from meshlens.compiler import BuildCache, CompileOptions, CompileResult
from meshlens.emit import config_dump_json
from meshlens.model.proxy import Proxy
from meshlens.pipeline import Loaded, compile_for, load, load_string
from test_cds_cases import (FOO, client, deployment, destination_rule, namespace, outbound,
                            policy_dr, service_entry)

ROOT = Path(__file__).parent.parent
SAMPLES = ROOT / "tests" / "conformance" / "samples"


def explained(r: CompileResult) -> dict[Any, Any]:
    """Every recorded origin as ``explain`` prints it, plus the dropped blocks."""
    return {"fields": {k: {p: o.describe() for p, o in v.items()} for k, v in r.provenance.fields.items()},
            "dropped": {k: [(d.block.path, d.reason) for d in v] for k, v in r.provenance.dropped.items()}}


def shared_vs_alone(loaded: Loaded, proxies: list[str], options: list[CompileOptions] | None = None
                    ) -> list[CompileResult]:
    """Compile ``proxies`` through one checked cache, then each alone without any sharing
    (not even within the proxy); assert they agree."""
    loaded.cache = BuildCache(check=True)
    opts = options or [loaded.options] * len(proxies)
    shared = [compile_for(loaded, p, options=o) for p, o in zip(proxies, opts, strict=True)]
    texts = [config_dump_json(r) for r in shared]
    for p, o, r, text in zip(proxies, opts, shared, texts, strict=True):
        alone = compile_for(loaded, p, options=o, cache=BuildCache(share=False))
        assert text == config_dump_json(alone), f"{p}: shared build differs from a build alone"
        assert explained(r) == explained(alone), f"{p}: provenance differs from a build alone"
    assert loaded.cache.verify() == []
    assert [config_dump_json(r) for r in shared] == texts  # nothing changed them afterwards
    return shared


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def mesh(*docs: dict[str, Any], mesh_config: Any = None) -> Loaded:
    text = yaml.dump_all(list(docs), Dumper=_NoAliases, sort_keys=False)
    return load_string(text, mesh_config=mesh_config, admission=False)


def located(name: str, ns: str, locality: str, **labels: str) -> dict[str, Any]:
    return deployment(name, ns, labels={"app": name, "istio-locality": locality, **labels})


def dns_foo(**spec: Any) -> dict[str, Any]:
    return service_entry(resolution="DNS", endpoints=[
        {"address": "a.example.org", "locality": "r1/z1/s1", "labels": {"tier": "gold"}},
        {"address": "b.example.org", "locality": "r2/z1/s1", "labels": {"tier": "iron"}}], **spec)


def cluster_text(r: CompileResult, name: str) -> bytes:
    c = r.cluster(name)
    assert c is not None
    return c.SerializeToString(deterministic=True)


def assignment(r: CompileResult, name: str) -> bytes:
    return next(e for e in r.endpoints if e.cluster_name == name).SerializeToString(deterministic=True)


# --- identity on whole meshes ----------------------------------------------------------------


def test_samples_every_proxy_shared_equals_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    rel = SAMPLES.relative_to(ROOT)
    loaded = load([str(rel / "bookinfo" / "platform" / "kube" / "bookinfo.yaml"),
                   str(rel / "bookinfo" / "platform" / "kube" / "bookinfo-versions.yaml"),
                   str(rel / "bookinfo" / "networking" / "destination-rule-all-mtls.yaml"),
                   str(rel / "bookinfo" / "networking" / "virtual-service-reviews-50-v3.yaml"),
                   str(rel / "bookinfo" / "networking" / "bookinfo-gateway.yaml"),
                   str(rel / "istio-system"), str(rel / "httpbin" / "httpbin.yaml"),
                   str(rel / "curl"), str(rel / "tcp-echo" / "tcp-echo-all-v1.yaml"),
                   str(rel / "helloworld" / "helloworld.yaml")])
    assert not loaded.errors
    proxies = list(default_proxies(loaded))
    assert len(proxies) >= 10
    shared_vs_alone(loaded, proxies)
    hits, misses = loaded.cache.stats["clusters"]
    assert hits > misses  # the proxies really shared clusters


def test_generated_mesh_every_proxy_shared_equals_alone(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "bench" / "gen.py"), "--services", "30",
                    "--out", str(tmp_path)], check=True, capture_output=True)
    loaded = load([str(tmp_path)])
    proxies = list(default_proxies(loaded))
    assert len(proxies) > 30
    shared_vs_alone(loaded, proxies)
    assert loaded.cache.stats["eds"][0] > loaded.cache.stats["eds"][1]


def test_analyze_leaves_shared_messages_unchanged(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "bench" / "gen.py"), "--services", "12",
                    "--out", str(tmp_path)], check=True, capture_output=True)
    loaded = load([str(tmp_path)])
    loaded.cache = BuildCache(check=True)
    analyze_run(loaded)
    assert loaded.cache.stats["clusters"][0] > 0
    assert loaded.cache.verify() == []


def test_envoy_filter_patches_a_copy_not_the_shared_cluster() -> None:
    patch = {"apiVersion": "networking.istio.io/v1alpha3", "kind": "EnvoyFilter",
             "metadata": {"name": "cb", "namespace": "a"},
             "spec": {"configPatches": [{"applyTo": "CLUSTER", "match": {"context": "SIDECAR_OUTBOUND"},
                                         "patch": {"operation": "MERGE",
                                                   "value": {"connect_timeout": "7s"}}}]}}
    loaded = mesh(namespace("a"), namespace("b"), namespace("bar"), client("a"), client("b"),
                  service_entry(), patch)
    a, b = shared_vs_alone(loaded, ["deploy/client.a", "deploy/client.b"])
    assert cluster_text(a, outbound(8080)) != cluster_text(b, outbound(8080))


# --- one test per key component --------------------------------------------------------------


def test_key_rule_content_namespace_local_vs_exported() -> None:
    """RuleKey: a namespace-local rule and the exported one for the same host differ."""
    loaded = mesh(namespace("a"), namespace("b"), namespace("bar"), client("a"), client("b"),
                  service_entry(), policy_dr(connectionPool={"tcp": {"maxConnections": 20}}),
                  destination_rule(FOO, "a", "local", trafficPolicy={
                      "connectionPool": {"tcp": {"maxConnections": 10}}}))
    a, b = shared_vs_alone(loaded, ["deploy/client.a", "deploy/client.b"])
    assert cluster_text(a, outbound(8080)) != cluster_text(b, outbound(8080))


def test_key_rule_content_not_identity() -> None:
    """Equal rules reached through two indexes (namespace-local in ``bar``, exported elsewhere)
    are one key: the clusters are built once."""
    loaded = mesh(namespace("a"), namespace("bar"), client("a"), client("bar"), service_entry(),
                  policy_dr(connectionPool={"tcp": {"maxConnections": 20}}))
    shared_vs_alone(loaded, ["deploy/client.a", "deploy/client.bar"])
    hits, misses = loaded.cache.stats["clusters"]
    foo = [k for k in loaded.cache._sections["clusters"] if k.service[0] == FOO]
    assert len(foo) == 1 and hits >= 1


def test_key_rule_subsets() -> None:
    """RuleKey.sources (content): rules that differ only in a subset's labels give other
    subset endpoints."""
    loaded = mesh(namespace("a"), namespace("b"), namespace("bar"), client("a"), client("b"),
                  service_entry(),
                  destination_rule(FOO, "a", "a", subsets=[{"name": "v1", "labels": {"foo": "bar"}}]),
                  destination_rule(FOO, "b", "b", subsets=[{"name": "v1", "labels": {"foo": "baz"}}]))
    a, b = shared_vs_alone(loaded, ["deploy/client.a", "deploy/client.b"])
    name = "outbound|8080|v1|" + FOO
    assert assignment(a, name) != assignment(b, name)


def test_key_rule_selector() -> None:
    """RuleKey.sources: a rule with a workloadSelector reaches the selected workload only
    (and honours credentialName there)."""
    loaded = mesh(namespace("a"), namespace("bar"), namespace("default"),
                  deployment("one", "a", labels={"app": "one"}),
                  deployment("two", "a", labels={"app": "two"}),
                  service_entry(),
                  destination_rule(FOO, "a", "sel", workloadSelector={"matchLabels": {"app": "one"}},
                                   trafficPolicy={"tls": {"mode": "SIMPLE", "credentialName": "c"}}))
    x, y = shared_vs_alone(loaded, ["deploy/one.a", "deploy/two.a"])
    assert cluster_text(x, outbound(8080)) != cluster_text(y, outbound(8080))


def test_key_proxy_router_vs_sidecar(monkeypatch: pytest.MonkeyPatch) -> None:
    """ProxyKey.router: a gateway gets no downstream-protocol clusters for auto ports."""
    monkeypatch.chdir(ROOT)
    rel = SAMPLES.relative_to(ROOT)
    loaded = load([str(rel / "istio-system"), str(rel / "httpbin" / "httpbin.yaml"),
                   str(rel / "curl")])
    a, b = shared_vs_alone(loaded, ["deploy/istio-ingressgateway.istio-system",
                                    "deploy/curl.default"])
    assert a.proxy.is_router and not b.proxy.is_router
    common = {c.name for c in a.clusters} & {c.name for c in b.clusters if c.name.startswith("outbound|")}
    assert any(cluster_text(a, n) != cluster_text(b, n) for n in common)


def test_key_proxy_locality() -> None:
    """ProxyKey.locality: locality failover of a DNS cluster's inline endpoints."""
    loaded = mesh(namespace("a"), namespace("bar"), located("p", "a", "r1.z1.s1"),
                  located("q", "a", "r2.z1.s1"), dns_foo(),
                  policy_dr(outlierDetection={"consecutive5xxErrors": 5}))
    p, q = shared_vs_alone(loaded, ["deploy/p.a", "deploy/q.a"])
    assert cluster_text(p, outbound(8080)) != cluster_text(q, outbound(8080))


def test_key_proxy_labels_for_failover_priority() -> None:
    """ProxyKey.labels: failoverPriority compares endpoint labels with the proxy's."""
    loaded = mesh(namespace("a"), namespace("bar"), located("p", "a", "r1.z1.s1", tier="gold"),
                  located("q", "a", "r1.z1.s1", tier="iron"), dns_foo(),
                  policy_dr(outlierDetection={"consecutive5xxErrors": 5},
                            loadBalancer={"localityLbSetting": {"failoverPriority": ["tier"]}}))
    p, q = shared_vs_alone(loaded, ["deploy/p.a", "deploy/q.a"])
    assert cluster_text(p, outbound(8080)) != cluster_text(q, outbound(8080))
    key = next(k for k in loaded.cache._sections["clusters"] if k.service[0] == FOO)
    assert key.proxy.labels is not None


def test_key_proxy_labels_left_out_without_failover_priority() -> None:
    """Without failoverPriority the labels are not part of the key: proxies share."""
    loaded = mesh(namespace("a"), namespace("bar"), located("p", "a", "r1.z1.s1", tier="gold"),
                  located("q", "a", "r1.z1.s1", tier="iron"), dns_foo())
    shared_vs_alone(loaded, ["deploy/p.a", "deploy/q.a"])
    assert [k.proxy.labels for k in loaded.cache._sections["clusters"]] == [None]
    assert loaded.cache.stats["clusters"] == [1, 1]


def test_key_proxy_ipv6_only() -> None:
    """ProxyKey.ipv6_only: (the bootstrap stage compiles IPv4 pods only, so the key is checked
    directly) an IPv6 pod and an IPv4 pod never share DNS clusters."""
    loaded = mesh(namespace("a"), client("a"))
    wl = loaded.mesh.registry.workloads[0]
    from dataclasses import replace
    v4, v6 = Proxy(wl), Proxy(replace(wl, ip="fd00::5"))
    cache = BuildCache()
    cache.bind(loaded.mesh)
    k4 = cache.proxy_key(v4, "", None, dict)
    k6 = cache.proxy_key(v6, "", None, dict)
    assert (k4.ipv6_only, k6.ipv6_only) == (False, True) and k4 != k6


def test_key_options() -> None:
    """ClusterKey/EndpointKey.options: istiod's flags change clusters and endpoints."""
    loaded = mesh(namespace("a"), namespace("bar"), client("a"), service_entry())
    plain, other = shared_vs_alone(loaded, ["deploy/client.a", "deploy/client.a"], [
        CompileOptions(), CompileOptions(metadata_exchange=False, endpoint_telemetry_label=False)])
    assert cluster_text(plain, outbound(8080)) != cluster_text(other, outbound(8080))
    assert assignment(plain, outbound(8080)) != assignment(other, outbound(8080))


def test_key_service_another_mesh_starts_afresh() -> None:
    """A cache used with another mesh (same names, other ports) does not serve the old builds."""
    cache = BuildCache(check=True)
    first = mesh(namespace("a"), namespace("bar"), client("a"), service_entry())
    second = mesh(namespace("a"), namespace("bar"), client("a"), service_entry(
        ports=[{"name": "default", "number": 8081, "protocol": "HTTP"}]))
    r1 = compile_for(first, "deploy/client.a", cache=cache)
    r2 = compile_for(second, "deploy/client.a", cache=cache)
    assert config_dump_json(r2) == config_dump_json(compile_for(second, "deploy/client.a",
                                                                 cache=BuildCache()))
    assert r1.cluster(outbound(8080)) is not None and r2.cluster(outbound(8080)) is None


def test_key_sni_dnat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ClusterKey.sni_dnat: an AUTO_PASSTHROUGH gateway asks for both variants of each service's
    clusters in one compile (``outbound|…`` with TLS, ``outbound_.…`` without)."""
    monkeypatch.chdir(ROOT)
    rel = SAMPLES.relative_to(ROOT)
    gateway = {"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
               "metadata": {"name": "cross", "namespace": "istio-system"},
               "spec": {"selector": {"istio": "ingressgateway"}, "servers": [
                   {"port": {"number": 15443, "name": "tls", "protocol": "TLS"},
                    "tls": {"mode": "AUTO_PASSTHROUGH"}, "hosts": ["*.local"]}]}}
    (tmp_path / "gateway.yaml").write_text(yaml.safe_dump(gateway))
    loaded = load([str(rel / "istio-system"), str(rel / "httpbin" / "httpbin.yaml"),
                   str(tmp_path / "gateway.yaml")])
    (r,) = shared_vs_alone(loaded, ["deploy/istio-ingressgateway.istio-system"])
    names = [c.name for c in r.clusters]
    assert any(n.startswith("outbound_.8000_._.httpbin") for n in names), names
    assert any(n.startswith("outbound|8000||httpbin") for n in names), names


def _vs_by_source(ns: str) -> dict[str, Any]:
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "by-source", "namespace": ns},
            "spec": {"hosts": ["foo.bar.svc.cluster.local"], "http": [
                {"match": [{"sourceLabels": {"tier": "gold"}}],
                 "route": [{"destination": {"host": "foo.bar.svc.cluster.local"}}], "timeout": "3s"},
                {"route": [{"destination": {"host": "foo.bar.svc.cluster.local"}}]}]}}


def _foo_service() -> list[dict[str, Any]]:
    from test_cds_cases import service
    return [deployment("foo", "bar"), service("foo", "bar", [("http", 8080, 8080)])]


def test_key_route_namespace() -> None:
    """RouteKey.namespace: the DNS domain (short names in the domains) and the visible rules."""
    loaded = mesh(namespace("a"), namespace("bar"), client("a"), client("bar"), *_foo_service())
    a, b = shared_vs_alone(loaded, ["deploy/client.a", "deploy/client.bar"])
    assert [r.SerializeToString() for r in a.routes or []] != [r.SerializeToString() for r in b.routes or []]


def test_key_route_labels() -> None:
    """RouteKey.labels: VirtualService sourceLabels select routes by the proxy's labels."""
    loaded = mesh(namespace("a"), namespace("bar"), located("p", "a", "r1.z1.s1", tier="gold"),
                  located("q", "a", "r1.z1.s1", tier="iron"), *_foo_service(), _vs_by_source("bar"))
    p, q = shared_vs_alone(loaded, ["deploy/p.a", "deploy/q.a"])
    assert [r.SerializeToString() for r in p.routes or []] != [r.SerializeToString() for r in q.routes or []]


def test_routes_shared_between_replicas() -> None:
    """Two pods of one Deployment have equal route keys: their route configurations are built
    once."""
    replicas = deployment("client", "a", replicas=2)
    loaded = mesh(namespace("a"), namespace("bar"), replicas, *_foo_service(), _vs_by_source("bar"))
    pods = sorted(f"{w.name}.a" for w in loaded.mesh.registry.workloads if w.name.startswith("client"))
    assert len(pods) == 2
    shared_vs_alone(loaded, pods)
    hits, misses = loaded.cache.stats["routes"]
    assert misses > 0 and hits == misses


def test_key_route_ipv6_only() -> None:
    """RouteKey.ipv6_only: (IPv6 pods do not compile yet, see test_key_proxy_ipv6_only) the
    route builder reads the proxy's IP only for its family, and the key carries the family."""
    from meshlens.compiler.cache import RouteKey

    cache = BuildCache()
    assert RouteKey("80", "a", frozenset(), cache.ip_version("10.0.0.1") == 6) != \
        RouteKey("80", "a", frozenset(), cache.ip_version("fd00::1") == 6)
