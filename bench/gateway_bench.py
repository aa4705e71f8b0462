"""Gateway benchmark: compile Istio's ingress gateway for a mesh of N services, G Gateway API
Gateways and R HTTPRoutes, and compare with a sidecar of the same mesh.

    .venv/bin/python bench/gateway_bench.py                 # 1000 services, 200 Gateways, 1000 HTTPRoutes
    .venv/bin/python bench/gateway_bench.py --services 200 --gateways 40 --routes 200

The mesh is bench/gen.py's (services, two Deployments each, DestinationRules, VirtualServices,
the ``client`` sidecar) plus Istio's ingress gateway (``istio-ingressgateway`` in istio-system,
Service 80→8080 and 443→8443) and G Gateway API Gateways in istio-system bound to it by
``addresses`` (manual deployment: `extractGatewayServices`), each with an HTTP listener for
``gN.example.com`` (routes from all namespaces) and an HTTPS one with a certificate; R HTTPRoutes
spread over the Gateways, each with two rules (a path prefix to one service, a header match split
90/10 over two services). Each figure is the best of ``--repeat`` fresh subprocesses of
``meshlens compile -o json`` (the whole command, interpreter start included).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen import generate, write  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MESHLENS = os.path.join(ROOT, ".venv", "bin", "meshlens")


def gateway_docs(services: list[dict[str, Any]], gateways: int, routes: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "istio-ingressgateway", "namespace": "istio-system"},
         "spec": {"selector": {"istio": "ingressgateway"},
                  "ports": [{"name": "http2", "port": 80, "targetPort": 8080},
                            {"name": "https", "port": 443, "targetPort": 8443}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "istio-ingressgateway", "namespace": "istio-system"},
         "spec": {"selector": {"matchLabels": {"istio": "ingressgateway"}},
                  "template": {"metadata": {"labels": {"istio": "ingressgateway",
                                                       "sidecar.istio.io/inject": "false"}},
                               "spec": {"containers": [{"name": "istio-proxy", "args": ["proxy", "router"],
                                                        "ports": [{"containerPort": 8080},
                                                                  {"containerPort": 8443}]}]}}}},
    ]
    for g in range(gateways):
        out.append({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                    "metadata": {"name": f"gw-{g:04d}", "namespace": "istio-system"},
                    "spec": {"gatewayClassName": "istio",
                             "addresses": [{"type": "Hostname", "value": "istio-ingressgateway"}],
                             "listeners": [
                                 {"name": "http", "port": 80, "protocol": "HTTP",
                                  "hostname": f"g{g}.example.com",
                                  "allowedRoutes": {"namespaces": {"from": "All"}}},
                                 {"name": "https", "port": 443, "protocol": "HTTPS",
                                  "hostname": f"g{g}.example.com",
                                  "allowedRoutes": {"namespaces": {"from": "All"}},
                                  "tls": {"certificateRefs": [{"name": f"cert-{g:04d}"}]}}]}})
        out.append({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                    "metadata": {"name": f"cert-{g:04d}", "namespace": "istio-system"},
                    "data": {"tls.crt": "", "tls.key": ""}})
    for r in range(routes):
        a, b, c = (services[(r * 3 + k) % len(services)] for k in range(3))

        def ref(svc: dict[str, Any], weight: int | None = None) -> dict[str, Any]:
            out_ref = {"name": svc["metadata"]["name"], "namespace": svc["metadata"]["namespace"],
                       "port": svc["spec"]["ports"][0]["port"]}
            if weight is not None:
                out_ref["weight"] = weight
            return out_ref

        ns = a["metadata"]["namespace"]
        out.append({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                    "metadata": {"name": f"route-{r:05d}", "namespace": ns},
                    "spec": {"parentRefs": [{"name": f"gw-{r % max(1, gateways):04d}",
                                             "namespace": "istio-system"}],
                             "rules": [
                                 {"matches": [{"path": {"type": "PathPrefix", "value": f"/r{r}"}}],
                                  "backendRefs": [ref(a)]},
                                 {"matches": [{"headers": [{"name": "x-route", "value": str(r)}]}],
                                  "backendRefs": [ref(b, 90), ref(c, 10)]}]}})
        # cross-namespace backends need a ReferenceGrant per target namespace
    for ns in sorted({s["metadata"]["namespace"] for s in services}):
        out.append({"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
                    "metadata": {"name": "from-routes", "namespace": ns},
                    "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute",
                                       "namespace": n} for n in sorted({s["metadata"]["namespace"]
                                                                        for s in services})],
                             "to": [{"group": "", "kind": "Service"}]}})
    return out


def timed(argv: list[str], repeat: int) -> tuple[float, int]:
    best, size = float("inf"), 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = subprocess.run(argv, capture_output=True, check=False)
        elapsed = time.perf_counter() - t0
        if res.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed: {res.stderr.decode()[-2000:]}")
        best, size = min(best, elapsed), len(res.stdout)
    return best, size


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--gateways", type=int, default=200)
    ap.add_argument("--routes", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args(argv)
    groups = generate(args.services)
    groups["gateways"] = gateway_docs(groups["services"], args.gateways, args.routes)
    with tempfile.TemporaryDirectory(prefix="meshlens-gwbench-") as tmp:
        paths = write(groups, os.path.join(tmp, "mesh"))
        docs = sum(len(v) for v in groups.values())
        files = [x for p in paths for x in ("-f", p)]
        rows = []
        for label, proxy in (("ingress gateway", "deploy/istio-ingressgateway.istio-system"),
                             ("sidecar (client)", "deploy/client.bench")):
            secs, size = timed([MESHLENS, "compile", *files, proxy, "-o", "json"], args.repeat)
            rows.append((label, secs, size))
        sys.path.insert(0, os.path.join(ROOT, "src"))
        from meshlens.pipeline import compile_for, load

        t0 = time.perf_counter()
        loaded = load(paths)
        t_load = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = compile_for(loaded, "deploy/istio-ingressgateway.istio-system")
        t_compile = time.perf_counter() - t0
    print(f"{args.services} services, {args.gateways} Gateways, {args.routes} HTTPRoutes: {docs} documents")
    print(f"in-process: load {t_load:.2f} s, compile the ingress gateway {t_compile:.2f} s "
          f"({len(result.listeners or [])} listeners, {len(result.routes or [])} route configurations, "
          f"{sum(len(rc.virtual_hosts) for rc in result.routes or [])} virtual hosts, "
          f"{len(result.clusters)} clusters)")
    for label, secs, size in rows:
        print(f"meshlens compile -o json, {label}: {secs:.2f} s ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
