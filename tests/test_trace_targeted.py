"""``meshlens trace`` compiles only what the request visits (issue 18): a targeted compile
(``compile_proxy(only=Wanted())``, growing on demand) must give the very trace of the full
compile. Many requests over the samples, the test cases and a small generated mesh, from
sidecars and gateways, outbound and ``--inbound``: the JSON output must be byte-identical, and
every resource the targeted compile built must equal the full compile's one of that name.
"""

from __future__ import annotations

import importlib.util
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from meshlens.compiler import CompileResult, Wanted, compile_proxy
from meshlens.loader import load_paths
from meshlens.model.gateways import proxy_service_targets
from meshlens.model.mesh import MeshConfig
from meshlens.model.proxy import Proxy, infer_proxy_type
from meshlens.pipeline import Loaded, build, load, load_string, server_compiler
from meshlens.simulate import Request, simulate
from meshlens.simulate_gateway import simulate_gateway
from meshlens.source import RawDocument, SourceSpan

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "tests" / "conformance" / "samples"
CASES = sorted(p.name for p in (ROOT / "tests" / "cases").iterdir() if (p / "manifests.yaml").exists())
MAX_CLIENTS = 3  # sidecars per mesh (every gateway is traced)
MAX_URLS = 40  # requests per client


def _app(name: str, ports: list[int]) -> str:
    return (f"---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: edge}}\n"
            f"spec:\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n"
            f"    metadata: {{labels: {{app: {name}}}}}\n    spec: {{containers: [{{name: app, image: x, "
            f"ports: [{', '.join(f'{{containerPort: {p}}}' for p in ports)}]}}]}}\n")


#: Listener corner cases: a Sidecar with an explicit egress port and a catch-all, TCP services
#: sharing a port (VIP-bound listeners), a headless Service (per-pod listeners), an ExternalName
#: alias, ServiceEntries with a CIDR and with a /32, a DNS ServiceEntry with TLS.
EDGES = """
apiVersion: v1
kind: Namespace
metadata: {name: edge, labels: {istio-injection: enabled}}
""" + _app("client", [8080]) + _app("db", [5432, 9000]) + """---
{apiVersion: v1, kind: Service, metadata: {name: db, namespace: edge}, spec: {selector: {app: db},
 ports: [{name: tcp-pg, port: 5432}, {name: http-admin, port: 9000}]}}
---
{apiVersion: v1, kind: Service, metadata: {name: db2, namespace: edge}, spec: {selector: {app: db},
 ports: [{name: tcp-pg, port: 5432}, {name: mongo, port: 27017, targetPort: 5432}]}}
---
{apiVersion: v1, kind: Service, metadata: {name: db-headless, namespace: edge}, spec: {clusterIP: None,
 selector: {app: db}, ports: [{name: tcp-pg, port: 5432}, {name: tls-x, port: 9443}]}}
---
{apiVersion: v1, kind: Service, metadata: {name: alias, namespace: edge},
 spec: {type: ExternalName, externalName: db.edge.svc.cluster.local}}
---
{apiVersion: networking.istio.io/v1, kind: ServiceEntry, metadata: {name: cidr, namespace: edge},
 spec: {hosts: [cidr.example.com], addresses: [192.168.10.0/24, 10.1.2.3/32], resolution: NONE,
  location: MESH_EXTERNAL, ports: [{number: 5432, name: tcp, protocol: TCP}, {number: 9000, name: http, protocol: HTTP}]}}
---
{apiVersion: networking.istio.io/v1, kind: ServiceEntry, metadata: {name: api, namespace: edge},
 spec: {hosts: [api.example.org], resolution: DNS,
  ports: [{number: 443, name: tls, protocol: TLS}, {number: 80, name: http, protocol: HTTP}]}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: client, namespace: edge}
spec:
  workloadSelector: {labels: {app: client}}
  egress:
  - port: {number: 9000, protocol: HTTP, name: admin}
    hosts: ["./db.edge.svc.cluster.local"]
  - hosts: ["./*", "istio-system/*"]
"""


