"""Benchmark: a cluster export (real pods + EndpointSlices) loaded and compiled for one proxy.

Writes a ``kind: List`` JSON export as ``kubectl get ... -o json`` prints it: ``--services``
Services, each with a Deployment, its ReplicaSet, ``--pods`` real injected pods (with status,
ownerReferences, managedFields) and one EndpointSlice; then times
``meshlens compile -f EXPORT deploy/client.bench -o json`` in a fresh process (best of
``--runs``). Target (issue 13): 10,000 pods and 1,000 EndpointSlices in under 10 s.

    .venv/bin/python bench/export_bench.py                      # 1,000 services x 10 pods
    .venv/bin/python bench/export_bench.py --services 100 --pods 5 --runs 1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any


def _pod(name: str, ns: str, app: str, pth: str, ip: str, owner: str) -> dict[str, Any]:
    labels = {"app": app, "version": "v1", "pod-template-hash": pth,
              "security.istio.io/tlsMode": "istio", "service.istio.io/canonical-name": app,
              "service.istio.io/canonical-revision": "v1"}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "generateName": name.rsplit("-", 1)[0] + "-", "namespace": ns,
                     "labels": labels, "uid": f"uid-{name}", "creationTimestamp": "2026-11-01T00:00:00Z",
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner,
                                          "uid": f"uid-{owner}", "controller": True,
                                          "blockOwnerDeletion": True}],
                     "managedFields": [{"manager": "kube-controller-manager", "operation": "Update",
                                        "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}}}}]},
        "spec": {"serviceAccountName": app, "nodeName": f"node-{hash(name) % 20}",
                 "containers": [
                     {"name": app, "image": f"{app}:1", "ports": [{"containerPort": 8080, "name": "http"}]},
                     {"name": "istio-proxy", "image": "proxyv2:1.30",
                      "ports": [{"containerPort": 15090, "name": "http-envoy-prom"}],
                      "env": [{"name": "ISTIO_META_WORKLOAD_NAME", "value": app},
                              {"name": "PROXY_CONFIG", "value": "{}"}]}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                   "conditions": [{"type": "Ready", "status": "True",
                                   "lastTransitionTime": "2026-11-01T00:00:10Z"}],
                   "containerStatuses": [{"name": app, "restartCount": 0, "ready": True}]},
    }


def generate(services: int, pods: int) -> dict[str, Any]:
    items: list[Any] = [{"apiVersion": "v1", "kind": "Namespace",
                         "metadata": {"name": "bench", "labels": {"istio-injection": "enabled"}}}]
    n = 0
    for i in range(services):
        app, ns, pth = f"svc-{i:05d}", "bench", f"{i:010x}"[-10:]
        rs = f"{app}-{pth}"
        sel = {"app": app}
        items.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": app, "namespace": ns},
                      "spec": {"clusterIP": f"10.96.{i // 250}.{i % 250 + 2}", "selector": sel,
                               "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})
        tmpl = {"metadata": {"labels": {"app": app, "version": "v1"}},
                "spec": {"containers": [{"name": app, "image": f"{app}:1",
                                         "ports": [{"containerPort": 8080, "name": "http"}]}]}}
        items.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": app, "namespace": ns},
                      "spec": {"replicas": pods, "selector": {"matchLabels": sel}, "template": tmpl}})
        items.append({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                      "metadata": {"name": rs, "namespace": ns, "labels": {**sel, "pod-template-hash": pth},
                                   "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                                        "name": app, "controller": True}]},
                      "spec": {"replicas": pods, "selector": {"matchLabels": {**sel, "pod-template-hash": pth}},
                               "template": tmpl}})
        eps = []
        for j in range(pods):
            ip = f"10.{100 + n // 65000}.{n // 250 % 260}.{n % 250 + 2}"
            name = f"{rs}-{j:05d}"
            items.append(_pod(name, ns, app, pth, ip, rs))
            eps.append({"addresses": [ip], "conditions": {"ready": True, "serving": True, "terminating": False},
                        "targetRef": {"kind": "Pod", "name": name, "namespace": ns}, "nodeName": "node-1"})
            n += 1
        items.append({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                      "metadata": {"name": f"{app}-abcde", "namespace": ns,
                                   "labels": {"kubernetes.io/service-name": app}},
                      "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                      "endpoints": eps})
    items.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "client", "namespace": "bench"},
                  "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "client"}},
                           "template": {"metadata": {"labels": {"app": "client"}},
                                        "spec": {"containers": [{"name": "client", "image": "c"}]}}}})
    return {"apiVersion": "v1", "kind": "List", "items": items}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--pods", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--format", choices=("list", "docs"), default="list",
                    help="one kind: List (kubectl get -o json), or one JSON document per object")
    args = ap.parse_args()
    data = generate(args.services, args.pods)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "export.json" if args.format == "list" else "export.yaml")
        with open(path, "w") as fh:
            if args.format == "list":
                json.dump(data, fh)
            else:
                for item in data["items"]:
                    fh.write("---\n" + json.dumps(item) + "\n")
        size = os.path.getsize(path)
        phases = _phases(path)
        times, cpus = [], []
        for _ in range(args.runs):
            start, before = time.monotonic(), _children_cpu()
            proc = subprocess.run([sys.executable, "-m", "meshlens", "compile", "-f", path,
                                   "deploy/client.bench", "-o", "json"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
            times.append(time.monotonic() - start)
            cpus.append(_children_cpu() - before)
            if proc.returncode != 0:
                sys.exit(f"compile failed: {proc.stderr[-2000:]}")
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    pods = args.services * args.pods
    print(f"{pods:,} pods, {args.services:,} EndpointSlices, {len(data['items']):,} objects, "
          f"{size / 1e6:.1f} MB ({args.format}): whole `meshlens compile -o json` best "
          f"{min(times):.2f} s (runs: {', '.join(f'{t:.2f}' for t in times)}), CPU (user+sys) best "
          f"{min(cpus):.2f} s, peak RSS {rss:.0f} MiB")
    print("in-process phases: " + ", ".join(f"{k} {v:.2f} s" for k, v in phases.items()))


def _children_cpu() -> float:
    """User + system CPU seconds of the finished child processes (comparable on a busy machine)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _phases(path: str) -> dict[str, float]:
    """Where the time goes, in one process: the loader's parse, decode + model, compile."""
    code = f"""
import gc, json, time
gc.disable()  # as the CLI does for one-shot commands (cli.common.quiet_gc)
from meshlens.loader import load_paths
from meshlens.pipeline import build, compile_for
t0 = time.monotonic(); raw = load_paths([{path!r}]); t1 = time.monotonic()
loaded = build(raw); t2 = time.monotonic()
compile_for(loaded, "deploy/client.bench"); t3 = time.monotonic()
print(json.dumps({{"parse (loader)": t1 - t0, "decode + model": t2 - t1, "compile": t3 - t2}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


if __name__ == "__main__":
    main()
