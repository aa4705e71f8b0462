"""Which workload-scoped security policies attach to a sidecar.

Layer: L4. Imports: nothing of meshlens (resources are duck-typed).

`WorkloadPolicyMatcher.ShouldAttachPolicy` (``pilot/pkg/model/policyattachment.go``) for a
sidecar, which is never a Gateway API workload: a policy with ``targetRef``/``targetRefs``
attaches to gateways and waypoints only; otherwise an absent ``selector`` selects every workload
of the namespace and a present one selects when its ``matchLabels`` are a subset of the labels.
"""

from __future__ import annotations

from typing import Any


def selects(res: Any, namespace: str, labels: dict[str, str]) -> bool:
    """`ShouldAttachPolicy` for a sidecar in ``namespace`` with ``labels``."""
    spec = res.spec
    if spec.get("targetRefs") or spec.get("targetRef"):
        return False
    selector = spec.get("selector")
    match = selector.get("matchLabels") if isinstance(selector, dict) else None
    if not isinstance(match, dict):
        return True
    return all(labels.get(k) == v for k, v in match.items())