def _gen() -> Any:
    spec = importlib.util.spec_from_file_location("bench_gen", ROOT / "bench" / "gen.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@cache
def _mesh(name: str) -> Loaded:
    if name == "generated":
        gen = _gen()
        groups = gen.generate(24, seed=7, namespaces=3)
        return load_string("".join(gen._dump(docs) for docs in groups.values()), "gen.yaml")
    if name == "edges":
        return load_string(EDGES, "edges.yaml")
    if name.startswith("mode:"):  # the samples under another outbound traffic policy
        mc = MeshConfig.from_document(RawDocument({"outboundTrafficPolicy": {"mode": name[5:]}},
                                                  SourceSpan("mesh.yaml", 1, 1)))
        return build(load_paths([str(SAMPLES / "bookinfo" / "platform"), str(SAMPLES / "curl")]), mc)
    if name.startswith("case:"):
        return load([str(ROOT / "tests" / "cases" / name[5:] / "manifests.yaml")])
    bookinfo = SAMPLES / "bookinfo"
    files = {
        "bookinfo": [bookinfo / "platform", bookinfo / "networking" / "destination-rule-all.yaml",
                     bookinfo / "networking" / "virtual-service-reviews-jason-v2-v3.yaml",
                     bookinfo / "networking" / "virtual-service-ratings-test-abort.yaml",
                     bookinfo / "networking" / "bookinfo-gateway.yaml", SAMPLES / "istio-system"],
        "bookinfo-mtls": [bookinfo / "platform", bookinfo / "networking" / "destination-rule-all-mtls.yaml",
                          bookinfo / "networking" / "virtual-service-reviews-80-20.yaml",
                          bookinfo / "networking" / "fault-injection-details-v1.yaml"],
        "samples": [SAMPLES / "helloworld" / "helloworld.yaml", SAMPLES / "helloworld" / "helloworld-gateway.yaml",
                    SAMPLES / "httpbin" / "httpbin.yaml", SAMPLES / "httpbin" / "httpbin-gateway.yaml",
                    SAMPLES / "curl", SAMPLES / "sleep", SAMPLES / "grpc-echo", SAMPLES / "istio-system"],
        "tcp-echo": [SAMPLES / "tcp-echo" / "tcp-echo-services.yaml",
                     SAMPLES / "tcp-echo" / "tcp-echo-20-v2.yaml", SAMPLES / "curl"],
    }[name]
    return load([str(f) for f in files])


def _urls(loaded: Loaded) -> list[tuple[str, dict[str, Any]]]:
    """Requests to every service port (HTTP and TCP), plus the misses: unknown host, IP, port."""
    out: list[tuple[str, dict[str, Any]]] = []
    for svc in sorted(loaded.mesh.registry.services, key=lambda s: s.hostname):
        for p in svc.ports:
            tcp = p.protocol in ("TCP", "TLS", "MONGO", "MYSQL", "REDIS")
            scheme = "tcp" if tcp else ("https" if p.protocol == "HTTPS" else "http")
            out.append((f"{scheme}://{svc.hostname}:{p.port}/", {}))
            if not tcp:
                out.append((f"http://{svc.hostname}:{p.port}/admin", {"headers": ["end-user: jason"]}))
    out = out[:MAX_URLS]
    out += [("http://no-such-service:80/", {}), ("http://10.99.0.1:8080/", {}),
            ("tcp://10.99.0.2:15006", {}), ("https://www.example.com/", {}),
            ("http://1.2.3.4:15006/", {}), ("http://1.2.3.4:15001/", {}),
            ("http://api.example.org:8123/", {}), ("tcp://192.168.10.7:5432", {}),
            ("tcp://10.1.2.3:9000", {}), ("tls://api.example.org:443", {})]
    if loaded.mesh.registry.services:
        svc = loaded.mesh.registry.services[0]
        out.append((f"http://{svc.hostname}:31999/", {}))
    return out


def _gateway_urls(loaded: Loaded, proxy: Proxy) -> list[tuple[str, dict[str, Any]]]:
    """Requests to the gateway's Service ports, for each VirtualService host and an unknown one."""
    hosts = sorted({h for vs in loaded.mesh.virtual_services for h in vs.spec.get("hosts") or []
                    if isinstance(h, str) and "*" not in h} | {"unknown.example.com"})
    out: list[tuple[str, dict[str, Any]]] = []
    for t in proxy_service_targets(loaded.mesh.registry, proxy.workload):
        for host in hosts[:MAX_URLS // 2]:
            scheme = "https" if t.port.port == 443 or t.port.protocol in ("HTTPS", "TLS") else "http"
            out.append((f"{scheme}://{host}:{t.port.port}/productpage", {}))
    return out + [("http://nothing.example.com:12345/", {})]


def _run(result: CompileResult, loaded: Loaded, url: str, opts: dict[str, Any], *, targeted: bool) -> str:
    req = Request.parse(url, **opts)
    server = server_compiler(loaded, targeted=targeted)
    if result.proxy.is_router:
        t = simulate_gateway(result, req, server=server)
    else:
        t = simulate(result, req, server=server)
    return json.dumps(t.to_dict(), indent=2)


def _same_resources(part: CompileResult, full: CompileResult) -> None:
    """Each resource the targeted compile built is the full compile's one of that name."""
    assert part.only is not None
    for kind, mine, theirs, key in (
            ("listener", part.listeners or [], full.listeners or [], "name"),
            ("route", part.routes or [], full.routes or [], "name"),
            ("cluster", part.clusters, full.clusters, "name"),
            ("endpoint", part.endpoints, full.endpoints, "cluster_name")):
        by_name = {}
        for m in theirs:
            by_name.setdefault(getattr(m, key), m)
        for m in mine:
            other = by_name.get(getattr(m, key))
            assert other is not None, f"{kind} {getattr(m, key)} is not in the full compile"
            assert m.SerializeToString(deterministic=True) == other.SerializeToString(deterministic=True)
            if kind != "endpoint":
                assert part.provenance.of(kind, m.name) == full.provenance.of(kind, m.name)


def _clients(loaded: Loaded) -> list[Proxy]:
    wls = sorted(loaded.mesh.registry.workloads, key=lambda w: (w.namespace, w.name))
    proxies = [Proxy(w, infer_proxy_type(w)) for w in wls if w.ip]
    routers = [p for p in proxies if p.is_router]
    sidecars = [p for p in proxies if p.workload.injected and not p.is_router]
    return sidecars[:MAX_CLIENTS] + routers


def _check_mesh(name: str) -> int:
    loaded = _mesh(name)
    assert not loaded.errors
    n = 0
    for proxy in _clients(loaded):
        full = compile_proxy(loaded.mesh, proxy, options=loaded.options)
        urls = _gateway_urls(loaded, proxy) + _urls(loaded)[:5] if proxy.is_router else _urls(loaded)
        for url, opts in urls:
            part = compile_proxy(loaded.mesh, proxy, options=loaded.options, only=Wanted())
            assert part.only is not None
            want = _run(full, loaded, url, opts, targeted=False)
            got = _run(part, loaded, url, opts, targeted=True)
            assert got == want, f"{name}: {proxy.name}.{proxy.namespace} {url}"
            _same_resources(part, full)
            n += 1
        if not proxy.is_router:  # --inbound: a call arriving at the proxy's own pod
            for port in sorted({c.port for c in proxy.workload.container_ports})[:3]:
                for peer in ("plaintext", "mtls"):
                    url = f"http://{proxy.workload.ip}:{port}/"
                    part = compile_proxy(loaded.mesh, proxy, options=loaded.options, only=Wanted())
                    opts = {"inbound": True, "peer": peer}
                    assert _run(part, loaded, url, opts, targeted=True) == \
                        _run(full, loaded, url, opts, targeted=False)
                    n += 1
    return n


@pytest.mark.parametrize("name", ["bookinfo", "bookinfo-mtls", "samples", "tcp-echo", "generated", "edges",
                                  "mode:REGISTRY_ONLY", "mode:ALLOW_ANY_DYNAMIC_DNS"])
def test_targeted_trace_equals_full_on_samples(name: str) -> None:
    assert _check_mesh(name) > 10


@pytest.mark.parametrize("case", [c for c in CASES if c != "envoyfilter-patches"])
def test_targeted_trace_equals_full_on_cases(case: str) -> None:
    assert _check_mesh(f"case:{case}") > 0


def test_envoyfilter_compiles_whole() -> None:
    """An EnvoyFilter may patch any resource: its mesh gets the full compile, and the same trace."""
    loaded = _mesh("case:envoyfilter-patches")
    proxy = _clients(loaded)[0]
    part = compile_proxy(loaded.mesh, proxy, options=loaded.options, only=Wanted())
    assert part.only is None and part.clusters and part.listeners
    full = compile_proxy(loaded.mesh, proxy, options=loaded.options)
    for url, opts in _urls(loaded)[:10]:
        assert _run(part, loaded, url, opts, targeted=True) == _run(full, loaded, url, opts, targeted=False)


def test_targeted_compile_builds_only_what_is_asked() -> None:
    loaded = _mesh("generated")
    proxy = next(p for p in _clients(loaded) if not p.is_router)
    part = compile_proxy(loaded.mesh, proxy, options=loaded.options, only=Wanted())
    assert (part.listeners, part.routes, part.clusters, part.endpoints) == (None, None, [], [])
    assert part.bootstrap is None and part.secrets is None
    svc = loaded.mesh.registry.services[0]
    port = svc.ports[0].port
    name = f"outbound|{port}||{svc.hostname}"
    assert part.cluster(name) is not None
    assert [c.name for c in part.clusters] == [name]
    assert [e.cluster_name for e in part.endpoints] == [name]
    assert part.cluster(name) is part.clusters[0]  # asked twice: compiled once
    assert part.cluster("outbound|1|nope|nowhere") is None
    on_port = part.listeners_on(port)
    assert on_port and all(port in [x.address.socket_address.port_value] for x in on_port)
    assert {x.name for x in part.listeners or []} == {x.name for x in on_port}
    assert part.listener("virtualOutbound") is not None
    full = compile_proxy(loaded.mesh, proxy, options=loaded.options)
    assert len(part.all_listeners()) == len(full.listeners or [])
    _same_resources(part, full)


def test_wanted_keys() -> None:
    a = Wanted(ports=frozenset({80}), clusters=frozenset({"outbound|80||a.ns.svc.cluster.local"}))
    b = Wanted(ports=frozenset({80, 443}), listeners=frozenset({"virtualInbound"}))
    assert (b - a) == Wanted(ports=frozenset({443}), listeners=frozenset({"virtualInbound"}))
    assert not (a - (a | b)) and (a | b) - a == b - a
    assert not Wanted() and Wanted(every_listener=True)
    assert (Wanted(ports=frozenset({80})) - Wanted(every_listener=True)) == Wanted()
    assert a.hosts() == {"a.ns.svc.cluster.local"}
    assert Wanted(clusters=frozenset({"outbound_.80_._.b.ns.svc.cluster.local", "BlackHoleCluster"})).hosts() \
        == {"b.ns.svc.cluster.local"}
    assert b.outbound_ports() == {80, 443}  # virtualInbound is not a per-port listener
    assert Wanted(listeners=frozenset({"0.0.0.0_80"})).outbound_ports() is None  # by name: all
