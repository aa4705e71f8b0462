"""Every golden case's compiled config loads into the real Envoy 1.40 with zero rejects."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshlens.emit import config_dump, to_dict
from meshlens.lab.envoy import validate_config_dump
from meshlens.pipeline import compile_for, load

ROOT = Path(__file__).resolve().parents[1]
CASES = sorted(p for p in (ROOT / "tests" / "cases").iterdir() if p.is_dir())


@pytest.mark.envoy
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_compiled_clusters_load_into_real_envoy(case: Path) -> None:
    import tomllib

    meta = tomllib.loads((case / "case.toml").read_text())
    mesh = case / "mesh.yaml"
    loaded = load([str(case / "manifests.yaml")], mesh_config=str(mesh) if mesh.exists() else None)
    result = compile_for(loaded, meta["proxy"])
    dump = to_dict(config_dump(result))
    verdict = validate_config_dump(dump)
    assert verdict.ok, f"Envoy rejected {case.name}: {verdict.error}"


@pytest.mark.envoy
def test_a_broken_cluster_is_rejected_by_real_envoy() -> None:
    """The check can fail: a cluster Envoy cannot accept is reported with Envoy's message."""
    case = ROOT / "tests" / "cases" / "seed-llm-server-canary"
    loaded = load([str(case / "manifests.yaml")])
    result = compile_for(loaded, "deploy/client.mesh-demo")
    result.clusters[0].outlier_detection.max_ejection_percent.value = 150
    verdict = validate_config_dump(to_dict(config_dump(result)))
    assert not verdict.ok
    assert "max_ejection_percent" in verdict.error.lower().replace("maxejectionpercent", "max_ejection_percent")
