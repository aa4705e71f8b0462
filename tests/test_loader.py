"""The loader: positions for every field, multi-document and List input, and no crash on any bytes."""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshlens.errors import LoadError
from meshlens.loader import Limits, load_text
from meshlens.pipeline import compile_for, load_string

SEED = (Path(__file__).parent / "cases" / "seed-llm-server-canary" / "manifests.yaml").read_text()

settings.register_profile("default", max_examples=150, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=5000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

TEXT = """\
# leading comment
apiVersion: v1
kind: Service
metadata:
  name: a
  namespace: ns
spec:
  ports:
  - name: http
    port: 80
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {name: b}
"""


def test_positions_of_fields_and_list_items() -> None:
    r = load_text(TEXT, "f.yaml")
    assert [d.data["metadata"]["name"] for d in r.documents] == ["a", "b"]
    a, b = r.documents
    assert str(a.locate(("spec", "ports", 0, "port"))) == "f.yaml:10:5"
    assert str(a.locate(("metadata", "namespace"))) == "f.yaml:6:3"
    assert str(b.locate(("metadata", "name"))) == "f.yaml:17:14"
    # a missing field falls back to its nearest ancestor
    assert str(a.locate(("spec", "selector"))) == "f.yaml:7:1"


def test_syntax_error_has_line_and_column_in_later_documents() -> None:
    r = load_text("a: 1\n---\nb: [1,\nc: 2\n", "x.yaml")
    assert len(r.errors) == 1
    err = r.errors[0]
    assert isinstance(err, LoadError) and err.span.path == "x.yaml" and err.span.line >= 3
    assert str(err).startswith("x.yaml:")


def test_non_utf8_and_nul_bytes_are_errors_not_crashes() -> None:
    r = load_text("a: \x00\n", "n.yaml")
    assert r.errors and "NUL" in r.errors[0].message


def test_depth_limit() -> None:
    deep = "a: " + "[" * 100 + "]" * 100 + "\n"
    r = load_text(deep, "d.yaml", limits=Limits(max_depth=64))
    assert r.errors and "deeper" in r.errors[0].message


def test_document_limit() -> None:
    text = "---\n".join(f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: n{i}}}\n" for i in range(5))
    r = load_text(text, "m.yaml", limits=Limits(max_documents=3))
    assert len(r.documents) == 3 and r.errors


_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                     st.text(max_size=20))
_values = st.recursive(_scalars, lambda c: st.one_of(st.lists(c, max_size=4),
                                                     st.dictionaries(st.text(max_size=10), c, max_size=4)),
                       max_leaves=30)
_kinds = st.sampled_from(["Service", "Pod", "Deployment", "DestinationRule", "VirtualService",
                          "ServiceEntry", "Sidecar", "PeerAuthentication", "Namespace", "EndpointSlice"])
_api = {"Service": "v1", "Pod": "v1", "Namespace": "v1", "Deployment": "apps/v1",
        "EndpointSlice": "discovery.k8s.io/v1", "PeerAuthentication": "security.istio.io/v1"}


@given(st.binary(max_size=400))
def test_any_bytes_give_a_result_or_diagnostics(data: bytes) -> None:
    text = data.decode("utf-8", errors="replace")
    r = load_text(text, "fuzz.yaml")
    for e in r.errors:
        assert e.span is None or e.span.line >= 1


@given(_kinds, _values, _values)
@settings(max_examples=300)
def test_random_objects_never_crash_the_pipeline(kind: str, spec: object, meta: object) -> None:
    doc = {"apiVersion": _api.get(kind, "networking.istio.io/v1"), "kind": kind,
           "metadata": meta if isinstance(meta, dict) else {"name": "x", "namespace": "mesh-demo"},
           "spec": spec}
    text = SEED + "\n---\n" + yaml.safe_dump(doc)
    loaded = load_string(text, "prop.yaml")
    for d in loaded.diagnostics:
        assert d.format()
    result = compile_for(loaded, "deploy/client.mesh-demo")
    assert result.cluster("PassthroughCluster") is not None
