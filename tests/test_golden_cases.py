"""One golden directory per behaviour: manifests.yaml + case.toml → clusters/endpoints/notes.

Each case also checks invariants: every cluster name round-trips through the name parser, every
dynamic cluster records where its fields came from, and the output is stable.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from golden import check
from meshlens.compiler.names import cluster_name, parse_cluster_name, sni_name
from meshlens.emit import to_dict
from meshlens.pipeline import compile_for, load
from meshlens.render.summary import notes

CASES = sorted(p for p in (Path(__file__).parent / "cases").iterdir() if p.is_dir())


def compile_case(case: Path):  # type: ignore[no-untyped-def]
    meta = tomllib.loads((case / "case.toml").read_text())
    mesh_config = case / "mesh.yaml"
    # Relative paths keep file:line in the goldens independent of the checkout's location.
    rel = case.relative_to(Path(__file__).parent.parent) if case.is_absolute() else case
    loaded = load([str(rel / "manifests.yaml")],
                  mesh_config=str(rel / "mesh.yaml") if mesh_config.exists() else None)
    assert not loaded.errors, loaded.errors
    return meta, loaded, compile_for(loaded, meta["proxy"])


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden(case: Path, update_goldens: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(Path(__file__).parent.parent)
    meta, loaded, result = compile_case(case)
    clusters = [to_dict(c) for c in result.clusters]
    endpoints = [to_dict(e) for e in result.endpoints]
    check(case / "clusters.json", json.dumps(clusters, indent=2) + "\n", update_goldens)
    check(case / "endpoints.json", json.dumps(endpoints, indent=2) + "\n", update_goldens)
    listeners = [to_dict(x) for x in result.listeners or []]
    routes = [to_dict(x) for x in result.routes or []]
    check(case / "listeners.json", json.dumps(listeners, indent=2) + "\n", update_goldens)
    check(case / "routes.json", json.dumps(routes, indent=2) + "\n", update_goldens)
    lines = [d.format() for d in loaded.diagnostics + result.diagnostics]
    for c in result.clusters:
        for n in notes(result, c.name):
            lines.append(f"{c.name}: {n}")
    check(case / "notes.txt", "\n".join(lines) + "\n", update_goldens)
    # invariants
    for c in result.clusters:
        key = parse_cluster_name(c.name)
        if key is not None:
            build = sni_name if c.name.startswith(f"{key.direction}_.") else cluster_name  # SNI-DNAT
            assert build(key.direction, key.port, key.subset, key.host) == c.name
            assert result.provenance.of("cluster", c.name), f"no provenance for {c.name}"
    again = compile_for(loaded, meta["proxy"])
    assert [to_dict(c) for c in again.clusters] == clusters, "output is not deterministic"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fast_json_equals_protobuf_json_format(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """meshlens.jsonpb gives the same content as protobuf's own json_format, for every resource."""
    from meshlens.emit import config_dump, to_dict_reference

    monkeypatch.chdir(Path(__file__).parent.parent)
    _, _, result = compile_case(case)
    dump = config_dump(result)
    assert to_dict(dump) == to_dict_reference(dump)
