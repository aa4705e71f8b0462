"""``meshlens snapshot``: export what meshlens reads from a live cluster, with the user's kubectl.

Layer: L8.

Runs ``kubectl get KIND -o json`` once per kind (the user's kubeconfig, ``--context``, ``-n`` or
``-A``) and writes one ``kind: List`` (JSON, which is YAML too) for ``meshlens compile -f``.
``metadata.managedFields`` is dropped (large, never used). A kind the cluster does not serve
(no Istio CRDs installed) is noted and skipped; kubectl missing or failing otherwise is one line
and exit 2. The exact commands are in :func:`commands` (and the README).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from typing import Annotated, Any

import typer

from meshlens.cli.common import err, fail

#: (resource as kubectl spells it, namespaced?) in the order they are fetched.
KINDS: tuple[tuple[str, bool], ...] = (
    ("namespaces", False),
    ("nodes", False),
    ("serviceaccounts", True),
    ("services", True),
    ("deployments.apps", True),
    ("statefulsets.apps", True),
    ("replicasets.apps", True),
    ("daemonsets.apps", True),
    ("pods", True),
    ("endpointslices.discovery.k8s.io", True),
    ("serviceentries.networking.istio.io", True),
    ("workloadentries.networking.istio.io", True),
    ("destinationrules.networking.istio.io", True),
    ("virtualservices.networking.istio.io", True),
    ("sidecars.networking.istio.io", True),
    ("peerauthentications.security.istio.io", True),
)

_NOT_SERVED = ("the server doesn't have a resource type", "could not find the requested resource",
               "no matches for kind")


def commands(*, context: str | None, namespace: str | None, all_namespaces: bool,
             revision: str = "", istio_namespace: str = "istio-system") -> list[list[str]]:
    """The kubectl command lines ``snapshot`` runs, in order.

    Example:
        >>> commands(context=None, namespace="shop", all_namespaces=False)[3]
        ['kubectl', 'get', 'services', '-n', 'shop', '-o', 'json']
    """
    base = ["kubectl"] + (["--context", context] if context else [])
    scope = ["-A"] if all_namespaces or not namespace else ["-n", namespace]
    out = [base + ["get", kind] + (scope if namespaced else []) + ["-o", "json"]
           for kind, namespaced in KINDS]
    if not (all_namespaces or not namespace) and namespace != istio_namespace:
        # istiod's own configuration lives in its namespace: its mesh ConfigMap and Deployment.
        out.append(base + ["get", "deployments.apps", "-n", istio_namespace, "-o", "json"])
    cm = f"istio-{revision}" if revision else "istio"
    out.append(base + ["get", "configmap", cm, "-n", istio_namespace, "-o", "json"])
    return out


def _strip(obj: Any) -> Any:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    return obj


def _run(cmd: list[str], kubectl: str) -> tuple[int, str, str]:
    try:
        proc = subprocess.run([kubectl] + cmd[1:], capture_output=True, text=True, timeout=300,
                              check=False)
    except subprocess.TimeoutExpired:
        return 124, "", "timed out after 300 s"
    except OSError as exc:
        return 127, "", str(exc)
    return proc.returncode, proc.stdout, proc.stderr


def snapshot_cmd(
    context: Annotated[str | None, typer.Option("--context", help="kubeconfig context.")] = None,
    namespace: Annotated[str | None, typer.Option("-n", "--namespace", help="Only this namespace.")] = None,
    all_namespaces: Annotated[bool, typer.Option("-A", "--all-namespaces",
                                                 help="Every namespace (the default without -n).")] = False,
    output: Annotated[str | None, typer.Option("-o", "--output", help="Write to FILE instead of stdout.")] = None,
    revision: Annotated[str, typer.Option("--revision", help="Istio revision (istio-REV ConfigMap).")] = "",
    istio_namespace: Annotated[str, typer.Option("--istio-namespace", help="istiod's namespace.")] = "istio-system",
) -> None:
    """Export a live cluster (with your kubectl) as one kind: List for `meshlens compile -f`.

    Runs `kubectl [--context C] get KIND (-A | -n NS) -o json` for
    namespaces, nodes, serviceaccounts, services, deployments,
    statefulsets, replicasets, daemonsets, pods, endpointslices and
    Istio's serviceentries, workloadentries, destinationrules,
    virtualservices, sidecars and peerauthentications, then
    `kubectl get configmap istio -n istio-system -o json`.
    Progress goes to stderr, one line per kind.
    """
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        fail("kubectl not found on PATH: install it, or run the kubectl commands of `meshlens "
             "snapshot --help` by hand and give their output to -f")
    items: list[Any] = []
    for cmd in commands(context=context, namespace=namespace, all_namespaces=all_namespaces,
                        revision=revision, istio_namespace=istio_namespace):
        args = cmd[cmd.index("get") + 1:]
        what = " ".join(args[:2]) if args[0] == "configmap" else args[0]
        if args[0] == "deployments.apps" and args[-3] == istio_namespace and namespace != istio_namespace:
            what = f"deployments.apps -n {istio_namespace}"
        code, out, error = _run(cmd, kubectl)
        line = (error.strip().splitlines() or [""])[-1]
        if code != 0:
            if any(s in error for s in _NOT_SERVED):
                err.print(f"{what}: not served by this cluster (skipped)", markup=False)
                continue
            if "NotFound" in error or "not found" in error:
                err.print(f"{what}: none", markup=False)
                continue
            fail(f"`{' '.join(cmd)}` failed (exit {code}): {line or 'no message'}")
        try:
            data = json.loads(out)
        except ValueError:
            fail(f"`{' '.join(cmd)}` did not print JSON")
        got = data.get("items") if isinstance(data, dict) and isinstance(data.get("items"), list) \
            else [data]
        items.extend(_strip(i) for i in got if isinstance(i, dict))
        err.print(f"{what}: {len(got)}", markup=False)
    text = json.dumps({"apiVersion": "v1", "kind": "List", "items": items}, indent=1) + "\n"
    if output:
        tmp = f"{output}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, output)
        err.print(f"wrote {len(items)} objects to {output}", markup=False)
    else:
        sys.stdout.write(text)
