"""EDS: ``endpoints.merged_od_and_lb`` and the LbEndpoints shared per endpoint and variant.

EDS's view of a subset's outlier detection and load balancer (``endpoints.merged_od_and_lb``)
equals those two blocks of the cluster's effective policy (`port_level` then `subset_policy`)."""

from __future__ import annotations

import itertools
from typing import Any

from meshlens.compiler import CompileOptions
from meshlens.compiler.endpoints import merged_od_and_lb
from meshlens.model.destination_rules import ConsolidatedRule, Subset
from meshlens.model.policy import DEST, SUBSET, TrafficPolicyRef, port_level, subset_policy
from test_build_cache import assignment, mesh, shared_vs_alone
from test_cds_cases import client, destination_rule, namespace, outbound, service_entry

OD = {"consecutive5xxErrors": 2}
LB = {"simple": "LEAST_REQUEST"}
POLICIES: list[dict[str, Any] | None] = [
    None,
    {},
    {"outlierDetection": OD},
    {"loadBalancer": LB, "connectionPool": {"tcp": {"maxConnections": 1}}},
    {"loadBalancer": None, "outlierDetection": "not a mapping"},
    {"outlierDetection": OD, "portLevelSettings": [{"port": {"number": 80}, "loadBalancer": LB}]},
    {"loadBalancer": LB, "portLevelSettings": [{"port": {"number": 80}}]},
    {"portLevelSettings": [{"port": {"number": 81}, "outlierDetection": {"interval": "1s"}}]},
]


def reference(rule: ConsolidatedRule, subset: str, port: int) -> tuple[Any, Any]:
    pol, _ = port_level(rule.policy, port)
    sub = rule.subset(subset) if subset else None
    if sub is not None:
        pol = subset_policy(pol, sub.policy, port)
    return pol.value("outlierDetection"), pol.value("loadBalancer")


def ref(tp: dict[str, Any] | None, rule: str) -> TrafficPolicyRef | None:
    return None if tp is None else TrafficPolicyRef(tp, None, ("spec", "trafficPolicy"), rule)


def test_equals_the_cluster_policy_blocks() -> None:
    seen = set()
    for top, own in itertools.product(POLICIES, POLICIES):
        rule = ConsolidatedRule("h", None, ref(top, DEST),  # type: ignore[arg-type]
                                [Subset("s", {}, ref(own, SUBSET), None, 0)],  # type: ignore[arg-type]
                                frozenset(), None)
        for subset, port in itertools.product(("", "s", "missing"), (80, 81, 90)):
            got = merged_od_and_lb(rule, subset, port)
            assert got == reference(rule, subset, port), (top, own, subset, port)
            seen.add(repr(got))
    assert len(seen) >= 5  # the cases reach several different answers


# --- LbEndpoint built once per endpoint and variant (BuildCache.per_object "lb_endpoint") ------




def test_lb_endpoint_variant_mtls() -> None:
    """One endpoint in two assignments: with the tlsMode label (ISTIO_MUTUAL) and without."""
    loaded = mesh(namespace("default"), namespace("bar"), client(), service_entry(),
                  destination_rule("foo.example.org", trafficPolicy={"tls": {"mode": "ISTIO_MUTUAL"}},
                                   subsets=[{"name": "plain", "labels": {"foo": "bar"},
                                             "trafficPolicy": {"tls": {"mode": "DISABLE"}}}]))
    (r,) = shared_vs_alone(loaded, ["deploy/client.default"])
    with_label, without = assignment(r, outbound(8080)), assignment(r, outbound(8080, subset="plain"))
    assert b"tlsMode" in with_label and b"tlsMode" not in without


def test_lb_endpoint_variant_telemetry() -> None:
    loaded = mesh(namespace("default"), namespace("bar"), client(), service_entry())
    on, off = shared_vs_alone(loaded, ["deploy/client.default"] * 2, [
        CompileOptions(), CompileOptions(endpoint_telemetry_label=False)])
    assert assignment(on, outbound(8080)) != assignment(off, outbound(8080))
