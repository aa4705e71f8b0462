"""EDS's view of a subset's outlier detection and load balancer (``endpoints.merged_od_and_lb``)
equals those two blocks of the cluster's effective policy (`port_level` then `subset_policy`)."""

from __future__ import annotations

import itertools
from typing import Any

from meshlens.compiler.endpoints import merged_od_and_lb
from meshlens.model.destination_rules import ConsolidatedRule, Subset
from meshlens.model.policy import DEST, SUBSET, TrafficPolicyRef, port_level, subset_policy

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
