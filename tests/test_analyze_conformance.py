"""istioctl analyze conformance: the upstream analyzer test cases, run against meshlens's mirrors.

Data: tests/conformance/analyze (expected.json, testdata/, implicit-defaults.yaml; where they come
from: ORIGIN.md there), reached through the ``conformance`` fixture.

Harness semantics (expected.json's ``harness``): one analyzer per case; the input files plus implicit-defaults.yaml
are loaded *with* runtime kinds and *without* validation, a resource without metadata.namespace
keeps an empty namespace (``load_for_analysis(..., harness=True)``), kube-system and friends are
dropped, and the result is compared as a multiset of (IST code, origin) after istioctl's
de-duplication by rendered line.

Cases not run, and why (each needs a kind meshlens does not read, or a harness meshlens does not
have):

* MeshNetworks: unknown service registry in mesh networks.
* ConfigMap (the sidecar injector's configuration): istioInjectionEnableNamespacesByDefault,
  istioInjectionProxyImageMismatch, injectionImageDistroless,
  injectionImageDistrolessNoMeshConfig (and ProxyConfig), istioInjectionProxyImageMismatchAbsolute,
  istioInjectionProxyImageMismatchWithRevisionCanary.
* MutatingWebhookConfiguration: Detect `image: auto` in non-injected pods.
* Telemetry, WasmPlugin, HTTPRoute, GRPCRoute, Gateway API: KubernetesGatewaySelector,
  Condition Analyzer.
* Node (topology labels come from Node objects): DestinationRuleSubsetsWithTopologyLabels,
  DestinationRuleEmptyTopologyLabels.
* Istio's annotation catalogue (istio.io/api annotations, not a kind, but data meshlens does not
  carry), with an Ingress in the input: misannoted, alpha.
* Two clusters (meshlens models one): InconsistentMultiClusterService.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from meshlens.analyze import ANALYZERS, by_name, run
from meshlens.analyze.inputs import load_for_analysis
from meshlens.analyze.report import finalize

SKIPPED = {
    "unknown service registry in mesh networks": "needs MeshNetworks",
    **dict.fromkeys([
        "istioInjectionEnableNamespacesByDefault", "istioInjectionProxyImageMismatch",
        "injectionImageDistroless", "injectionImageDistrolessNoMeshConfig",
        "istioInjectionProxyImageMismatchAbsolute",
        "istioInjectionProxyImageMismatchWithRevisionCanary",
    ], "needs the injector ConfigMap"),
    "Detect `image: auto` in non-injected pods": "needs MutatingWebhookConfiguration",
    **dict.fromkeys(["KubernetesGatewaySelector", "Condition Analyzer"],
                    "needs Telemetry/WasmPlugin/Gateway API"),
    **dict.fromkeys(["DestinationRuleSubsetsWithTopologyLabels",
                     "DestinationRuleEmptyTopologyLabels"], "needs Node"),
    **dict.fromkeys(["misannoted", "alpha"], "needs Istio's annotation catalogue"),
    "InconsistentMultiClusterService": "needs two clusters",
}


def _cases(conformance: Path) -> list[dict[str, Any]]:
    data = json.loads((conformance / "analyze" / "expected.json").read_text())
    cases: list[dict[str, Any]] = data["cases"]
    return cases


def _all_cases() -> list[dict[str, Any]]:
    from conftest import CONFORMANCE  # the same path the `conformance` fixture checks

    return _cases(CONFORMANCE)


CASES = [c for c in _all_cases() if c["name"] not in SKIPPED]


def test_every_case_is_run_or_skipped_with_a_reason(conformance: Path) -> None:
    names = {c["name"] for c in _cases(conformance)}
    assert set(SKIPPED) <= names, set(SKIPPED) - names
    run_names = names - set(SKIPPED)
    mirrored = {a.METADATA.name for a in ANALYZERS}
    unknown = {c["analyzer"] for c in _cases(conformance) if c["name"] in run_names} - mirrored
    assert not unknown, f"cases run by no analyzer: {unknown}"
    assert len(run_names) == 75


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_conformance(case: dict[str, Any], conformance: Path) -> None:
    base = conformance / "analyze"
    files = [str(base / f) for f in case["inputs"]] + [str(base / "implicit-defaults.yaml")]
    mesh = str(base / case["meshConfigFile"]) if case["meshConfigFile"] else None
    loaded = load_for_analysis(files, mesh_config=mesh, harness=True)
    assert not loaded.errors, loaded.errors
    analyzers = by_name([case["analyzer"]])
    assert analyzers, case["analyzer"]
    findings = finalize(run(loaded, proxies=(), analyzers=analyzers,
                            include_input_diagnostics=False), loaded.mesh.resources)
    got = Counter((f.istio_code, f.origin) for f in findings)
    want = Counter((e["code"], e["origin"]) for e in case["expected"])
    assert got == want, f"missing {want - got}, unexpected {got - want}"
    for f in findings:  # the mirrored message keeps istioctl's level
        level = next(e["level"] for e in case["expected"] if e["code"] == f.istio_code)
        assert f.level_name == level
