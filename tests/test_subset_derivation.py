"""Subset clusters derived from their default cluster's draft equal subset clusters built afresh.

`buildSubsetCluster` repeats `buildCluster` and the subset-independent part of
`applyTrafficPolicy` for a subset without a traffic policy of its own; the compiler copies the
default cluster's draft at that point instead (``clusters._HeadSnapshot``). Each case compiles
with and without the copy and compares config bytes and provenance (``explain`` text).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from meshlens.compiler import BuildCache, clusters
from meshlens.emit import config_dump_json
from meshlens.pipeline import Loaded, compile_for, load
from test_build_cache import ROOT, explained, mesh
from test_cds_cases import (client, destination_rule, mesh_config, namespace, outbound,
                            service_entry)


def derived_equals_afresh(loaded: Loaded, proxy: str, monkeypatch: pytest.MonkeyPatch) -> str:
    derived = compile_for(loaded, proxy, cache=BuildCache(share=False))
    with monkeypatch.context() as m:
        m.setattr(clusters, "_HeadSnapshot", lambda d: None)
        afresh = compile_for(loaded, proxy, cache=BuildCache(share=False))
    text = config_dump_json(derived)
    assert text == config_dump_json(afresh)
    assert explained(derived) == explained(afresh)
    return text


def test_generated_mesh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    subprocess.run([sys.executable, str(ROOT / "bench" / "gen.py"), "--services", "20",
                    "--out", str(tmp_path)], check=True, capture_output=True)
    text = derived_equals_afresh(load([str(tmp_path)]), "deploy/client.bench", monkeypatch)
    assert "|v1|" in text


def _world(*subsets: dict[str, object], **tp: object) -> list[dict[str, object]]:
    return [namespace("default"), namespace("bar"), client(), service_entry(),
            destination_rule("foo.example.org", trafficPolicy=tp or None, subsets=list(subsets))]


@pytest.mark.parametrize("tp", [
    {},
    {"tls": {"mode": "ISTIO_MUTUAL"}},
    {"tls": {"mode": "SIMPLE", "sni": "x.example.org"}},
    {"tls": {"mode": "DISABLE"}},
    {"loadBalancer": {"simple": "PASSTHROUGH"}},
    {"proxyProtocol": {"version": "V1"}},
    {"connectionPool": {"http": {"h2UpgradePolicy": "UPGRADE"}},
     "outlierDetection": {"consecutive5xxErrors": 3}},
    {"loadBalancer": {"localityLbSetting": {"enabled": True}}},
])
def test_subset_without_policy(tp: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> None:
    subsets = ({"name": "a", "labels": {"foo": "bar"}},
               {"name": "b", "labels": {"foo": "baz"}, "trafficPolicy": {"tls": {"mode": "DISABLE"}}})
    text = derived_equals_afresh(mesh(*_world(*subsets, **tp)), "deploy/client.default", monkeypatch)
    assert outbound(8080, subset="a") in text and outbound(8080, subset="b") in text


def test_stat_name_pattern_names_the_subset(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = mesh(*_world({"name": "a", "labels": {"foo": "bar"}}), mesh_config=mesh_config(
        outboundClusterStatName="%SERVICE%_%SUBSET_NAME%_%SERVICE_PORT%"))
    text = derived_equals_afresh(loaded, "deploy/client.default", monkeypatch)
    assert "foo.example.org_a_8080;" in text
