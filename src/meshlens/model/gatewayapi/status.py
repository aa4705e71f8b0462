"""Status conditions istiod writes on Gateway API objects (`pilot/pkg/config/kube/gateway/conditions.go`).

Layer: L3. Imports: resources.

meshlens cannot write status to a cluster; it computes the conditions istiod would write, for
``meshlens status`` and ``analyze``: Gateway ``Accepted``/``Programmed``, per listener
``Accepted``/``Programmed``/``Conflicted``/``ResolvedRefs``, per route parent ``Accepted`` (with
``NotAllowedByListeners``, ``NoMatchingListenerHostname``, ``NoMatchingParent``) and
``ResolvedRefs`` (``BackendNotFound``, ``RefNotPermitted``, ``InvalidKind``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from meshlens.resources import Resource


@dataclass(frozen=True, slots=True)
class Condition:
    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"type": self.type, "status": self.status, "reason": self.reason, "message": self.message}


def ok(kind: str, reason: str, message: str = "No errors found") -> Condition:
    return Condition(kind, "True", reason, message)


@dataclass(slots=True)
class ObjectStatus:
    """The status of one Gateway API object."""

    resource: Resource
    conditions: list[Condition] = field(default_factory=list)
    listeners: dict[str, list[Condition]] = field(default_factory=dict)  # Gateways
    parents: list[tuple[str, list[Condition]]] = field(default_factory=list)  # routes

    @property
    def healthy(self) -> bool:
        every = self.conditions + [c for cs in self.listeners.values() for c in cs] + \
            [c for _, cs in self.parents for c in cs]
        return all(c.status == "True" or c.type == "Conflicted" and c.status == "False" for c in every)

    def to_dict(self) -> dict[str, object]:
        r = self.resource
        out: dict[str, object] = {"kind": r.kind, "namespace": r.namespace, "name": r.name}
        if self.conditions:
            out["conditions"] = [c.to_dict() for c in self.conditions]
        if self.listeners:
            out["listeners"] = [{"name": n, "conditions": [c.to_dict() for c in cs]}
                                for n, cs in self.listeners.items()]
        if self.parents:
            out["parents"] = [{"parentRef": p, "conditions": [c.to_dict() for c in cs]}
                              for p, cs in self.parents]
        return out
