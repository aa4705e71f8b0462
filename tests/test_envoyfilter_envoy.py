"""A patched config Envoy rejects is traced to the EnvoyFilter patch that broke it (real Envoy)."""

from __future__ import annotations

import pytest

from meshlens.lab.patch_blame import blame_envoy_filter_patches
from meshlens.model.proxy import resolve_proxy
from meshlens.pipeline import load_string
from test_authn import WORKLOAD
from test_envoyfilter import ef

GOOD = """  - applyTo: CLUSTER
    match: {context: SIDECAR_OUTBOUND, cluster: {portNumber: 8000}}
    patch: {operation: MERGE, value: {connect_timeout: 2s}}
"""
BAD = """  - applyTo: CLUSTER
    match: {context: SIDECAR_OUTBOUND, cluster: {portNumber: 8000}}
    patch: {operation: MERGE, value: {outlier_detection: {max_ejection_percent: 150}}}
"""


def _blame(text: str):  # type: ignore[no-untyped-def]
    loaded = load_string(WORKLOAD + text, "ef.yaml")
    proxy = resolve_proxy(loaded.mesh.registry.workloads, "deploy/httpbin.foo")
    return blame_envoy_filter_patches(loaded.mesh, proxy)


@pytest.mark.envoy
def test_good_patches_load() -> None:
    v = _blame(ef("good", GOOD))
    assert v.ok and v.patches == 1


@pytest.mark.envoy
def test_the_rejected_patch_is_named_with_its_line() -> None:
    v = _blame(ef("good", GOOD) + ef("bad", GOOD + BAD, extra="  priority: 1\n"))
    assert not v.ok and v.culprit is not None
    assert str(v.culprit.resource) == "EnvoyFilter foo/bad"
    assert v.culprit.field == ("spec", "configPatches", 1)
    assert v.culprit.span is not None and v.culprit.span.line > 0
    assert "max_ejection_percent" in v.error.lower().replace("maxejectionpercent", "max_ejection_percent")
