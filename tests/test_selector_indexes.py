"""Label indexes select exactly what a scan of every pod (or every selector) selects, in order."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from meshlens.analyze._istio import LabelIndex, SelectorIndex, labels_match
from meshlens.model.registry import _PodIndex
from meshlens.model.registry.types import Workload, selects

_keys = st.sampled_from(["app", "version", "tier", "x"])
_values = st.sampled_from(["a", "b", "c", ""])
_labels = st.dictionaries(_keys, _values, max_size=3)
_ns = st.sampled_from(["n1", "n2"])
_items = st.lists(st.tuples(_ns, _labels), max_size=25)


@given(_items, _ns, _labels)
@settings(max_examples=300, deadline=None)
def test_label_index_equals_the_scan(items: list[tuple[str, dict[str, str]]], ns: str,
                                     selector: dict[str, str]) -> None:
    scan = [i for i, (n, labels) in enumerate(items)
            if n == ns and labels_match(selector, labels)]
    assert LabelIndex(items).select(ns, selector) == scan


@given(_items, _ns, _labels)
@settings(max_examples=300, deadline=None)
def test_selector_index_equals_the_scan(items: list[tuple[str, dict[str, str]]], ns: str,
                                        labels: dict[str, str]) -> None:
    scan = [i for i, (n, sel) in enumerate(items) if n == ns and sel and labels_match(sel, labels)]
    assert SelectorIndex(items).matching(ns, labels) == scan


def _workload(i: int, ns: str, labels: dict[str, str]) -> Workload:
    return Workload(name=f"p{i}", namespace=ns, ip=f"10.0.0.{i}", labels=labels,
                    annotations={}, service_account="default", container_ports=[],
                    injected=True, ready=True, workload_name=f"p{i}", controller_kind="Pod",
                    resource=None)  # type: ignore[arg-type]


@given(_items, _ns, _labels)
@settings(max_examples=300, deadline=None)
def test_registry_pod_index_equals_the_scan(items: list[tuple[str, dict[str, str]]], ns: str,
                                            selector: dict[str, str]) -> None:
    pods = [_workload(i, n, labels) for i, (n, labels) in enumerate(items)]
    scan = [p for p in pods if p.namespace == ns and selector and selects(selector, p.labels)]
    assert _PodIndex(pods).select(ns, selector) == scan
