#!/usr/bin/env python3
"""Generate a synthetic Kubernetes + Istio mesh for the meshlens benchmark.

Usage:
    python bench/gen.py --services 1000 --out mesh/              # a folder, one file per kind
    python bench/gen.py --services 1000 --out mesh.yaml          # one multi-document file

The output depends only on the arguments (``--seed`` included): the same command writes the
same bytes. What is generated, for ``N`` services:

* ``--namespaces`` namespaces ``ns-00 .. ns-K`` (default 5), labelled ``istio-injection: enabled``,
  plus namespace ``bench`` (also injected) for the client.
* ``N`` Services ``svc-NNNNN`` spread round-robin over those namespaces, each with one or two
  ports drawn from four kinds: ``http`` (name ``http-web``), ``grpc`` (``grpc-api``), ``tcp``
  (``tcp-db``) and "unnamed" (no name for a one-port Service; a name that declares no protocol,
  ``port-NNNN``, when the Service has two ports, since Kubernetes requires names then). Both
  yield protocol sniffing (``UnsupportedProtocol``) in Istio. About a third of the ports use a
  *named* targetPort, resolved against the container ports.
* Two Deployments per Service, ``svc-NNNNN-v1`` and ``svc-NNNNN-v2`` (labels ``app`` and
  ``version``), ``--replicas`` pods each (default 1). So each Service has ``2 x replicas``
  endpoints per port, and each DestinationRule subset selects half of them.
* ``N`` DestinationRules, one per Service (host in short or FQDN form), with subsets ``v1`` and
  ``v2`` and traffic policies that vary with the service index: connectionPool (tcp and http
  settings, some with ``h2UpgradePolicy``), outlierDetection, loadBalancer (simple and
  consistentHash), tls (``ISTIO_MUTUAL``, ``SIMPLE`` with an SNI, ``DISABLE`` or absent, so
  auto-mTLS applies), ``portLevelSettings`` on some, and a subset-level policy on some ``v2``
  subsets.
* ``N // 2`` VirtualServices, for every other Service: a header match (``end-user: jason``)
  routed to ``v2`` and a weighted 90/10 default route to ``v1``/``v2``; Services without an HTTP
  port get a weighted ``tcp`` route instead.
* A ``client`` Deployment in namespace ``bench`` with no Service and no Sidecar resource, so the
  proxy ``deploy/client.bench`` sees every Service in the mesh.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from typing import Any

import yaml

_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

PORT_KINDS = ("http", "grpc", "tcp", "unnamed")
CLIENT_NS = "bench"
CLIENT = "client"


def _service_ports(rng: random.Random) -> list[dict[str, Any]]:
    count = 1 if rng.random() < 0.5 else 2
    kinds = rng.sample(PORT_KINDS, count)
    ports = []
    for j, kind in enumerate(kinds):
        number = {"http": 80, "grpc": 9090, "tcp": 5432, "unnamed": 8000}[kind] + j
        target = number + 8000 if kind != "unnamed" else number + 1
        if kind == "http":
            name = "http-web"
        elif kind == "grpc":
            name = "grpc-api"
        elif kind == "tcp":
            name = "tcp-db"
        else:
            name = f"port-{number}" if count > 1 else ""
        port: dict[str, Any] = {"port": number, "protocol": "TCP"}
        if name:
            port = {"name": name, **port}
        # A named targetPort must match a container port name (at most 15 characters).
        if name and rng.random() < 0.33:
            port["targetPort"] = f"c-{kind}"[:15]
            port["_container"] = (f"c-{kind}"[:15], target)
        else:
            port["targetPort"] = target
            port["_container"] = (f"p{j}", target)
        ports.append(port)
    return ports


def _deployment(name: str, ns: str, labels: dict[str, str], containers_ports: list[tuple[str, int]],
                replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": dict(labels)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "serviceAccountName": labels["app"],
                    "containers": [{
                        "name": "app", "image": "registry.example/bench/app:1.0",
                        "ports": [{"name": n, "containerPort": p} for n, p in containers_ports],
                    }],
                },
            },
        },
    }


def _connection_pool(rng: random.Random, http: bool) -> dict[str, Any]:
    cp: dict[str, Any] = {"tcp": {"maxConnections": rng.choice([100, 500, 1024]),
                                  "connectTimeout": rng.choice(["250ms", "1s", "3s"])}}
    if rng.random() < 0.3:
        cp["tcp"]["tcpKeepalive"] = {"time": "7200s", "interval": "75s", "probes": 9}
    if http:
        cp["http"] = {"http1MaxPendingRequests": rng.choice([64, 1024]),
                      "maxRequestsPerConnection": rng.choice([0, 1, 10]),
                      "idleTimeout": "30s"}
        if rng.random() < 0.3:
            cp["http"]["h2UpgradePolicy"] = rng.choice(["UPGRADE", "DO_NOT_UPGRADE"])
        if rng.random() < 0.3:
            cp["http"]["maxRetries"] = 3
    return cp


def _outlier(rng: random.Random) -> dict[str, Any]:
    od: dict[str, Any] = {"consecutive5xxErrors": rng.choice([3, 5, 7]),
                          "interval": rng.choice(["10s", "30s"]),
                          "baseEjectionTime": rng.choice(["30s", "1m"]),
                          "maxEjectionPercent": rng.choice([10, 50, 100])}
    if rng.random() < 0.3:
        od["minHealthPercent"] = 50
    return od


def _load_balancer(rng: random.Random, http: bool) -> dict[str, Any]:
    r = rng.random()
    if r < 0.2 and http:
        return {"consistentHash": {"httpHeaderName": "x-user"}}
    if r < 0.3:
        return {"consistentHash": {"useSourceIp": True, "ringHash": {"minimumRingSize": 1024}}}
    return {"simple": rng.choice(["ROUND_ROBIN", "LEAST_REQUEST", "RANDOM", "LEAST_CONN"])}


def _tls(rng: random.Random, host: str) -> dict[str, Any] | None:
    r = rng.random()
    if r < 0.35:
        return None  # auto mTLS
    if r < 0.75:
        return {"mode": "ISTIO_MUTUAL"}
    if r < 0.9:
        return {"mode": "SIMPLE", "sni": host, "caCertificates": "/etc/certs/ca.pem"}
    return {"mode": "DISABLE"}


def _traffic_policy(rng: random.Random, host: str, ports: list[dict[str, Any]],
                    http: bool) -> dict[str, Any]:
    tp: dict[str, Any] = {}
    if rng.random() < 0.8:
        tp["connectionPool"] = _connection_pool(rng, http)
    if rng.random() < 0.6:
        tp["outlierDetection"] = _outlier(rng)
    if rng.random() < 0.7:
        tp["loadBalancer"] = _load_balancer(rng, http)
    tls = _tls(rng, host)
    if tls is not None:
        tp["tls"] = tls
    if rng.random() < 0.25:
        port = rng.choice(ports)
        pls: dict[str, Any] = {"port": {"number": port["port"]},
                               "connectionPool": {"tcp": {"maxConnections": 50}}}
        if rng.random() < 0.5:
            pls["loadBalancer"] = {"simple": "LEAST_REQUEST"}
        if rng.random() < 0.5:
            pls["outlierDetection"] = {"consecutive5xxErrors": 2, "interval": "5s"}
        if rng.random() < 0.3:
            pls["tls"] = {"mode": "ISTIO_MUTUAL"}
        tp["portLevelSettings"] = [pls]
    return tp


def _destination_rule(rng: random.Random, name: str, ns: str, ports: list[dict[str, Any]],
                      http: bool) -> dict[str, Any]:
    fqdn = f"{name}.{ns}.svc.cluster.local"
    spec: dict[str, Any] = {"host": fqdn if rng.random() < 0.5 else name}
    tp = _traffic_policy(rng, fqdn, ports, http)
    if tp:
        spec["trafficPolicy"] = tp
    v2: dict[str, Any] = {"name": "v2", "labels": {"version": "v2"}}
    if rng.random() < 0.3:
        v2["trafficPolicy"] = {"loadBalancer": {"simple": "ROUND_ROBIN"},
                               "connectionPool": {"tcp": {"maxConnections": 10}}}
    spec["subsets"] = [{"name": "v1", "labels": {"version": "v1"}}, v2]
    return {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def _virtual_service(name: str, ns: str, ports: list[dict[str, Any]]) -> dict[str, Any]:
    host = f"{name}.{ns}.svc.cluster.local"
    http_ports = [p for p in ports if p.get("name", "").startswith(("http", "grpc"))]

    def dest(subset: str, port: int | None = None) -> dict[str, Any]:
        d: dict[str, Any] = {"host": host, "subset": subset}
        if port is not None:
            d["port"] = {"number": port}
        return d

    if http_ports:
        spec: dict[str, Any] = {"hosts": [host], "http": [
            {"name": "jason", "match": [{"headers": {"end-user": {"exact": "jason"}}}],
             "route": [{"destination": dest("v2")}]},
            {"name": "default", "route": [{"destination": dest("v1"), "weight": 90},
                                          {"destination": dest("v2"), "weight": 10}],
             "timeout": "5s", "retries": {"attempts": 2, "perTryTimeout": "2s"}},
        ]}
    else:
        port = ports[0]["port"]
        spec = {"hosts": [host], "tcp": [
            {"match": [{"port": port}],
             "route": [{"destination": dest("v1", port), "weight": 90},
                       {"destination": dest("v2", port), "weight": 10}]}]}
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def generate(services: int, *, seed: int = 1, namespaces: int = 5,
             replicas: int = 1) -> dict[str, list[dict[str, Any]]]:
    """The mesh as documents grouped by file name (``namespaces``, ``services``, ...)."""
    rng = random.Random(seed)
    out: dict[str, list[dict[str, Any]]] = {k: [] for k in (
        "namespaces", "services", "deployments", "destinationrules", "virtualservices", "client")}
    ns_names = [f"ns-{k:02d}" for k in range(max(1, namespaces))]
    for ns in ns_names + [CLIENT_NS]:
        out["namespaces"].append({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns, "labels": {"istio-injection": "enabled"}}})
    for i in range(services):
        name = f"svc-{i:05d}"
        ns = ns_names[i % len(ns_names)]
        ports = _service_ports(rng)
        containers = sorted({p.pop("_container") for p in ports}, key=lambda c: c[1])
        http = any(p.get("name", "").startswith(("http", "grpc")) or not p.get("name")
                   or p["name"].startswith("port-") for p in ports)
        out["services"].append({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
            "spec": {"selector": {"app": name}, "ports": ports}})
        for version in ("v1", "v2"):
            out["deployments"].append(_deployment(
                f"{name}-{version}", ns, {"app": name, "version": version}, containers, replicas))
        out["destinationrules"].append(_destination_rule(rng, name, ns, ports, http))
        if i % 2 == 0:
            out["virtualservices"].append(_virtual_service(name, ns, ports))
    out["client"].append(_deployment(CLIENT, CLIENT_NS, {"app": CLIENT, "version": "v1"},
                                     [("http", 8080)], 1))
    return out


def _dump(docs: list[dict[str, Any]]) -> str:
    return yaml.dump_all(docs, Dumper=_Dumper, explicit_start=True, sort_keys=False,
                         default_flow_style=False, width=1000)


def write(groups: dict[str, list[dict[str, Any]]], out: str) -> list[str]:
    """Write to a folder (one file per kind) or, if ``out`` ends in .yaml/.yml, one file."""
    if out.endswith((".yaml", ".yml")):
        parent = os.path.dirname(os.path.abspath(out))
        os.makedirs(parent, exist_ok=True)
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(_dump([d for docs in groups.values() for d in docs]))
        return [out]
    os.makedirs(out, exist_ok=True)
    paths = []
    for i, (name, docs) in enumerate(groups.items()):
        path = os.path.join(out, f"{i:02d}-{name}.yaml")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(_dump(docs))
        paths.append(path)
    return paths


def counts(groups: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for docs in groups.values():
        for d in docs:
            kinds[d["kind"]] = kinds.get(d["kind"], 0) + 1
    return kinds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--services", type=int, required=True, help="number of Services (N)")
    ap.add_argument("--out", required=True,
                    help="output folder, or a .yaml/.yml file for a single multi-document file")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--namespaces", type=int, default=5, help="service namespaces (default 5)")
    ap.add_argument("--replicas", type=int, default=1, help="pods per Deployment (default 1)")
    args = ap.parse_args(argv)
    if args.services < 1:
        ap.error("--services must be at least 1")
    groups = generate(args.services, seed=args.seed, namespaces=args.namespaces,
                      replicas=args.replicas)
    paths = write(groups, args.out)
    total = sum(os.path.getsize(p) for p in paths)
    summary = ", ".join(f"{v} {k}" for k, v in counts(groups).items())
    print(f"wrote {len(paths)} file(s), {total / 1e6:.1f} MB to {args.out}: {summary}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
