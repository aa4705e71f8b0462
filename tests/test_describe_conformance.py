"""``meshlens describe service``: istioctl's four ``x describe`` conformance cases, byte for byte.

Data: tests/conformance/istioctl/describe (cases/*/case.json, k8s.yaml, istio.yaml, expected.txt,
and the config dumps istioctl's fake client returns per pod name; see ORIGIN.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshlens.dump import ConfigDump, parse_config_dump
from meshlens.pipeline import load
from meshlens.render.describe import Inputs, describe_service


def _cases() -> list[Path]:
    from conftest import CONFORMANCE

    base = CONFORMANCE / "istioctl" / "describe" / "cases"
    return sorted(p for p in base.iterdir() if p.is_dir())


CASES = _cases()


def test_all_four_cases_are_present() -> None:
    assert len(CASES) == 4


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_describe_service(case: Path) -> None:
    meta = json.loads((case / "case.json").read_text())
    loaded = load([str(case / "k8s.yaml"), str(case / "istio.yaml")])
    dumps: dict[str, ConfigDump] = {}
    for pod, ref in meta["configDumps"].items():
        dumps[pod] = ConfigDump() if ref == "{}" else parse_config_dump((case / ref).read_text())
    inp = Inputs(loaded.mesh.resources, meta["namespace"], lambda p: dumps.get(p.name))
    _, name = meta["args"]
    got = describe_service(inp, name, meta["namespace"])
    assert got == (case / meta["expectedOutput"]).read_text()


def test_cli_describe_compiles_the_pods(tmp_path: Path) -> None:
    """Without dumps, the pods' config comes from meshlens's own compile (bookinfo + gateway)."""
    from typer.testing import CliRunner

    from meshlens.cli import app

    root = Path(__file__).resolve().parents[1] / "tests" / "conformance" / "samples"
    ns = tmp_path / "ns.yaml"
    ns.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: default, labels: {istio-injection: enabled}}\n")
    files = [ns, root / "istio-system" / "ingressgateway.yaml", root / "bookinfo" / "platform" / "kube" / "bookinfo.yaml",
             root / "bookinfo" / "networking" / "bookinfo-gateway.yaml",
             root / "bookinfo" / "networking" / "destination-rule-all.yaml"]
    args = ["describe", "service", "productpage"] + [x for f in files for x in ("-f", str(f))]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert r.stdout == ('Service: productpage\nDestinationRule: productpage for "productpage"\n'
                        "   Matching subsets: v1\n   No Traffic Policy\n--------------------\n"
                        "Exposed on Ingress Gateway http://unknown\nVirtualService: bookinfo\n"
                        "   Match: /productpage, Match: /static*, Match: /login, Match: /logout, "
                        "Match: /api/v1/products*\n")
    r = CliRunner().invoke(app, ["describe", "service", "nope"] + args[3:])
    assert r.exit_code == 2 and 'services "nope" not found' in r.output


def test_cli_describe_pod(tmp_path: Path) -> None:
    """`podDescribeCmd`: pod, its Services, the effective PeerAuthentication, ingress exposure."""
    from typer.testing import CliRunner

    from meshlens.cli import app
    from meshlens.pipeline import load as load_files

    root = Path(__file__).resolve().parents[1] / "tests" / "conformance" / "samples"
    extra = tmp_path / "extra.yaml"
    extra.write_text("""apiVersion: v1
kind: Namespace
metadata: {name: default, labels: {istio-injection: enabled}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict, namespace: default}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: pp, namespace: default}
spec:
  selector: {matchLabels: {app: productpage}}
  portLevelMtls: {"9080": {mode: PERMISSIVE}}
""")
    files = [extra, root / "istio-system" / "ingressgateway.yaml",
             root / "bookinfo" / "platform" / "kube" / "bookinfo.yaml",
             root / "bookinfo" / "networking" / "bookinfo-gateway.yaml"]
    loaded = load_files([str(f) for f in files])
    pod = next(w.name for w in loaded.mesh.registry.workloads if w.name.startswith("productpage-v1"))
    r = CliRunner().invoke(app, ["describe", "pod", pod] + [x for f in files for x in ("-f", str(f))])
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(f"Pod: {pod}\n   Pod Revision: default\n"
                               "   Pod Ports: 9080 (productpage), 15090 (istio-proxy)\n--------------------\n"
                               "Service: productpage\n")
    assert ("Effective PeerAuthentication:\n   Workload mTLS mode: STRICT\n   Port Level mTLS mode:\n"
            "      9080: PERMISSIVE\nApplied PeerAuthentication:\n   strict.default, pp.default\n") in r.stdout
    assert "Exposed on Ingress Gateway http://unknown\nVirtualService: bookinfo\n" in r.stdout
