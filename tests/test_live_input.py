"""Cluster exports as input: snapshot with a stand-in kubectl, same object twice, bad input, pool."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from live_state import as_yaml, deployment, load, pod, service

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "meshlens", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, env=env)


def _kubectl(tmp: Path, recorded: dict[str, str], fail: str = "") -> dict[str, str]:
    """A stand-in kubectl on PATH: prints the recorded JSON for `get KIND`, or fails."""
    bindir = tmp / "bin"
    bindir.mkdir()
    (tmp / "recorded.json").write_text(json.dumps(recorded))
    script = bindir / "kubectl"
    script.write_text(f"""#!{sys.executable}
import json, sys
args = sys.argv[1:]
open({str(tmp / 'calls.txt')!r}, 'a').write(' '.join(args) + '\\n')
rec = json.load(open({str(tmp / 'recorded.json')!r}))
kind = args[args.index('get') + 1]
if {fail!r} and {fail!r} in args:
    sys.stderr.write('error: You must be logged in to the server (Unauthorized)\\n'); sys.exit(1)
if kind not in rec:
    sys.stderr.write('error: the server doesn\\'t have a resource type "' + kind + '"\\n'); sys.exit(1)
print(rec[kind])
""")
    script.chmod(0o755)
    return {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}


def _list(*items: dict[str, object]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(items)})


def test_snapshot_runs_kubectl_per_kind_and_writes_one_list(tmp_path: Path) -> None:
    web = pod("web-1", "10.1.0.11")
    web["metadata"]["managedFields"] = [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]
    recorded = {"namespaces": _list(), "nodes": _list(), "serviceaccounts": _list(),
                "services": _list(service("web")), "deployments.apps": _list(),
                "statefulsets.apps": _list(), "replicasets.apps": _list(), "daemonsets.apps": _list(),
                "pods": _list(web), "endpointslices.discovery.k8s.io": _list(),
                "configmap": json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                                         "metadata": {"name": "istio", "namespace": "istio-system"},
                                         "data": {"mesh": "{}"}})}
    env = _kubectl(tmp_path, recorded)
    out = tmp_path / "snap.json"
    r = run("snapshot", "--context", "prod", "-o", str(out), env=env)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert "pods: 1" in lines and "services: 1" in lines
    assert "serviceentries.networking.istio.io: not served by this cluster (skipped)" in lines
    data = json.loads(out.read_text())
    assert data["kind"] == "List" and len(data["items"]) == 3
    assert "managedFields" not in data["items"][1]["metadata"]
    calls = (tmp_path / "calls.txt").read_text().splitlines()
    assert calls[0] == "--context prod get namespaces -o json"
    assert "--context prod get pods -A -o json" in calls
    c = run("proxy-config", "endpoint", "-f", str(out), "web-1.shop", env=env)
    assert c.returncode == 0, c.stderr
    assert "10.1.0.11:8080" in c.stdout


def test_snapshot_fails_with_one_line_when_kubectl_fails_or_is_missing(tmp_path: Path) -> None:
    env = _kubectl(tmp_path, {"namespaces": _list()}, fail="nodes")
    r = run("snapshot", "-n", "shop", env=env)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1].startswith("error: `kubectl get nodes -o json` failed")
    r = run("snapshot", env={**os.environ, "PATH": str(tmp_path / "nowhere")})
    assert r.returncode == 2 and "kubectl not found" in r.stderr and "Traceback" not in r.stderr


def test_same_object_twice_the_last_one_kubectl_apply_leaves_wins(tmp_path: Path) -> None:
    d = tmp_path / "dir"
    d.mkdir()
    (d / "a.yaml").write_text(as_yaml([deployment("web", replicas=1)]))
    (d / "b.yaml").write_text(as_yaml([deployment("web", replicas=3)]))
    extra = tmp_path / "later.yaml"
    extra.write_text(as_yaml([deployment("web", replicas=2)]))
    from meshlens.pipeline import load as load_files

    loaded = load_files([str(d)])  # lexical order: b.yaml is applied last
    assert len([w for w in loaded.mesh.registry.workloads if w.name.startswith("web-")]) == 3
    warn = [x for x in loaded.diagnostics if x.code == "ML0303"]
    assert len(warn) == 1 and "b.yaml" in str(warn[0].span) and "a.yaml" in warn[0].message
    assert warn[0].level == "warning"
    both = load_files([str(d), str(extra)])  # -f order: later.yaml last
    assert len([w for w in both.mesh.registry.workloads if w.name.startswith("web-")]) == 2


def test_more_pods_than_the_pool_fails_fast_with_ml0005() -> None:
    objs = [deployment(f"w{i}", replicas=10_000) for i in range(7)]
    start = time.monotonic()
    loaded = load(objs)
    assert time.monotonic() - start < 10
    assert [e.code for e in loaded.errors] == ["ML0005"]
    assert "address pool" in loaded.errors[0].message


def test_bad_live_input_gives_lines_not_tracebacks(tmp_path: Path) -> None:
    no_status = pod("bare", None)
    del no_status["status"]
    dangling = pod("web-x-1", "10.1.0.11", owner=("ReplicaSet", "web-x"))
    weird = pod("odd-1", "10.1.0.12")
    weird["metadata"]["ownerReferences"] = ["not-a-map", {"kind": 5}]
    big = pod("big-1", "10.1.0.13")
    big["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": "x" * 200_000}
    big["metadata"]["managedFields"] = [{"manager": f"m{i}", "fieldsV1": {"f:metadata": {"f:labels": {}}}}
                                        for i in range(2000)]
    status_str = pod("s-1", "10.1.0.14")
    status_str["status"] = "Running"
    f = tmp_path / "bad.yaml"
    f.write_text(as_yaml([no_status, dangling, weird, big, status_str, service("web")]))
    r = run("compile", "-f", str(f), "big-1.shop")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert "Pod shop/bare has no status" in r.stderr
    assert "ReplicaSet web-x (shop)" in r.stderr


def test_cli_options_on_compile_and_before_any_command(tmp_path: Path) -> None:
    f = tmp_path / "app.yaml"
    f.write_text(as_yaml([deployment("web"), service("web")]))
    r = run("compile", "-f", str(f), "deploy/web.shop", "--assume-injection=false")
    assert r.returncode == 0 and "has no sidecar" in r.stderr and "ML0304" not in r.stderr
    r = run("--assume-injection", "false", "proxy-config", "cluster", "-f", str(f), "deploy/web.shop")
    assert r.returncode == 0 and "has no sidecar" in r.stderr
    r = run("compile", "-f", str(f), "deploy/web.shop", "--assume-injection=maybe")
    assert r.returncode == 2 and "expected true or false" in r.stderr
    r = run("compile", "-f", str(f), "deploy/web.shop", "--pilot-env", "PILOT_FOO=1")
    assert r.returncode == 0 and "ML0306" in r.stderr and "PILOT_FOO=1" in r.stderr
